"""What the oncologist's course page costs, against a trivial authenticated request measured in the same run.

    .venv/bin/python -m bench.course_page        (or .venv/bin/python -m bench course_page)

On the harness's throwaway database (bench.common.setup_django) one course is charted through the services
(tests/scheduling/review/builders.py): cycle 1 and six slots of cycle 2 given or held, vitals every 30 min before
each dose, an override and an adverse event. A signed-in oncologist's GET /courses/{id}/ and the trivial request
(bench.common.TRIVIAL_GET, one small query) are timed with Django's test client, interleaved, median of each.

Bar: the course page costs at most 10 × the trivial request. Its query count is the same at every size
(tests/scheduling/review/test_review_queries.py).
"""

import statistics
import sys
import time

from bench.common import TRIVIAL_GET, Figure, figure, setup_django

REPEATS = 25
BAR = 10


def _build():
    from datetime import date, timedelta

    from django.utils import timezone

    from il2ward.services import patient_create, staff_upsert, ward_upsert
    from scheduling import services
    from scheduling.models import Dose
    from scheduling.services import decisions
    from tests.conftest import PASSWORD
    from tests.scheduling.review.builders import Staff, build_course, flag_next

    now = timezone.now()
    ward = ward_upsert(code="bench-review", name="Bench review", tz="America/Chicago", now=now)

    def person(username, role, name):
        return staff_upsert(
            username=username, role=role, password=PASSWORD, ward_codes=[ward.code], printed_name=name, now=now
        )

    staff = Staff(
        person("review-onc", "oncologist", "Dr Bench Oncologist"),
        person("review-nurse", "nurse", "Bea Bench RN"),
        person("review-nurse2", "nurse", "Bo Second RN"),
    )
    patient = patient_create(
        mrn="BENCH-REVIEW", name="Review Bench", birth_date=date(1966, 6, 6), ward=ward, by=staff.oncologist, now=now
    )
    # 48 slots of 8 h ago: all of cycle 1 and the first six of cycle 2 are charted (day 15 is 14 days in).
    course = build_course(
        patient, staff, now=now, charted=48, extra_vitals=3, abnormal={4: {"sbp": 86}, 9: {"rass": -2}}
    )
    dose = flag_next(course, staff, now=now, sbp=85)
    services.dose_override(dose_id=dose.pk, reason="MAP fine", password=PASSWORD, by=staff.oncologist, now=now)
    held = Dose.objects.filter(course=course, status=Dose.Status.HELD).first()
    decisions.adverse_event_record(
        course_id=course.pk,
        category="cardiovascular",
        term="Hypotension",
        grade=2,
        onset_at=held.due_at - timedelta(hours=1),
        held_dose_ids=[held.pk],
        by=staff.oncologist,
        now=now,
    )
    return course, staff.oncologist


def _medians(client, urls: list[str], repeats: int) -> dict[str, float]:
    for url in urls:  # warm-up: templates compiled, connections open
        for _ in range(3):
            assert client.get(url).status_code == 200, url
    timings: dict[str, list[float]] = {url: [] for url in urls}
    for _ in range(repeats):
        for url in urls:  # interleaved, so drift hits both alike
            start = time.perf_counter()
            response = client.get(url)
            timings[url].append(time.perf_counter() - start)
            assert response.status_code == 200, url
    return {url: statistics.median(values) for url, values in timings.items()}


def run() -> list[Figure]:
    setup_django()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from monitoring.models import VitalSigns
    from scheduling.models import Dose

    course, oncologist = _build()
    client = Client()
    client.force_login(oncologist)
    page = f"/courses/{course.pk}/"
    medians = _medians(client, [TRIVIAL_GET, page], REPEATS)
    with CaptureQueriesContext(connection) as captured:
        client.get(page)
    charted = Dose.objects.filter(course=course).exclude(status=Dose.Status.SCHEDULED).count()
    vitals = VitalSigns.objects.filter(patient=course.patient).count()
    note = (
        f"{connection.vendor}, median of {REPEATS}; {len(captured)} queries; "
        f"{charted} of 28 slots charted, {vitals} vitals sets"
    )
    return [
        figure(
            "course page vs 1 trivial authenticated GET",
            medians[page],
            medians[TRIVIAL_GET],
            BAR,
            strict=False,
            note=note,
        )
    ]


def main() -> int:
    from bench.__main__ import table

    figures = run()
    print(table(figures))
    return 0 if all(f.passed for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
