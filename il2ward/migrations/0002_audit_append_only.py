"""On PostgreSQL the audit table refuses UPDATE and DELETE (ARCHITECTURE.md, Audit and signatures).

TRUNCATE stays possible for the database owner (test flushes use it); verify_audit_chain still detects a cut chain
only from the rows that remain, so production grants should not give the application role TRUNCATE.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION il2ward_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'il2ward_auditevent is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER il2ward_audit_append_only
    BEFORE UPDATE OR DELETE ON il2ward_auditevent
    FOR EACH ROW EXECUTE FUNCTION il2ward_audit_append_only();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS il2ward_audit_append_only ON il2ward_auditevent;
DROP FUNCTION IF EXISTS il2ward_audit_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)  # the % in RAISE is not a placeholder


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("il2ward", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
