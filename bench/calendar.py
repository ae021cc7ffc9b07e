"""Issue 2 figures: the dose calendar.

- Generating one course's calendar (scheduling.domain.calendar.course_slots, pure) costs less than half of one trivial
  authenticated request.
- Materialising 1,000 courses (course_materialise_calendar, one bulk insert per course) costs at most 10.5×
  materialising 100: the per-course cost does not grow with the number of courses or slots already in the table.
"""

import statistics
import time
from datetime import date, timedelta
from decimal import Decimal

from bench.common import Figure, figure, median_time, setup_django, trivial_request, world

# Each size is materialised several times, interleaved (the small one more often: its run is short and so noisier),
# and the median kept.
PLAN = (100, 100, 1000, 100, 100, 1000, 100, 100, 1000, 100)


def _unscheduled_courses(n: int, *, tag: str, now) -> list[int]:
    """n patients each with a course still `scheduling` (the state course_create leaves it in).

    Setup, not what is measured: rows are bulk-inserted so the bench spends its time on the calendar writes.
    """
    from il2ward.models import Patient
    from monitoring.services import rule_set_current
    from scheduling.domain import calendar
    from scheduling.models import Course

    w = world()
    zone = w["ward"].zone
    rule_set = rule_set_current("consensus-2014", now=now)
    patients = Patient.objects.bulk_create(
        Patient(mrn=f"B{tag}-{i:05d}", name=f"Bench {tag} {i}", birth_date=date(1970, 1, 1), ward=w["ward"])
        for i in range(n)
    )
    first = now + timedelta(days=1)
    courses = Course.objects.bulk_create(
        Course(
            patient=p,
            status=Course.Status.SCHEDULING,
            dosing_weight_kg=Decimal("80"),
            baseline_weight_kg=Decimal("80"),
            dose_iu=48_000_000,
            first_dose_at=first,
            cycle2_first_at=calendar.cycle2_default_start(first, zone=zone),
            rule_set=rule_set,
            oncologist=w["staff"]["onc"],
            created_at=now,
        )
        for p in patients
    )
    return [c.pk for c in courses]


def _materialise(ids: list[int], *, now) -> float:
    from scheduling.services import course_materialise_calendar

    start = time.perf_counter()
    for course_id in ids:
        course_materialise_calendar(course_id=course_id, now=now)
    return time.perf_counter() - start


def run() -> list[Figure]:
    setup_django()
    from django.utils import timezone

    from scheduling.domain.calendar import course_slots

    w = world()
    request = trivial_request()
    course = w["course"]
    zone = w["ward"].zone
    slots = median_time(
        lambda: course_slots(course.first_dose_at, zone=zone, cycle2_first_at=course.cycle2_first_at),
        repeat=15,
        number=200,
        warmup=20,
    )
    now = timezone.now()
    timings: dict[int, list[float]] = {n: [] for n in PLAN}
    for round_, n in enumerate(PLAN):
        ids = _unscheduled_courses(n, tag=f"{n}r{round_}", now=now)
        timings[n].append(_materialise(ids, now=now))
    small, large = statistics.median(timings[100]), statistics.median(timings[1000])
    return [
        figure("calendar: course_slots vs 1 trivial authenticated GET", slots, request, 0.5),
        figure(
            "calendar: materialise 1,000 courses vs 100",
            large,
            small,
            10.5,
            strict=False,
            note=f"{small / 100 * 1e3:.2f} ms vs {large / 1000 * 1e3:.2f} ms per course",
        ),
    ]
