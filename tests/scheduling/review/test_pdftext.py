"""The PDF text fallback (tests/scheduling/review/pdftext.py) reads WeasyPrint's output, SVG text included."""

import pytest

from tests.scheduling.review.pdftext import parse_text


@pytest.mark.parametrize("svg", [False, True])
def test_parse_text_reads_weasyprint_text(svg):
    import weasyprint

    body = "<p>Signed by Dr Olga Oncologist · Wed 10 Mar 2027 06:00 CST — é</p>"
    if svg:
        body += '<svg width="300" height="40"><text x="4" y="20">CV-SBP hold &lt; 90</text></svg>'
    text = parse_text(weasyprint.HTML(string=body).write_pdf())
    assert "Signed by Dr Olga Oncologist · Wed 10 Mar 2027 06:00 CST — é" in text
    # SVG text is drawn glyph by glyph without its spaces: the fallback cannot put them back (pdftotext can).
    assert ("CV-SBPhold<90" in text) is svg
