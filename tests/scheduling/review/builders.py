"""Courses charted the way a ward charts them (through the real services), for the course-review tests.

`build_course(patient, now=..., charted=7, abnormal={4: {"sbp": 86}})` makes a course whose first `charted` slots are
already past at `now` (each with a pre-dose assessment, an evaluation and then a blind-checked administration or a
hold), and whose next slot is due `next_in` after `now`.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from monitoring import services as obs
from scheduling import services as sched
from scheduling.domain.eligibility import ELIGIBILITY_ITEMS
from scheduling.models import Course, Dose
from tests.charting import EXPLICIT_NEURO, EXPLICIT_VITALS, normal_exam
from tests.conftest import NOW, PASSWORD

ELIGIBLE = dict.fromkeys(ELIGIBILITY_ITEMS, True)


@dataclass
class Staff:
    oncologist: object
    nurse: object
    verifier: object


def assessment(patient, nurse, *, at, sbp=118, heart_rate=96, rass=0, urine_ml=600, weight=None, spo2=97, o2=None):
    """What a nurse charts before a dose: vitals, neuro, bedside exam, 8 h urine, labs and (optionally) a weight."""
    obs.vitals_record(
        patient=patient,
        recorded_at=at,
        sbp=sbp,
        dbp=min(70, sbp - 20),
        heart_rate=heart_rate,
        resp_rate=16,
        spo2=spo2,
        temp_c=Decimal("37.4"),
        **{**EXPLICIT_VITALS, "o2_lpm": EXPLICIT_VITALS["o2_lpm"] if o2 is None else o2},
        by=nurse,
        now=at,
    )
    obs.neuro_record(patient=patient, recorded_at=at, rass=rass, confusion="none", **EXPLICIT_NEURO, by=nurse, now=at)
    normal_exam(patient, nurse, at=at)
    obs.fluids_record(
        patient=patient, period_start=at - timedelta(hours=8), period_end=at, urine_ml=urine_ml, by=nurse, now=at
    )
    if weight is not None:
        obs.weight_record(patient=patient, recorded_at=at, weight_kg=weight, by=nurse, now=at)
    labs(patient, nurse, at=at)


def labs(patient, nurse, *, at, creatinine="1.00"):
    obs.labs_record(
        patient=patient,
        recorded_at=at,
        creatinine_mg_dl=Decimal(creatinine),
        platelets_k_ul=Decimal(200),
        bilirubin_mg_dl=Decimal("0.8"),
        bicarbonate_mmol_l=Decimal(24),
        by=nurse,
        now=at,
    )


def chart(dose: Dose, staff: Staff, *, abnormal: dict | None = None, extra_vitals: int = 0) -> None:
    """Assess 15 min before the slot, evaluate, then hold (hold/stop decision) or give with a blind double check."""
    course = dose.course
    patient = course.patient
    at = dose.due_at - timedelta(minutes=15)
    for k in range(extra_vitals, 0, -1):  # more observations between doses (the query count must not follow them)
        obs.vitals_record(
            patient=patient,
            recorded_at=at - timedelta(minutes=30 * k),
            sbp=112,
            dbp=66,
            heart_rate=92,
            resp_rate=16,
            spo2=97,
            temp_c=Decimal("37.2"),
            **EXPLICIT_VITALS,
            by=staff.nurse,
            now=at - timedelta(minutes=30 * k),
        )
    weight = (course.baseline_weight_kg * (1 + Decimal("0.004") * dose.number)).quantize(Decimal("0.1"))
    assessment(patient, staff.nurse, at=at, weight=weight, **(abnormal or {}))
    evaluation = sched.dose_evaluate(dose_id=dose.pk, now=at + timedelta(minutes=2), trigger="test")
    if evaluation.decision in ("hold", "stop"):
        rule = next(f["rule"] for f in evaluation.findings if f["level"] in ("hold", "stop"))
        sched.dose_hold(
            dose_id=dose.pk, reason=rule, note="Held per protocol.", by=staff.nurse, now=at + timedelta(minutes=10)
        )
        return
    start = dose.due_at + timedelta(minutes=5)
    sched.dose_administer(
        dose_id=dose.pk,
        by=staff.nurse,
        started_at=start,
        ended_at=start + timedelta(minutes=15),
        verifier_username=staff.verifier.get_username(),
        verifier_password=PASSWORD,
        verified_dose_iu=course.dose_iu,
        vial_lot="LOT1",
        reconstituted_at=start - timedelta(minutes=20),
        now=start + timedelta(minutes=16),
    )


def build_course(
    patient,
    staff: Staff,
    *,
    now=NOW,
    charted: int = 7,
    abnormal: dict | None = None,
    next_in=timedelta(minutes=40),
    weight="80.0",
    attest=True,
    extra_vitals: int = 0,
) -> Course:
    first = now + next_in - charted * timedelta(hours=8)
    setup = min(first, now) - timedelta(hours=6)
    labs(patient, staff.nurse, at=setup - timedelta(hours=1))
    course = sched.course_create(
        patient=patient,
        first_dose_at=first,
        dosing_weight_kg=Decimal(weight),
        baseline_weight_kg=Decimal(weight),
        by=staff.oncologist,
        now=setup,
    )
    sched.course_materialise_calendar(course_id=course.pk, now=setup)
    if attest:
        sched.course_attest_eligibility(
            course_id=course.pk, items=ELIGIBLE, password=PASSWORD, by=staff.oncologist, now=setup
        )
    abnormal = abnormal or {}
    for dose in Dose.objects.filter(course=course, due_at__lte=now - timedelta(minutes=30)).order_by("cycle", "number"):
        chart(
            dose,
            staff,
            abnormal=abnormal.get((dose.cycle, dose.number), abnormal.get(dose.number)),
            extra_vitals=extra_vitals,
        )
    sched.courses_advance_status(now=now)
    course.refresh_from_db()
    return course


def next_open(course) -> Dose:
    return Dose.objects.filter(course=course, status=Dose.Status.SCHEDULED).order_by("cycle", "number").first()


def flag_next(course, staff: Staff, *, now, **values) -> Dose:
    """Chart an assessment just before `now` and evaluate the next open dose (e.g. sbp=85 → a hold flag)."""
    dose = next_open(course)
    assessment(course.patient, staff.nurse, at=now - timedelta(minutes=10), **values)
    sched.dose_evaluate(dose_id=dose.pk, now=now - timedelta(minutes=5), trigger="test")
    dose.refresh_from_db()
    return dose
