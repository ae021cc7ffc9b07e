"""il2ward.db.insert: the written INSERT stores what save()/bulk_create would, and gives way to the ORM where a
model needs it (a save signal)."""

from datetime import timedelta
from decimal import Decimal

from django.db.models import signals

from il2ward.db import insert
from il2ward.models import AuditEvent
from monitoring.models import LabResult
from tests.conftest import NOW


def test_one_row_is_stored_as_save_would_store_it(patient_a, nurse_a):
    row = LabResult(patient=patient_a, recorded_at=NOW - timedelta(hours=1), recorded_by=nurse_a, created_at=NOW,
                    creatinine_mg_dl=Decimal("1.10"), source_system="LAB")  # fmt: skip
    insert([row])
    assert row.pk is not None and not row._state.adding
    stored = LabResult.objects.get(pk=row.pk)
    assert (stored.creatinine_mg_dl, stored.platelets_k_ul, stored.recorded_at, stored.source_system) == (
        Decimal("1.10"), None, NOW - timedelta(hours=1), "LAB")  # fmt: skip


def test_rows_get_their_ids_in_order_and_json_round_trips(db):
    rows = [AuditEvent(at=NOW, action=f"test.{n}", object_type="t", object_id=str(n), old=None,
                       new={"n": n, "list": [1, "a"]}, prev_hash="p", hash=f"h{n}") for n in range(3)]  # fmt: skip
    insert(rows)
    assert [r.pk for r in rows] == sorted(r.pk for r in rows)
    stored = list(AuditEvent.objects.filter(pk__in=[r.pk for r in rows]).order_by("pk"))
    assert [(s.action, s.new, s.old) for s in stored] == [(f"test.{n}", {"n": n, "list": [1, "a"]}, None)
                                                          for n in range(3)]  # fmt: skip


def test_a_model_with_a_save_signal_takes_the_orm_path(patient_a, nurse_a):
    seen = []

    def on_save(sender, instance, created, **kwargs):
        seen.append((instance.pk, created))

    signals.post_save.connect(on_save, sender=LabResult, dispatch_uid="test-db-insert")
    try:
        row = LabResult(patient=patient_a, recorded_at=NOW, recorded_by=nurse_a, created_at=NOW,
                        potassium_mmol_l=Decimal("4.10"))  # fmt: skip
        insert([row])
    finally:
        signals.post_save.disconnect(dispatch_uid="test-db-insert", sender=LabResult)
    assert seen == [(row.pk, True)]
