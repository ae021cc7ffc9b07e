"""The application's PostgreSQL role: not the tables' owner, only INSERT/SELECT on the audit table.

Migrations run as the owner (IL2WARD_MIGRATE_DATABASE_URL, see manage.py); web, worker and beat connect as the
application role (DATABASE_URL). A table's owner can always ALTER TABLE ... DISABLE TRIGGER and TRUNCATE it, so the
append-only trigger only binds a role that does not own the audit table; this role gets plain DML on every table and,
on the audit table, INSERT and SELECT only (no UPDATE, DELETE, TRUNCATE, TRIGGER or REFERENCES).
"""

from django.db.backends.base.base import BaseDatabaseWrapper

AUDIT_TABLE = "il2ward_auditevent"


def grant_app_role(connection: BaseDatabaseWrapper, role: str) -> None:
    """Grant `role` what the application needs on every table and sequence of the current schema (run after each
    migrate, as the owner: new tables need their grants)."""
    if connection.vendor != "postgresql" or not role:
        return
    quoted = connection.ops.quote_name(role)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema(), current_user")
        schema, current_user = cursor.fetchone()
        if current_user == role:  # one role for both: nothing to grant, and never revoke the owner's own rights
            return
        schema = connection.ops.quote_name(schema)
        for statement in (
            f"GRANT USAGE ON SCHEMA {schema} TO {quoted}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {quoted}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {quoted}",
            f"REVOKE UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES ON {AUDIT_TABLE} FROM {quoted}",
        ):
            cursor.execute(statement)


def ensure_role(connection: BaseDatabaseWrapper, role: str, password: str = "") -> None:
    """Create the login role if it does not exist (test suite and CI; a site creates it with its own password)."""
    from django.db import DatabaseError

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone():
            return
        try:
            literal = "'" + password.replace("'", "''") + "'"  # utility statements take no bound parameters
            cursor.execute(
                f"CREATE ROLE {connection.ops.quote_name(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
                + (f" PASSWORD {literal}" if password else "")
            )
        except DatabaseError:  # created meanwhile by another session (roles are cluster-wide)
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            if not cursor.fetchone():
                raise


def grant_after_migrate(sender, using, **kwargs) -> None:
    """post_migrate: once per migrate (all migrations are applied by then), grant the configured application role."""
    from django.conf import settings
    from django.db import connections

    if sender.name == "il2ward" and settings.IL2WARD_APP_DB_ROLE:
        grant_app_role(connections[using], settings.IL2WARD_APP_DB_ROLE)
