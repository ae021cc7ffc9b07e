"""The course pages (API.md: Pages with stable addresses): the course review and the new-course form."""

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from scheduling.models import Course

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]
NEW = "/courses/new/"


def form(patient, **overrides) -> dict:
    return {
        "patient": patient.pk,
        "first_dose_local": "2027-03-12T16:00",  # ward-local wall-clock time
        "dosing_weight_kg": "80",
        "dosing_weight_source": "actual",
        "rule_set": "consensus-2014",
        **overrides,
    }


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_course_page_lists_the_28_slots(client, nurse_a, make_course, patient_a):
    course = make_course(patient_a)
    client.force_login(nurse_a)
    response = client.get(f"/courses/{course.pk}/")
    assert response.status_code == 200
    html = text(response)
    assert len(re.findall(r'<tr class="status-scheduled', html)) == 28
    # A nurse may be a dose's second checker: the order, never the computed dose (blind double check).
    assert "600,000 IU/kg</strong> × 80.0 kg" in html and patient_a.name in html
    assert "48,000,000" not in html


def test_course_page_shows_the_slots_in_ward_local_time(client, nurse_a, make_course, patient_a):
    course = make_course(patient_a)
    client.force_login(nurse_a)
    html = text(client.get(f"/courses/{course.pk}/"))
    assert "America/Chicago" in html
    assert "Fri 12 Mar 2027 16:00 CST" in html
    assert "Sun 14 Mar 2027 09:00 CDT" in html  # 8 h after 01:00 CST across the spring-forward
    assert "Fri 26 Mar 2027 16:00 CDT" in html  # cycle 2, day 15
    assert not re.search(r"\d\d:\d\d UTC", html)  # no UTC time shown under the ward's zone


def test_course_page_of_a_berlin_ward_is_in_berlin_time(client, oncologist, make_course, patient_b):
    course = make_course(patient_b)
    client.force_login(oncologist)
    html = text(client.get(f"/courses/{course.pk}/"))
    assert "Europe/Berlin" in html and "Fri 12 Mar 2027 23:00 CET" in html


def test_course_page_is_404_for_a_nurse_of_another_ward(client, nurse_b, make_course, patient_a):
    course = make_course(patient_a)
    client.force_login(nurse_b)
    response = client.get(f"/courses/{course.pk}/")
    assert response.status_code == 404
    assert patient_a.name not in response.content.decode()


def test_course_page_while_scheduling_says_so(client, oncologist, patient_a):
    from decimal import Decimal

    from scheduling.services import course_create

    course = course_create(
        patient=patient_a,
        first_dose_at=datetime(2027, 3, 12, 22, 0, tzinfo=UTC),
        dosing_weight_kg=Decimal(80),
        by=oncologist,
        now=datetime(2027, 3, 10, tzinfo=UTC),
    )
    client.force_login(oncologist)
    html = text(client.get(f"/courses/{course.pk}/"))
    assert "The calendar is being written" in html and 'class="status-' not in html


def test_new_course_page_shows_the_form_to_an_oncologist(client, oncologist, patient_a):
    client.force_login(oncologist)
    response = client.get(NEW)
    assert response.status_code == 200
    html = text(response)
    assert 'name="dosing_weight_kg"' in html and 'name="first_dose_local"' in html
    assert patient_a.name in html


def test_preview_shows_dose_and_preparation_for_a_weight_and_stores_nothing(client, oncologist, patient_a):
    client.force_login(oncologist)
    response = client.post(NEW, {**form(patient_a), "preview": "1"})
    assert response.status_code == 200
    html = text(response)
    assert '<dd class="col-6" id="preview-dose">48,000,000 IU</dd>' in html
    assert "2.67 mL" in html
    assert re.search(r"Vials \(22 MIU\)</dt> ?<dd[^>]*>3</dd>", html)
    assert "50 mL D5W" in html
    assert len(re.findall(r"<li>C[12] #\d+ ", html)) == 28
    assert 'id="preview-retreatment"' not in html  # a first course: nothing bars it
    assert not Course.objects.exists()


def test_preview_calendar_is_in_ward_local_time(client, oncologist, patient_a):
    client.force_login(oncologist)
    html = text(client.post(NEW, {**form(patient_a), "preview": "1"}))
    assert "C1 #1 Fri 12 Mar 16:00" in html
    assert "C1 #6 Sun 14 Mar 09:00" in html
    assert "C2 #1 Fri 26 Mar 16:00" in html


def test_preview_with_only_a_weight_shows_the_dose(client, oncologist, patient_a):
    client.force_login(oncologist)
    html = text(client.post(NEW, {"dosing_weight_kg": "42.3", "preview": "1"}))
    assert "25,380,000 IU" in html and "1.41 mL" in html and "25 mL D5W" in html
    assert not Course.objects.exists()


