"""il2ward.db.Statement: a read written once in SQL gives each value as the ORM would (SQLite sends datetimes,
decimals and JSON as text; PostgreSQL's timestamps are read with psycopg's compiled loader)."""

from datetime import timedelta

import pytest

from il2ward.db import Statement, table_names
from monitoring.models import VitalSigns
from tests.conftest import NOW
from tests.scheduling.mar.conftest import record_assessment

pytestmark = pytest.mark.django_db

_FIELDS = ("id", "recorded_at", "temp_c", "o2_lpm", "entered_in_error_at", "rhythm")


def _sql(db) -> str:
    return (
        "SELECT v.id, v.recorded_at, v.temp_c, v.o2_lpm, v.entered_in_error_at, v.rhythm, 41 + 1 FROM {vitals} v "
        "WHERE v.patient_id = %(patient)s AND v.recorded_at <= %(now)s ORDER BY v.id"
    ).format(**table_names(db, vitals=VitalSigns))


STATEMENT = Statement(_sql, (*(VitalSigns._meta.get_field(name) for name in _FIELDS), None))


def test_a_statement_gives_the_values_the_orm_gives(patient_a, nurse_a):
    record_assessment(patient_a, nurse=nurse_a, now=NOW)
    record_assessment(patient_a, nurse=nurse_a, now=NOW + timedelta(minutes=1), minutes_ago=0)
    expected = [[*row, 42] for row in VitalSigns.objects.filter(patient=patient_a).order_by("id").values_list(*_FIELDS)]
    rows = STATEMENT.rows({"patient": patient_a.pk, "now": NOW + timedelta(minutes=1)})
    assert rows == expected and len(rows) == 2
    assert all(row[1].utcoffset() == timedelta(0) for row in rows)  # aware UTC, as the ORM gives
    assert type(rows[0][2]) is type(expected[0][2])  # Decimal, not a float or text
    # The datetime parameter is adapted as the ORM adapts it: the set charted after `now` is not read.
    assert len(STATEMENT.rows({"patient": patient_a.pk, "now": NOW})) == 1
