"""The demo ward (fixtures/demo.py) on the review pages: its mid-cycle and rest-day courses read well."""

import re

import pytest
from django.utils import timezone

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_the_demo_courses_render_with_their_holds(client):
    from django.contrib.auth import get_user_model

    from fixtures import demo
    from scheduling.models import Course

    demo.load(now=timezone.now())
    client.force_login(get_user_model().objects.get(username="onc"))
    listing = text(client.get("/courses/"))
    assert "Hold flagged on an open dose" in listing  # Priya Shah's dose 3 (CV-SBP)
    pages = {c.patient.name: text(client.get(f"/courses/{c.pk}/")) for c in Course.objects.select_related("patient")}
    maria, james = pages["Maria Lopez"], pages["James Okafor"]
    assert "Cycle 1 · day" in maria and "CV-SBP" in maria and maria.count('<svg class="trend"') == 7
    assert "Rest day" in james and "NE-RASS" in james and "RN-UO" in james
    assert "Hold flagged at Cycle 1 · dose 3" in pages["Priya Shah"]
    assert all("Server Error" not in html for html in pages.values())
    maria_course = Course.objects.get(patient__name="Maria Lopez")
    pdf = client.get(f"/courses/{maria_course.pk}/summary.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
