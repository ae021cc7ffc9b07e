"""The observation models agree with the rule engine's vocabulary; the admin shows them read-only."""

import pytest

from monitoring import services
from monitoring.api import LabsIn, LabsOut
from monitoring.domain.snapshot import CONFUSION_LEVELS, EVENT_KINDS, RHYTHMS
from monitoring.models import LAB_FIELDS, OBSERVATION_MODELS, ClinicalEvent, LabResult, NeuroAssessment, VitalSigns
from tests.conftest import make_staff
from tests.monitoring.conftest import KINDS, record


def test_choices_match_the_rule_engine():
    assert tuple(VitalSigns.Rhythm.values) == RHYTHMS
    assert tuple(NeuroAssessment.Confusion.values) == CONFUSION_LEVELS
    assert tuple(value for value, _ in ClinicalEvent._meta.get_field("kind").choices) == EVENT_KINDS


def test_every_lab_column_is_validated_and_exposed():
    columns = tuple(f.name for f in LabResult._meta.get_fields() if f.name.endswith(("_dl", "_ul", "_l", "_ml")))
    assert columns == LAB_FIELDS
    assert tuple(services.LAB_BOUNDS) == LAB_FIELDS
    assert tuple(f for f in LabsIn().fields if f != "recorded_at") == LAB_FIELDS
    assert set(LAB_FIELDS) <= set(LabsOut.Meta.fields)


def test_the_api_api_md_event_kinds_are_all_accepted():
    api_md = {
        "heme_positive", "frank_bleeding", "infection", "chest_pain_ecg", "edema", "liver_pain", "hepatic_failure",
        "bullous_dermatitis", "sepsis_unstable", "sustained_vt", "uncontrolled_arrhythmia", "cardiac_tamponade",
        "intubation_over_72h", "dialysis_over_72h", "coma_or_psychosis_over_48h", "seizures",
        "bowel_ischemia_perforation", "gi_bleed_surgery",
    }  # fmt: skip
    assert api_md <= set(EVENT_KINDS)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", KINDS)
def test_admin_lists_observations_but_cannot_change_them(kind, client, nurse_a, patient_a, fast_password_hashing):
    row = record(kind, patient_a, nurse_a)
    admin = make_staff("admin_user", "admin")
    admin.is_superuser = True
    admin.save()
    client.force_login(admin)
    opts = OBSERVATION_MODELS[kind]._meta
    base = f"/admin/{opts.app_label}/{opts.model_name}/"

    assert client.get(base).status_code == 200
    assert client.get(f"{base}{row.pk}/change/").status_code == 200  # view only
    assert client.post(f"{base}{row.pk}/change/", {}).status_code == 403
    assert client.get(f"{base}add/").status_code == 403
    assert client.post(f"{base}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert OBSERVATION_MODELS[kind].objects.filter(pk=row.pk).exists()


@pytest.mark.django_db
def test_admin_shows_rule_set_versions_read_only(client, fast_password_hashing):
    from monitoring.services import rule_set_current
    from tests.conftest import NOW

    version = rule_set_current("consensus-2014", now=NOW)
    admin = make_staff("admin_user", "admin")
    admin.is_superuser = True
    admin.save()
    client.force_login(admin)

    assert client.get("/admin/monitoring/rulesetversion/").status_code == 200
    assert client.get("/admin/monitoring/rulesetversion/add/").status_code == 403
    assert client.post(f"/admin/monitoring/rulesetversion/{version.pk}/delete/", {"post": "yes"}).status_code == 403
