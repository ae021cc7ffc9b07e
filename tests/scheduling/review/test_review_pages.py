"""The course review pages: grid, plots, signed decisions, access, signatures changed after signing."""

import re
from datetime import timedelta

import pytest
import time_machine

from il2ward.models import Medication, Signature
from monitoring.services import rule_set_override
from scheduling.models import Course, CycleDecision, Dose, Override
from scheduling.services import decisions
from tests.conftest import NOW, PASSWORD
from tests.scheduling.review.builders import ELIGIBLE, build_course, flag_next

pytestmark = [pytest.mark.django_db]


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def held_course(patient_a, staff):
    """Mid cycle 1: seven slots charted, dose 4 held by CV-SBP (SBP 86); dose 8 due in 40 min, flagged hold (SBP 85)."""
    course = build_course(patient_a, staff, charted=7, abnormal={4: {"sbp": 86}})
    flag_next(course, staff, now=NOW, sbp=85)
    return course


def test_grid_has_28_cells_with_local_time_status_rules_and_who_charted(client, staff, held_course, frozen):
    client.force_login(staff.oncologist)
    html = text(client.get(f"/courses/{held_course.pk}/"))
    assert len(re.findall(r'<td class="cell-', html)) == 28
    held = Dose.objects.get(course=held_course, status="held")
    cell = re.search(rf'id="cell-{held.pk}".*?</td>', html).group(0)
    local = held.due_at.astimezone(held_course.patient.ward.zone)
    assert f"<b>{local:%H:%M}</b>" in cell and "Held" in cell and "CV-SBP" in cell and ">AN<" in cell  # Alice Nurse
    given = Dose.objects.filter(course=held_course, status="given").first()
    assert "AN/AS" in re.search(rf'id="cell-{given.pk}".*?</td>', html).group(0)  # given / checked by
    assert "Cycle 1 · day" in html


def test_counts_cumulative_dose_and_timing_per_cycle_and_course(client, staff, held_course, frozen):
    client.force_login(staff.oncologist)
    html = text(client.get(f"/courses/{held_course.pk}/"))
    row = re.search(r'<th scope="row">Cycle 1</th>(.*?)</tr>', html).group(1)
    cells = re.findall(r"<td>([^<]*)</td>", row)
    # given, held, missed, scheduled, cancelled, early, on time, late, cumulative IU (6 × 48,000,000)
    assert cells == ["6", "1", "0", "7", "0", "0", "6", "0", "288,000,000"]


def test_plots_draw_rule_set_thresholds_not_literals(client, staff, patient_a, frozen):
    rule_set_override(name="consensus-2014", overrides={"CV-SBP.hold_below": 95}, by=staff.oncologist, now=NOW)
    course = build_course(patient_a, staff, charted=3)
    client.force_login(staff.oncologist)
    html = text(client.get(f"/courses/{course.pk}/"))
    assert html.count('<svg class="trend"') == 7
    for title in ("Blood pressure and pressor", "Heart rate", "Weight over baseline", "Urine output per 8 h",
                  "SpO2 and oxygen", "Creatinine", "Sedation (RASS)"):  # fmt: skip
        assert f'aria-label="{title}"' in html
    assert "CV-SBP hold &lt; 95" in html and "CV-SBP hold &lt; 90" not in html
    assert "RN-UO hold ≤ 160" in html and "NE-RASS hold ≤ -2" in html and "CV-PRESSOR stop &gt; 0.8" in html


def test_holds_are_listed_with_their_reasons(client, staff, held_course, frozen):
    client.force_login(staff.oncologist)
    html = text(client.get(f"/courses/{held_course.pk}/"))
    section = html[html.index('id="held"') :]
    assert "CV-SBP" in section and "86 mmHg" in section and "Held per protocol." in section


