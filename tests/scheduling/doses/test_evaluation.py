"""Stored pre-dose evaluations (HOLD-RULES §3): the endpoint, what is stored, rule-set versions, the label-only set,
and the path from new data to a flag (monitoring's on-commit task → scheduling.evaluate_patient)."""

from contextlib import contextmanager
from datetime import timedelta

import pytest
import time_machine
from celery.signals import before_task_publish
from django.utils import timezone

from il2ward.models import AuditEvent, Notification
from monitoring.services import rule_set_override, vitals_record
from scheduling.models import Course, Dose, DoseEvaluation
from scheduling.services import course_materialise_calendar, dose_evaluate
from tests.charting import EXPLICIT_VITALS
from tests.conftest import NOW, PASSWORD
from tests.scheduling.doses.conftest import FIRST, attest, chart, first_dose
from tests.workers import celery_worker, purge_redis, require_redis, test_database_url, wait_until

pytestmark = pytest.mark.django_db


def evaluate(api, user, dose):
    response = api.as_user(user).post(f"/api/v1/doses/{dose.pk}/evaluate/", format="json")
    assert response.status_code == 200, response.content
    return response.json()


def finding(body: dict, rule: str) -> dict:
    found = [f for f in body["findings"] if f["rule"] == rule]
    assert len(found) == 1, body["findings"]
    return found[0]


@pytest.mark.usefixtures("frozen")
def test_sbp_85_holds_with_cv_sbp_and_the_evaluation_is_stored_with_its_inputs(api, ready, patient_a, nurse_a):
    course = ready()
    rows = chart(patient_a, nurse_a, vitals={"sbp": 85, "dbp": 50})
    dose = first_dose(course)
    body = evaluate(api, nurse_a, dose)
    assert body["decision"] == "hold"
    sbp = finding(body, "CV-SBP")
    assert (sbp["level"], sbp["value"], sbp["threshold"]) == ("hold", "85 mmHg", "< 90 mmHg")
    assert sbp["message"]  # a sentence for the nurse
    assert body["rule_set"] == "consensus-2014 v2" and body["evaluated_at"] == "2027-03-10T12:00:00Z"
    assert body["trigger"] == "api" and body["missing"] == []
    stored = DoseEvaluation.objects.get(pk=body["id"])
    assert (stored.rule_set.name, stored.rule_set.version) == ("consensus-2014", 2)  # HOLD-RULES v2 built in
    assert stored.decision == "hold" and stored.findings == body["findings"]
    # The ids of every observation the rules read, as stored and as returned.
    expected = {rows[kind].source_id for kind in ("vitals", "neuro", "weight", "labs")}
    assert expected <= set(stored.observations_used) and body["observations_used"] == stored.observations_used
    dose.refresh_from_db()
    assert dose.flag == "hold" and dose.latest_evaluation_id == stored.pk
    # A new hold flag tells the oncologist and the ward's nurses once (hold_flagged, rule ids only).
    flagged = Notification.objects.filter(kind="hold_flagged", dose_id=dose.pk)
    assert {n.recipient.username for n in flagged} >= {"onc", "nurse_a"}
    assert all(n.details["rules"] == ["CV-SBP"] for n in flagged)
    count = flagged.count()
    evaluate(api, nurse_a, dose)
    assert Notification.objects.filter(kind="hold_flagged", dose_id=dose.pk).count() == count


@pytest.mark.usefixtures("frozen")
def test_the_dose_detail_shows_the_latest_evaluation(api, ready, patient_a, nurse_a):
    course = ready()
    chart(patient_a, nurse_a)
    dose = first_dose(course)
    evaluation = evaluate(api, nurse_a, dose)
    detail = api.get(f"/api/v1/doses/{dose.pk}/").json()
    assert detail["evaluation"]["id"] == evaluation["id"] and detail["evaluation"]["decision"] == "give"
    assert detail["flag"] is None and detail["hold"] is None and detail["overrides"] == []


