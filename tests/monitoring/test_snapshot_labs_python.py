"""The snapshot's labs, chosen in Python from one plain query (monitoring/selectors.py): edge cases the window
functions it replaced answered by their ORDER BY (recorded_at DESC, pk DESC) — ties, results at the course start,
entries in error, and patients with different course starts in one batch."""

from datetime import timedelta
from decimal import Decimal

import pytest

from monitoring import services
from monitoring.selectors import SnapshotRequest, snapshots_for
from tests.conftest import NOW, PASSWORD

pytestmark = pytest.mark.django_db

H = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _fast(fast_password_hashing):
    pass


def labs(patient, by, at, **values):
    values = {k: Decimal(v) if isinstance(v, str) else v for k, v in values.items()}
    return services.labs_record(patient=patient, recorded_at=at, by=by, now=NOW, **values)


def test_same_time_results_the_later_entry_is_the_latest(nurse_a, patient_a):
    since = NOW - 48 * H
    first = labs(patient_a, nurse_a, since, creatinine_mg_dl="1.10")
    second = labs(patient_a, nurse_a, since, creatinine_mg_dl="1.20", bilirubin_mg_dl="0.70")
    third = labs(patient_a, nurse_a, NOW - H, creatinine_mg_dl="1.30")
    fourth = labs(patient_a, nurse_a, NOW - H, creatinine_mg_dl="1.40")

    snapshot = snapshots_for([SnapshotRequest(patient_a.pk, since=since)], now=NOW)[patient_a.pk]

    assert snapshot.creatinine_mg_dl.source_id == f"labs:{fourth.pk}"
    assert snapshot.previous_creatinine.source_id == f"labs:{third.pk}"
    assert snapshot.bilirubin_mg_dl.source_id == f"labs:{second.pk}"
    # A result at the course start is both the baseline (latest at or before it: the later entry) and history.
    assert snapshot.baseline_creatinine_mg_dl == Decimal("1.20")
    assert [r.source_id for r in snapshot.creatinine_history] == [
        f"labs:{first.pk}",
        f"labs:{second.pk}",
        f"labs:{third.pk}",
    ]


def test_entries_in_error_are_skipped_for_previous_and_baseline(nurse_a, patient_a):
    since = NOW - 48 * H
    labs(patient_a, nurse_a, NOW - 60 * H, creatinine_mg_dl="0.80")
    wrong_baseline = labs(patient_a, nurse_a, NOW - 50 * H, creatinine_mg_dl="5.00")
    previous = labs(patient_a, nurse_a, NOW - 20 * H, creatinine_mg_dl="1.00")
    wrong_previous = labs(patient_a, nurse_a, NOW - 10 * H, creatinine_mg_dl="6.00")
    latest = labs(patient_a, nurse_a, NOW - H, creatinine_mg_dl="1.10", platelets_k_ul=90)
    for wrong in (wrong_baseline, wrong_previous):
        services.observation_enter_in_error(
            observation=wrong, reason="haemolysed", password=PASSWORD, by=nurse_a, now=NOW
        )

    snapshot = snapshots_for([SnapshotRequest(patient_a.pk, since=since)], now=NOW)[patient_a.pk]

    assert snapshot.creatinine_mg_dl.source_id == f"labs:{latest.pk}"
    assert snapshot.previous_creatinine.source_id == f"labs:{previous.pk}"
    assert snapshot.baseline_creatinine_mg_dl == Decimal("0.80")
    assert [r.source_id for r in snapshot.creatinine_history] == [f"labs:{previous.pk}"]


def test_each_patient_has_their_own_course_start(nurse_a, nurse_b, patient_a, patient_b):
    for patient, by in ((patient_a, nurse_a), (patient_b, nurse_b)):
        labs(patient, by, NOW - 30 * H, creatinine_mg_dl="0.90")
        labs(patient, by, NOW - 10 * H, creatinine_mg_dl="1.00")
        labs(patient, by, NOW - H, creatinine_mg_dl="1.10")

    snapshots = snapshots_for(
        [SnapshotRequest(patient_a.pk, since=NOW - 20 * H), SnapshotRequest(patient_b.pk, since=NOW - 40 * H)], now=NOW
    )

    assert snapshots[patient_a.pk].baseline_creatinine_mg_dl == Decimal("0.90")
    assert [r.value for r in snapshots[patient_a.pk].creatinine_history] == [Decimal("1.00")]
    assert snapshots[patient_b.pk].baseline_creatinine_mg_dl is None
    assert [r.value for r in snapshots[patient_b.pk].creatinine_history] == [Decimal("0.90"), Decimal("1.00")]