def test_an_oncologist_overrides_a_flagged_hold_with_her_password(client, staff, held_course, frozen):
    dose = Dose.objects.get(course=held_course, status="scheduled", flag="hold")
    client.force_login(staff.oncologist)
    page = text(client.get(f"/courses/{held_course.pk}/"))
    assert "Hold flagged at Cycle 1 · dose 8" in page and f"override-{dose.pk}-password" in page
    url = f"/courses/{held_course.pk}/doses/{dose.pk}/override/"
    wrong = client.post(url, {f"override-{dose.pk}-reason": "MAP fine", f"override-{dose.pk}-password": "wrong"})
    assert wrong.status_code == 400 and "Password does not match" in text(wrong)
    assert not Override.objects.exists()
    response = client.post(
        url, {f"override-{dose.pk}-reason": "MAP 70, asymptomatic", f"override-{dose.pk}-password": PASSWORD}
    )
    assert response.status_code == 302 and response["Location"].endswith(f"#dose-{dose.pk}")
    html = text(client.get(f"/courses/{held_course.pk}/"))
    lines = re.findall(r'<span class="signature-line">(.*?)</span></span>', html)
    line = next(x for x in lines if "Hold overridden for one dose" in x)  # under the dose, in the dose log
    assert "Dr Olga Oncologist" in line
    assert NOW.astimezone(held_course.patient.ward.zone).strftime("%H:%M CST") in line  # ward-local, with the zone
    assert "Matches the record" in line


def test_a_nurse_reads_the_page_but_never_signs(client, staff, held_course, frozen):
    dose = Dose.objects.get(course=held_course, status="scheduled", flag="hold")
    client.force_login(staff.nurse)
    page = client.get(f"/courses/{held_course.pk}/")
    assert page.status_code == 200 and "CV-SBP" in text(page)
    assert 'type="password"' not in text(page)  # no signing form for her
    posts = {
        f"/courses/{held_course.pk}/doses/{dose.pk}/override/": {f"override-{dose.pk}-reason": "x"},
        f"/courses/{held_course.pk}/stop/": {"stop-reason": "x"},
        f"/courses/{held_course.pk}/eligibility/": {},
        f"/courses/{held_course.pk}/cycle2/": {},
        f"/courses/{held_course.pk}/discharge/": {},
    }
    for url, data in posts.items():
        data = {**data, "password": PASSWORD}
        assert client.post(url, data).status_code == 403, url
    assert not Override.objects.exists() and Course.objects.get().status == "active"


def test_a_nurse_of_another_ward_gets_404(client, nurse_b, held_course, frozen):
    client.force_login(nurse_b)
    assert client.get(f"/courses/{held_course.pk}/").status_code == 404
    assert client.get(f"/courses/{held_course.pk}/summary/").status_code == 404
    assert client.post(f"/courses/{held_course.pk}/stop/", {}).status_code == 404


def test_a_record_changed_after_signing_shows_so(client, staff, held_course, frozen):
    dose = Dose.objects.get(course=held_course, status="scheduled", flag="hold")
    client.force_login(staff.oncologist)
    client.post(
        f"/courses/{held_course.pk}/doses/{dose.pk}/override/",
        {f"override-{dose.pk}-reason": "MAP fine", f"override-{dose.pk}-password": PASSWORD},
    )
    assert "Changed after signing" not in text(client.get(f"/courses/{held_course.pk}/"))
    Override.objects.filter(dose=dose).update(reason="something else")  # a change behind the signature's back
    html = text(client.get(f"/courses/{held_course.pk}/"))
    assert "Changed after signing" in html and "1 signed record(s) changed after signing" in html


def test_a_later_discharge_signature_supersedes_the_earlier(client, staff, make_course, patient_a):
    course = make_course(patient_a)
    later = NOW + timedelta(days=30)
    for day in (5, 6):
        decisions.course_discharge(
            course_id=course.pk,
            discharge_date=(later - timedelta(days=day)).date(),
            password=PASSWORD,
            by=staff.oncologist,
            now=later,
        )
    with time_machine.travel(later, tick=False):
        client.force_login(staff.oncologist)
        html = text(client.get(f"/courses/{course.pk}/"))
    assert "Superseded by a later signature" in html and html.count("Discharge date recorded") >= 2