def test_preview_follows_the_sites_diluent_policy(client, settings, oncologist, patient_a):
    """The preview must show what the course will use: 120 kg → 72 MIU, 50 mL under the older label's policy."""
    settings.IL2WARD_DILUENT_POLICY = "label-fixed-50"
    client.force_login(oncologist)
    html = text(client.post(NEW, {**form(patient_a, dosing_weight_kg="120"), "preview": "1"}))
    assert "72,000,000 IU" in html
    assert "50 mL D5W" in html and "100 mL D5W" not in html


def test_submit_creates_the_course_from_ward_local_time(client, oncologist, patient_a):
    client.force_login(oncologist)
    response = client.post(NEW, form(patient_a))
    course = Course.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/courses/{course.pk}/"
    assert course.patient == patient_a and course.status == Course.Status.SCHEDULING
    assert course.first_dose_at == datetime(2027, 3, 12, 22, 0, tzinfo=UTC)  # 16:00 CST, not 16:00 UTC
    assert course.dose_iu == 48_000_000 and course.oncologist == oncologist


def test_submit_with_a_bad_weight_shows_the_error_and_stores_nothing(client, oncologist, patient_a):
    client.force_login(oncologist)
    response = client.post(NEW, form(patient_a, dosing_weight_kg="19.9"))
    assert response.status_code == 200
    assert "dosing_weight_kg" in text(response) and "20" in text(response)
    assert not Course.objects.exists()


def test_submit_for_a_patient_with_an_open_course_shows_why_and_stores_nothing(
    client, oncologist, patient_a, make_course
):
    make_course(patient_a)
    client.force_login(oncologist)
    response = client.post(NEW, form(patient_a, first_dose_local="2027-06-01T16:00"))
    assert response.status_code == 200
    assert "already has an open course" in text(response)
    assert Course.objects.count() == 1


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_nurse_gets_403_on_the_new_course_page(client, nurse_a, patient_a, method):
    client.force_login(nurse_a)
    response = getattr(client, method)(NEW, form(patient_a) if method == "post" else None)
    assert response.status_code == 403
    assert not Course.objects.exists()


@pytest.mark.parametrize("path", [NEW, "/courses/1/", "/courses/"])
def test_anonymous_is_redirected_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def test_preview_says_when_a_new_course_may_start_sch_retreat(client, oncologist, patient_a, make_course):
    """SCH-RETREAT: discharge + 49 days; the form shows the earliest date before anything is saved."""
    earlier = make_course(patient_a, first_dose_at=datetime(2027, 1, 4, 22, 0, tzinfo=UTC))
    Course.objects.filter(pk=earlier.pk).update(status=Course.Status.COMPLETED, discharge_date="2027-01-25")
    client.force_login(oncologist)
    html = text(client.post(NEW, {**form(patient_a), "preview": "1"}))  # first dose 12 Mar 2027: too early
    assert 'id="preview-retreatment"' in html
    assert "Earliest start: Mon 15 Mar 2027" in html
    assert Course.objects.count() == 1


def _weighed(patient, nurse, kg):
    from django.utils import timezone

    from monitoring import services as obs

    now = timezone.now()
    obs.weight_record(patient=patient, recorded_at=now, weight_kg=Decimal(kg), by=nurse, now=now)


def test_a_dosing_weight_in_pounds_is_refused_with_the_confirmation_offered(client, oncologist, nurse_a, patient_a):
    """HOLD-RULES §3a INV-PLAUSIBLE: 176 typed for an 80 kg patient (lb for kg) is a 2.2x overdose."""
    _weighed(patient_a, nurse_a, "80.0")
    client.force_login(oncologist)
    html = text(client.post(NEW, form(patient_a, dosing_weight_kg="176")))
    assert "176 kg is more than 10 % from the latest measured weight 80.0 kg (pounds for kilograms?)" in html
    assert re.search(r'<input type="checkbox" name="confirm"', html)
    assert not Course.objects.exists()


def test_the_nearest_plausible_dosing_weight_creates_the_course_without_asking(client, oncologist, nurse_a, patient_a):
    _weighed(patient_a, nurse_a, "80.0")
    client.force_login(oncologist)
    assert 'type="checkbox" name="confirm"' not in text(client.get(NEW))
    response = client.post(NEW, form(patient_a, dosing_weight_kg="88"))  # exactly 10 % over
    assert response.status_code == 302 and Course.objects.get().weight_confirmed_reason == ""


def test_a_confirmed_dosing_weight_is_stored_with_its_reason_and_shown_on_the_course(
    client, oncologist, nurse_a, patient_a
):
    _weighed(patient_a, nurse_a, "80.0")
    client.force_login(oncologist)
    response = client.post(
        NEW, form(patient_a, dosing_weight_kg="96", confirm="on", confirm_reason="weighed again on admission")
    )
    course = Course.objects.get()
    assert response.status_code == 302 and course.weight_confirmed_reason == "weighed again on admission"
    html = text(client.get(f"/courses/{course.pk}/"))
    assert "confirmed-reason" in html and "weighed again on admission" in html