def test_a_course_stays_on_its_rule_set_version_and_a_new_course_takes_the_site_change(
    ready, patient_a, patient_b, nurse_a, admin_user, make_course
):
    course = ready()
    chart(patient_a, nurse_a, vitals={"sbp": 85, "dbp": 50})
    dose = first_dose(course)
    old = dose_evaluate(dose_id=dose.pk, now=NOW)
    assert old.decision == "hold" and [f["rule"] for f in old.findings] == ["CV-SBP"]

    v3 = rule_set_override(
        name="consensus-2014", overrides={"CV-SBP.hold_below": 80}, reason="site policy", by=admin_user, now=NOW
    )
    assert str(v3) == "consensus-2014 v3" and v3.definition["thresholds"]["CV-SBP.hold_below"] == 80
    again = dose_evaluate(dose_id=dose.pk, now=NOW + timedelta(minutes=1))
    # The running course keeps the version it started with (a newer version of the same name never applies).
    assert again.decision == "hold" and str(again.rule_set) == "consensus-2014 v2"
    assert again.findings[0]["threshold"] == "< 90 mmHg"
    course.refresh_from_db()
    assert str(course.rule_set) == "consensus-2014 v2"
    # A course created after the change takes it.
    newer = make_course(patient_b, first_dose_at=FIRST)
    assert newer.rule_set == v3
    event = AuditEvent.objects.get(action="ruleset.override", object_id=str(v3.pk))
    assert event.actor == admin_user and event.reason == "site policy" and event.new == {"CV-SBP.hold_below": 80}