def test_eligibility_is_attested_on_the_page_with_interaction_warnings(client, staff, patient_a, frozen):
    course = build_course(patient_a, staff, charted=0, next_in=timedelta(hours=20), attest=False)
    for name in ("Lisinopril 10 mg", "Dexamethasone 4 mg", "Paracetamol"):
        Medication.objects.create(patient=patient_a, name=name, recorded_at=NOW, recorded_by=staff.nurse)
    client.force_login(staff.oncologist)
    html = text(client.get(f"/courses/{course.pk}/"))
    assert "Eligibility not attested" in html
    assert "Lisinopril 10 mg</strong>: antihypertensives — more hypotension" in html
    assert "Dexamethasone 4 mg</strong>: glucocorticoids — less antitumour effect" in html
    assert "Paracetamol</strong>:" not in html
    items = {f"eligibility-{key}": "on" for key in ELIGIBLE}
    missing = client.post(
        f"/courses/{course.pk}/eligibility/",
        {**items, "eligibility-no_organ_allograft": "", "eligibility-password": PASSWORD},
    )
    assert missing.status_code == 400 and not Course.objects.get().eligibility_attested
    response = client.post(f"/courses/{course.pk}/eligibility/", {**items, "eligibility-password": PASSWORD})
    assert response.status_code == 302
    assert Course.objects.get().eligibility_signature.meaning == "Eligibility for high-dose IL-2 attested"
    assert "Matches the record" in text(client.get(f"/courses/{course.pk}/"))


def test_stop_recommendation_is_decided_on_the_page(client, staff, patient_a, frozen):
    course = build_course(patient_a, staff, charted=4)
    dose = flag_next(course, staff, now=NOW, heart_rate=135)
    client.force_login(staff.oncologist)
    assert "Stop recommended at Cycle 1 · dose 5" in text(client.get(f"/courses/{course.pk}/"))
    key = f"decision-{dose.pk}"
    response = client.post(
        f"/courses/{course.pk}/doses/{dose.pk}/cycle-decision/",
        {f"{key}-choice": "stop", f"{key}-reason": "HR 135", f"{key}-password": PASSWORD},
    )
    assert response.status_code == 302
    assert CycleDecision.objects.get().choice == "stop"
    html = text(client.get(f"/courses/{course.pk}/"))
    assert "Stop recommended" not in html and "Cycle stopped after a stop recommendation" in html
    assert Dose.objects.filter(course=course, cycle=1, status="cancelled").count() == 10


def test_cycle2_is_moved_in_ward_local_time_and_refused_too_early(client, staff, make_course, patient_a, frozen):
    course = make_course(patient_a)
    client.force_login(staff.oncologist)
    early = client.post(
        f"/courses/{course.pk}/cycle2/",
        {"cycle2-first_local": "2027-03-25T16:00", "cycle2-reason": "r", "cycle2-password": PASSWORD},
    )
    assert early.status_code == 400 and "SCH-CYCLE2" in text(early)
    response = client.post(
        f"/courses/{course.pk}/cycle2/",
        {"cycle2-first_local": "2027-03-29T16:00", "cycle2-reason": "Family event", "cycle2-password": PASSWORD},
    )
    assert response.status_code == 302
    html = text(client.get(f"/courses/{course.pk}/"))
    assert "Mon 29 Mar 2027 16:00 CDT" in html and "Cycle 2 start moved" in html


def test_adverse_event_form_links_held_doses(client, staff, held_course, frozen):
    held = Dose.objects.get(course=held_course, status="held")
    client.force_login(staff.nurse)  # nurses log adverse events too; they are not signed decisions
    response = client.post(
        f"/courses/{held_course.pk}/adverse-events/",
        {
            "adverse_event-category": "cardiovascular",
            "adverse_event-term": "Hypotension",
            "adverse_event-grade": "2",
            "adverse_event-onset_local": "2027-03-09T16:00",
            "adverse_event-held_doses": [str(held.pk)],
        },
    )
    assert response.status_code == 302
    html = text(client.get(f"/courses/{held_course.pk}/"))
    assert "<strong>Hypotension</strong>" in html and "AE: Hypotension G2" in html


