"""Benchmark: the pre-dose evaluation.

- One pure evaluation (monitoring.domain.engine.evaluate on a full snapshot: every input present, a fluid period)
  costs under a tenth of one trivial database query as the application issues them: one row by primary key through
  the ORM (`Ward.objects.get(pk=...)`). Also shown, for information: the same evaluation against a bare `SELECT 1`
  through Django's cursor, the cheapest round trip there is: on SQLite an in-process library call of ~10 µs, below
  what ~20 readings, ~30 exact comparisons, three fluid windows and four CTCAE grades cost in CPython, so a tenth of
  it is out of reach for any faithful evaluation. The bar is judged on PostgreSQL, the production database; on
  SQLite both ratios are printed as information.
- The evaluate endpoint (POST /api/v1/doses/{id}/evaluate/: read the patient's data, evaluate, store) costs under 5×
  one trivial authenticated GET, with the same logged-in client.
- The administer endpoint costs under 6× one trivial authenticated POST (the bench's users have a fast password
  hasher, as everywhere in the bench: the figure is the charting path, not PBKDF2).
"""

from datetime import timedelta

from bench.common import (
    PASSWORD,
    Figure,
    database_vendor,
    figure,
    logged_in_client,
    paired_medians,
    primary_key_get,
    ready_patient,
    select_one,
    setup_django,
    trivial_get,
    world,
)


def full_snapshot():
    """The bench patient's snapshot as the evaluation reads it, with the rule set that evaluates it."""
    from django.utils import timezone

    from monitoring.selectors import patient_snapshot
    from scheduling.selectors.courses import course_version, parsed_rule_set

    w = world()
    course, now = w["course"], timezone.now()
    snapshot = patient_snapshot(
        w["patient"].pk, now=now, baseline_weight_kg=course.baseline_weight_kg, first_slot_of_cycle=False,
        since=course.created_at,
    )  # fmt: skip
    rule_set = parsed_rule_set(course_version(course))
    return snapshot, rule_set, now


def run() -> list[Figure]:
    setup_django()
    from monitoring.domain import engine

    w = world()
    snapshot, rule_set, now = full_snapshot()
    result = engine.evaluate(snapshot, rule_set=rule_set, now=now)
    assert result.decision == "give", (result.decision, result.missing, result.findings)  # a full, normal snapshot
    timed = paired_medians(
        {
            "pure": lambda: engine.evaluate(snapshot, rule_set=rule_set, now=now),
            "query": primary_key_get(),
            "select 1": select_one(),
        },
        repeat=21,
        number=200,
        warmup=20,
    )
    pure, query, select_1 = timed["pure"], timed["query"], timed["select 1"]

    client = logged_in_client("nurse")
    url = f"/api/v1/doses/{w['dose'].pk}/evaluate/"

    def evaluate():
        response = client.post(url)
        assert response.status_code == 200, response.content

    timed = paired_medians({"endpoint": evaluate, "request": trivial_get(client)}, repeat=31, number=5)
    endpoint, baseline = timed["endpoint"], timed["request"]
    name = "evaluation: engine.evaluate (full snapshot) vs Ward.objects.get(pk=…)"
    if database_vendor() == "postgresql":
        pure_figure = figure(name, pure, query, 0.1)
    else:  # an in-process SQLite call is not the round trip the bar is about: shown, judged on PostgreSQL
        pure_figure = (name, pure / query, f"×; {pure * 1e6:.1f} µs vs {query * 1e6:.1f} µs; bar judged on PostgreSQL")
    return [
        pure_figure,
        (
            "evaluation: engine.evaluate (full snapshot) / bare SELECT 1",
            pure / select_1,
            f"×; {pure * 1e6:.1f} µs vs {select_1 * 1e6:.1f} µs; information",
        ),
        figure("evaluation: POST /doses/{id}/evaluate/ vs trivial authenticated GET", endpoint, baseline, 5),
        administer_figure(client),
    ]


ADMINISTER_REPEATS = 31


def administer_figure(client) -> Figure:
    """POST /doses/{id}/administer/ (as-of-start evaluation under the dose lock, the blind double check, the
    administration and its audit row) against a trivial authenticated POST (a weight refused with 400: session,
    parsing, validation, no write), interleaved. Each administer charts a different patient's first dose."""
    from scheduling.models import Dose

    w = world()
    staff, now = w["staff"], w["now"]
    doses = [
        Dose.objects.get(course=ready_patient(w["ward"], staff["onc"], staff["nurse"], mrn=f"ADM-{i}", now=now)[1],
                         cycle=1, number=1)
        for i in range(ADMINISTER_REPEATS + 3)
    ]  # fmt: skip
    started = (now + timedelta(minutes=5)).isoformat()
    body = {"started_at": started, "verifier": "nurse2", "verifier_password": PASSWORD, "verified_dose_iu": 48_000_000}
    patient_url = f"/api/v1/patients/{w['patient'].pk}/weights/"

    def administer():
        response = client.post(f"/api/v1/doses/{doses.pop().pk}/administer/", body, content_type="application/json")
        assert response.status_code == 201, response.content

    def trivial_post():
        response = client.post(patient_url, {"weight_kg": "1"}, content_type="application/json")
        assert response.status_code == 400, response.content

    timed = paired_medians({"administer": administer, "post": trivial_post}, repeat=ADMINISTER_REPEATS, number=1)
    return figure(
        "evaluation: POST /doses/{id}/administer/ vs trivial authenticated POST", timed["administer"], timed["post"], 6
    )
