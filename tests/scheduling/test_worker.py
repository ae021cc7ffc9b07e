"""The whole path with a real Celery worker: API → commit → Redis → worker → database (ARCHITECTURE.md, flows).

Needs Redis (REDIS_URL) and a database a second process can open (PostgreSQL in CI). Skips saying why where they are
absent; fails instead under IL2WARD_REQUIRE_SERVICES=1 (CI).
"""

import pytest

from scheduling.models import Course, Dose
from tests.workers import celery_worker, purge_redis, require_redis, test_database_url, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.usefixtures("fast_password_hashing")]


@pytest.mark.django_db(transaction=True)
def test_a_course_created_through_the_api_is_scheduled_by_a_real_worker(
    transactional_db, tmp_path, api, oncologist, patient_a
):
    redis_url = require_redis()
    database_url = test_database_url()
    purge_redis(redis_url)
    with celery_worker(tmp_path, redis_url=redis_url, database_url=database_url) as worker:
        response = api.as_user(oncologist).post(
            "/api/v1/courses/",
            {"patient": patient_a.pk, "first_dose_at": "2027-03-12T16:00:00-06:00", "dosing_weight_kg": "80"},
            format="json",
        )
        assert response.status_code == 201, response.content
        assert response.json()["status"] == "scheduling"
        course_id = response.json()["id"]

        def scheduled() -> bool:
            status = Course.objects.filter(pk=course_id).values_list("status", flat=True).first()
            return status == Course.Status.PLANNED and Dose.objects.filter(course_id=course_id).count() == 28

        wait_until(scheduled, timeout=60, message=lambda: f"worker log:\n{worker.log()}")
        assert "scheduling.generate_calendar" in worker.log()

    doses = list(Dose.objects.filter(course_id=course_id).order_by("cycle", "number"))
    assert [(d.cycle, d.number) for d in doses] == [(c, n) for c in (1, 2) for n in range(1, 15)]
    assert doses[0].due_at.isoformat() == "2027-03-12T22:00:00+00:00"
    body = api.get(f"/api/v1/courses/{course_id}/").json()
    assert body["status"] == "planned" and body["counts"]["scheduled"] == 28
    assert worker.process.returncode is not None  # stopped: nothing left holding the test database open