@pytest.mark.usefixtures("frozen")
def test_a_label_only_course_evaluates_with_its_own_rules(api, oncologist, nurse_a, patient_a, patient_b, make_course):
    """The same data: platelets 25 and creatinine 2.6 stop under consensus-2014 (HM-PLT, RN-CREAT) but are not label
    rules; the label's own creatinine row (LB-CREAT) starts at 4.5 mg/dL."""
    response = api.as_user(oncologist).post(
        "/api/v1/courses/",
        {
            "patient": patient_a.pk,
            "first_dose_at": FIRST.isoformat(),
            "dosing_weight_kg": "80",
            "rule_set": "label-only",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["rule_set"] == "label-only v2"
    label = Course.objects.get(pk=response.json()["id"])
    course_materialise_calendar(course_id=label.pk, now=NOW)
    consensus = make_course(patient_b, first_dose_at=FIRST, now=NOW - timedelta(hours=2))
    abnormal = {"labs": {"platelets_k_ul": 25, "creatinine_mg_dl": "2.6"}}
    chart(patient_a, nurse_a, **abnormal)
    chart(patient_b, nurse_a, **abnormal)

    label_body = evaluate(api, oncologist, first_dose(label))
    consensus_body = evaluate(api, oncologist, first_dose(consensus))

    assert label_body["rule_set"] == "label-only v2" and label_body["decision"] == "give", label_body
    assert not {f["rule"] for f in label_body["findings"]} & {"HM-PLT", "RN-CREAT"}
    assert consensus_body["rule_set"] == "consensus-2014 v2" and consensus_body["decision"] == "stop"
    assert {"HM-PLT", "RN-CREAT"} <= {f["rule"] for f in consensus_body["findings"]}
    # The label set's own rule on the label's threshold: creatinine 4.6 holds (LB-CREAT).
    chart(patient_a, nurse_a, skip=("vitals", "neuro", "weight", "fluids"), labs={"creatinine_mg_dl": "4.6"})
    body = evaluate(api, oncologist, first_dose(label))
    assert body["decision"] == "hold" and finding(body, "LB-CREAT")["level"] == "hold"


@contextmanager
def published_tasks():
    sent: list[tuple[str, tuple]] = []

    def record(sender=None, body=None, **kwargs):
        sent.append((sender, tuple(body[0])))

    before_task_publish.connect(record, weak=False)
    try:
        yield sent
    finally:
        before_task_publish.disconnect(record)


def test_new_data_sends_evaluate_patient_after_commit_and_the_task_flags_the_dose(
    ready, patient_a, nurse_a, django_capture_on_commit_callbacks
):
    from scheduling import tasks

    course = ready()
    chart(patient_a, nurse_a)
    dose = first_dose(course)
    with django_capture_on_commit_callbacks() as callbacks:
        vitals_record(
            patient=patient_a,
            recorded_at=NOW - timedelta(minutes=2),
            sbp=85,
            dbp=50,
            heart_rate=90,
            resp_rate=16,
            spo2=97,
            temp_c=37,
            **EXPLICIT_VITALS,
            by=nurse_a,
            now=NOW,
        )
    dose.refresh_from_db()
    assert dose.flag == "" and dose.latest_evaluation is None  # nothing is evaluated inside the write
    with published_tasks() as sent:
        for callback in callbacks:
            callback()
    assert sent == [("scheduling.evaluate_patient", (patient_a.pk,))]  # the patient id only

    with time_machine.travel(NOW, tick=False):
        tasks.evaluate_patient(patient_a.pk)
    dose.refresh_from_db()
    assert dose.flag == "hold"
    assert dose.latest_evaluation.trigger == "new_data" and dose.latest_evaluation.findings[0]["rule"] == "CV-SBP"


def test_the_task_evaluates_only_the_next_open_slot(ready, patient_a, nurse_a):
    from scheduling import tasks

    course = ready()
    chart(patient_a, nurse_a, vitals={"sbp": 85, "dbp": 50})
    with time_machine.travel(NOW, tick=False):
        tasks.evaluate_patient(patient_a.pk)
    flagged = list(Dose.objects.filter(course=course).exclude(flag="").values_list("cycle", "number"))
    assert flagged == [(1, 1)]


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_flags_the_dose_after_vitals_are_posted(
    transactional_db, tmp_path, api, ready, patient_a, nurse_a
):
    """The whole path: POST vitals → commit → Redis → worker → scheduling.evaluate_patient → the dose is flagged."""
    redis_url = require_redis()
    database_url = test_database_url()
    purge_redis(redis_url)
    now = timezone.now()
    course = ready(first=now + timedelta(minutes=30))
    dose = first_dose(course)
    with celery_worker(tmp_path, redis_url=redis_url, database_url=database_url) as worker:
        response = api.as_user(nurse_a).post(
            f"/api/v1/patients/{patient_a.pk}/vitals/",
            {
                "recorded_at": now.isoformat(),
                "sbp": 85,
                "dbp": 50,
                "heart_rate": 90,
                "resp_rate": 16,
                "spo2": 97,
                "temp_c": "37.0",
            },
            format="json",
        )
        assert response.status_code == 201, response.content

        def flagged() -> bool:
            return Dose.objects.filter(pk=dose.pk, flag="hold").exists()

        wait_until(flagged, timeout=60, message=lambda: f"worker log:\n{worker.log()}")
        assert "scheduling.evaluate_patient" in worker.log()
    dose.refresh_from_db()
    assert dose.latest_evaluation.trigger == "new_data"
    assert [f["rule"] for f in dose.latest_evaluation.findings if f["level"] == "hold"] == ["CV-SBP"]


def test_an_oncologist_override_is_kept_as_a_signature(ready, patient_a, nurse_a, oncologist):
    """Covered in full over the API (test_holds_api); here the service's signature content."""
    from scheduling.services import dose_override

    course = ready()
    chart(patient_a, nurse_a, vitals={"sbp": 85, "dbp": 50})
    override = dose_override(
        dose_id=first_dose(course).pk, reason="SBP 85 is her baseline", password=PASSWORD, by=oncologist, now=NOW
    )
    assert override.signature.signer == oncologist and override.signature.meaning == "Hold overridden for one dose"
    assert override.evaluation.decision == "hold" and override.evaluation.trigger == "override"


@pytest.fixture
def admin_user(db):
    from tests.conftest import make_staff

    return make_staff("site_admin", "admin")


def test_attest_helper_refuses_without_creatinine(patient_a, oncologist, make_course):
    """The fixture's precondition is real: eligibility needs a creatinine within 72 h (HOLD-RULES §2)."""
    from il2ward.errors import Conflict

    course = make_course(patient_a, first_dose_at=FIRST, now=NOW)
    with pytest.raises(Conflict) as raised:
        attest(course, oncologist)
    assert raised.value.code == "baseline_creatinine_missing"
