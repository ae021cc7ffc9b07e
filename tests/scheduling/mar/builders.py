"""A ward full of IL-2 patients, written in bulk (no services): for query-count tests and bench/board.py.

Read-only pages only need the rows to look like a running ward; the services are exercised by the other tests.
Patients are spread over the board's states: due now, due soon, hold (CV-SBP), given, held, incomplete, rest.
"""

from datetime import date, timedelta
from decimal import Decimal

from il2ward.models import Patient
from monitoring.models import VitalSigns
from monitoring.services import rule_set_current
from scheduling.domain import calendar
from scheduling.models import Course, Dose, DoseEvaluation, Hold

HOLD_FINDING = {
    "rule": "CV-SBP",
    "level": "hold",
    "value": "85 mmHg",
    "threshold": "< 90 mmHg",
    "message": "Systolic BP below 90 mmHg: hold this dose.",
}


def populate_ward(ward, *, patients: int, now, oncologist, nurse, start: int = 0) -> list[Course]:
    """`patients` patients on `ward`, each with an open course at a different point (numbered from `start`)."""
    rule_set = rule_set_current("consensus-2014", now=now)
    zone = ward.zone
    people = Patient.objects.bulk_create(
        [
            Patient(
                mrn=f"{ward.code}-{i:05d}",
                name=f"Patient {i:05d}",
                birth_date=date(1970, 1, 1),
                ward=ward,
                assigned_nurse=nurse if i % 2 else None,
            )
            for i in range(start, start + patients)
        ]
    )
    courses = []
    for i, person in enumerate(people, start=start):
        kind = i % 7
        if kind == 6:  # rest days: cycle 1 ended yesterday
            first = now - timedelta(days=6)
        else:  # mid cycle 1 with the next slot due from 20 min to ~7 h from now
            first = now - timedelta(hours=8 * (1 + kind % 4)) + timedelta(minutes=20 + 70 * (kind % 3))
        courses.append(
            Course(
                patient=person,
                status=Course.Status.REST if kind == 6 else Course.Status.ACTIVE,
                dosing_weight_kg=Decimal("80.0"),
                baseline_weight_kg=Decimal("80.0"),
                dose_iu=48_000_000,
                first_dose_at=first,
                cycle2_first_at=calendar.cycle2_default_start(first, zone=zone),
                rule_set=rule_set,
                oncologist=oncologist,
                created_at=first - timedelta(hours=6),
            )
        )
    courses = Course.objects.bulk_create(courses)
    doses = []
    for course in courses:
        for slot in calendar.course_slots(course.first_dose_at, zone=zone, cycle2_first_at=course.cycle2_first_at):
            status = Dose.Status.SCHEDULED
            if slot.due_at < now - timedelta(hours=1):
                status = Dose.Status.HELD if slot.number % 4 == 0 else Dose.Status.GIVEN
            doses.append(Dose(course=course, cycle=slot.cycle, number=slot.number, due_at=slot.due_at, status=status))
    doses = Dose.objects.bulk_create(doses)
    Hold.objects.bulk_create(
        [
            Hold(dose=d, reason="CV-SBP", rule_ids=["CV-SBP"], by=nurse, at=d.due_at)
            for d in doses
            if d.status == Dose.Status.HELD
        ]
    )
    # The next open slot of every third patient is flagged hold (CV-SBP), of every fifth incomplete.
    nexts = {}
    for d in doses:
        if d.status == Dose.Status.SCHEDULED and d.due_at >= now - timedelta(hours=1):
            nexts.setdefault(d.course_id, d)
    flagged = []
    for i, course in enumerate(courses, start=start):
        dose = nexts.get(course.pk)
        if dose is None or i % 3 and i % 5:
            continue
        hold = i % 3 == 0
        dose.flag = Dose.Flag.HOLD if hold else Dose.Flag.INCOMPLETE
        dose.latest_evaluation = DoseEvaluation(
            dose=dose,
            decision="hold" if hold else "incomplete",
            findings=[HOLD_FINDING] if hold else [],
            missing=[] if hold else ["labs.creatinine"],
            rule_set=rule_set,
            evaluated_at=now - timedelta(minutes=5),
        )
        flagged.append(dose)
    evaluations = DoseEvaluation.objects.bulk_create([d.latest_evaluation for d in flagged])
    for dose, evaluation in zip(flagged, evaluations, strict=True):
        dose.latest_evaluation = evaluation
    Dose.objects.bulk_update(flagged, ["flag", "latest_evaluation"])
    VitalSigns.objects.bulk_create(
        [
            VitalSigns(
                patient=person,
                recorded_at=now - timedelta(minutes=10 + i % 50),
                recorded_by=nurse,
                created_at=now,
                sbp=85 if i % 3 == 0 else 118,
                dbp=60,
                heart_rate=96,
                resp_rate=18,
                spo2=97,
                temp_c=Decimal("37.4"),
                rhythm="sinus",
            )
            for i, person in enumerate(people, start=start)
        ]
    )
    return courses
