"""The demo ward is built through the real services and shows what the README promises."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from fixtures import demo
from il2ward.audit import verify_chain
from il2ward.models import Patient, Role, Ward
from scheduling.models import Course, Dose, Hold
from tests.conftest import NOW

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded():
    return demo.load(now=NOW)


def test_demo_has_a_ward_with_its_zone_one_user_per_role_and_six_patients(loaded):
    assert loaded == {"loaded": True, "ward": "onc4", "patients": 6}
    assert Ward.objects.get(code="onc4").tz == "America/Chicago"
    assert {g.name for g in Group.objects.filter(user__isnull=False)} == set(Role.values)
    assert Patient.objects.count() == 6


def test_demo_has_a_course_mid_cycle_1_with_doses_given_and_one_held(loaded):
    course = Course.objects.get(patient__mrn="DEMO-001")
    assert course.status == Course.Status.ACTIVE
    assert course.eligibility_attested
    cycle1 = Dose.objects.filter(course=course, cycle=1)
    assert cycle1.filter(status=Dose.Status.GIVEN).count() == 6
    assert list(Hold.objects.filter(dose__course=course).values_list("reason", flat=True)) == ["CV-SBP"]
    assert cycle1.filter(status=Dose.Status.SCHEDULED).count() == 7


def test_demo_has_a_course_in_its_rest_days(loaded):
    course = Course.objects.get(patient__mrn="DEMO-002")
    assert course.status == Course.Status.REST
    assert Dose.objects.filter(course=course, cycle=1, status=Dose.Status.SCHEDULED).count() == 0
    assert Dose.objects.filter(course=course, cycle=2, status=Dose.Status.SCHEDULED).count() == 14


def test_demo_flags_a_hold_and_an_incomplete_assessment(loaded):
    flags = dict(
        Dose.objects.filter(status=Dose.Status.SCHEDULED, flag__in=["hold", "incomplete"]).values_list(
            "course__patient__mrn", "flag"
        )
    )
    assert flags == {"DEMO-003": "hold", "DEMO-005": "incomplete"}


def test_demo_audit_chain_is_intact_and_loading_twice_changes_nothing(loaded):
    assert verify_chain() is None
    doses = Dose.objects.count()
    assert demo.load(now=NOW) == {"loaded": False}
    assert Dose.objects.count() == doses


def test_load_demo_command(capsys):
    call_command("load_demo")
    assert "demo ward onc4 loaded with 6 patients" in capsys.readouterr().out
