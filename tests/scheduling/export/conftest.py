"""The demo ward (fixtures/demo.py, built through the real services) as the export tests' mid-cycle course."""

from types import SimpleNamespace

import pytest

from tests.conftest import NOW


@pytest.fixture
def demo(db):
    """The demo loaded at NOW: Maria Lopez mid cycle 1 (doses 1–7 charted, dose 4 held by CV-SBP), and the others."""
    from django.contrib.auth import get_user_model

    from fixtures import demo as demo_module
    from scheduling.models import Course

    demo_module.load(now=NOW)
    users = {u.username: u for u in get_user_model().objects.all()}
    courses = {c.patient.name: c for c in Course.objects.select_related("patient")}
    return SimpleNamespace(
        users=users,
        courses=courses,
        maria=courses["Maria Lopez"],
        password=demo_module.PASSWORD,
        now=NOW,
    )
