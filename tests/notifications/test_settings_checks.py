"""Reminder settings are validated at start-up (Django system checks) with an error naming the setting."""

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from il2ward import checks
from scheduling.services import reminders
from tests.conftest import NOW


def names(found) -> set[str]:
    return {name for name, _ in found}


def test_the_defaults_are_valid(settings):
    assert checks.problems() == []
    call_command("check")


def test_an_overdue_offset_at_or_past_the_window_is_refused_because_dose_overdue_would_never_fire(settings):
    settings.IL2WARD_WINDOW_MINUTES = 30
    settings.IL2WARD_DOSE_OVERDUE_MINUTES = 30
    assert names(checks.problems()) == {"IL2WARD_DOSE_OVERDUE_MINUTES"}
    with pytest.raises(SystemCheckError, match="IL2WARD_DOSE_OVERDUE_MINUTES"):
        call_command("check")
    settings.IL2WARD_DOSE_OVERDUE_MINUTES = 29  # the nearest allowed value
    assert checks.problems() == []


@pytest.mark.parametrize(
    "name", ["IL2WARD_ESCALATE_AFTER_MINUTES", "IL2WARD_DOSE_DUE_MINUTES", "IL2WARD_DELIVERY_MAX_ATTEMPTS"]
)
def test_zero_is_refused_and_one_allowed(settings, name):
    setattr(settings, name, 0)
    assert names(checks.problems()) == {name}
    setattr(settings, name, 1)
    assert checks.problems() == []


def test_a_daily_hour_outside_the_day_is_refused(settings):
    settings.IL2WARD_DAILY_LABS_HOUR = 24
    assert names(checks.problems()) == {"IL2WARD_DAILY_LABS_HOUR"}
    settings.IL2WARD_DAILY_LABS_HOUR = 23
    assert checks.problems() == []


@pytest.mark.django_db
def test_the_escalation_sweep_names_the_setting_instead_of_dividing_by_zero(settings):
    settings.IL2WARD_ESCALATE_AFTER_MINUTES = 0
    with pytest.raises(ImproperlyConfigured, match="IL2WARD_ESCALATE_AFTER_MINUTES"):
        reminders.escalate_holds(now=NOW + timedelta(hours=1))


def test_an_escalation_chain_with_an_unknown_role_or_no_delay_is_refused(settings):
    settings.IL2WARD_ESCALATION_CHAIN = "charge_nurse:15,matron:10"
    assert names(checks.problems()) == {"IL2WARD_ESCALATION_CHAIN"}
    settings.IL2WARD_ESCALATION_CHAIN = "charge_nurse:0"
    assert names(checks.problems()) == {"IL2WARD_ESCALATION_CHAIN"}
    settings.IL2WARD_ESCALATION_CHAIN = "charge_nurse+on_call_oncologist:1,backup:1"
    assert checks.problems() == []
