"""What an oncologist signs, as small records: built when signing and rebuilt by the course page, which shows a record
"changed after signing" when the two differ. Pure: the arguments are rows already loaded."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from common.timefmt import iso_z
from scheduling.domain.aware import as_utc

RESPONSE_DUE_DAYS = 28  # SCH-RETREAT: response assessment due ~28 days after the course ends


def local_date(value: datetime, zone: ZoneInfo) -> date:
    return as_utc(value).astimezone(zone).date()


def response_due_on(course_end: date) -> date:
    return course_end + timedelta(days=RESPONSE_DUE_DAYS)


def record_cycle_decision(decision) -> dict:
    return {
        "course": decision.course_id,
        "cycle": decision.cycle,
        "dose": decision.dose_id,
        "evaluation": decision.evaluation_id,
        "choice": decision.choice,
        "reason": decision.reason,
    }


def record_override(*, dose_id: int, evaluation_id: int, covers: list, reason: str) -> dict:
    """What an oncologist signs when she overrides a hold: the findings it covers (INV-OVR) and why."""
    return {"dose": dose_id, "evaluation": evaluation_id, "covers": covers, "reason": reason}


def record_cycle2(course) -> dict:
    return {"course": course.pk, "cycle2_first_at": iso_z(course.cycle2_first_at)}


def record_discharge(course) -> dict:
    return {"course": course.pk, "discharge_date": course.discharge_date.isoformat() if course.discharge_date else None}


def record_response(assessment) -> dict:
    return {
        "course": assessment.course_id,
        "assessed_on": assessment.assessed_on.isoformat(),
        "response": assessment.response,
        "note": assessment.note,
    }