def test_course_list_puts_what_needs_a_decision_first(client, staff, patient_a, patient_b, frozen):
    from tests.conftest import make_staff

    nurse_b2 = make_staff("nurse_b2", "nurse", [patient_b.ward], "Ben Second RN")
    build_course(patient_a, staff, charted=2)
    unattested = build_course(
        patient_b,
        type(staff)(staff.oncologist, staff.nurse, nurse_b2),
        charted=0,
        next_in=timedelta(hours=6),
        attest=False,
    )
    client.force_login(staff.oncologist)
    html = text(client.get("/courses/"))
    rows = re.findall(r'<tr id="course-(\d+)">', html)
    assert rows[0] == str(unattested.pk) and "Eligibility not attested" in html


def test_summary_html_has_print_css_grid_plots_and_signatures(client, staff, held_course, frozen):
    client.force_login(staff.oncologist)
    html = text(client.get(f"/courses/{held_course.pk}/summary/"))
    assert "@page" in html and "@media print" in html
    assert len(re.findall(r'<td class="cell-', html)) == 28 and html.count('<svg class="trend"') == 7
    assert "Eligibility for high-dose IL-2 attested" in html and "Dr Olga Oncologist" in html
    assert "CV-SBP" in html


def test_summary_pdf_is_a_pdf_download_with_the_signatures(client, staff, held_course, frozen):
    from tests.scheduling.review.pdftext import pdf_text

    client.force_login(staff.oncologist)
    response = client.get(f"/courses/{held_course.pk}/summary.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="course-{held_course.pk}-summary.pdf"'
    body = pdf_text(response.content)
    signature = Signature.objects.get()
    local = signature.signed_at.astimezone(held_course.patient.ward.zone)
    assert "Dr Olga Oncologist" in body and "Eligibility for high-dose IL-2 attested" in body
    assert f"{local:%H:%M} CST" in body and "CV-SBP" in body
    fallback = pdf_text.__globals__["parse_text"](response.content)  # the parser used where pdftotext is missing
    assert "Dr Olga Oncologist" in fallback and "Eligibility for high-dose IL-2 attested" in fallback
    from il2ward.models import SecurityEvent

    export = SecurityEvent.objects.get(kind="export", user=staff.oncologist)  # the security log says what left
    assert export.detail == {"format": "pdf", "course": held_course.pk}


def test_course_forms_load_as_fragments_for_those_who_may_use_them(client, staff, held_course, frozen):
    pk = held_course.pk
    client.force_login(staff.oncologist)
    page = text(client.get(f"/courses/{pk}/"))
    assert f'hx-get="/courses/{pk}/forms/stop/"' in page and 'name="stop-reason"' not in page
    fragment = text(client.get(f"/courses/{pk}/forms/stop/"))
    assert 'name="stop-reason"' in fragment and f'action="/courses/{pk}/stop/"' in fragment
    assert "Signing means: <em>Course stopped</em>" in fragment
    assert client.get(f"/courses/{pk}/forms/nope/").status_code == 404
    client.force_login(staff.nurse)
    assert client.get(f"/courses/{pk}/forms/stop/").status_code == 403
    assert 'name="adverse_event-term"' in text(client.get(f"/courses/{pk}/forms/adverse_event/"))


def test_a_form_posted_with_errors_comes_back_open_with_the_errors(client, staff, held_course, frozen):
    client.force_login(staff.oncologist)
    response = client.post(f"/courses/{held_course.pk}/stop/", {"stop-reason": "", "stop-password": PASSWORD})
    html = text(response)
    assert response.status_code == 400
    assert re.search(r'<details class="card mb-2 border-danger" id="form-stop" open>', html)
    assert 'name="stop-reason"' in html and "This field is required" in html
    assert Course.objects.get().status == "active"


def test_the_plots_line_up_dose_by_dose(client, staff, held_course, frozen):
    client.force_login(staff.oncologist)
    html = client.get(f"/courses/{held_course.pk}/").content.decode()
    svgs = re.findall(r'<svg class="trend".*?</svg>', html, re.S)
    marks = [re.findall(r'<path d="M([\d.]+),', svg) for svg in svgs]  # the triangle over each dose, by x
    assert len(marks) == 7 and len(marks[0]) == 14  # cycle 1 shown (cycle 2 is days away)
    assert all(m == marks[0] for m in marks)
