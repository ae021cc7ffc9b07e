#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "il2ward.settings")
    # `migrate` runs as the tables' owner when IL2WARD_MIGRATE_DATABASE_URL is set, and then grants the role of
    # DATABASE_URL (the application's, which owns nothing) what it needs (il2ward.dbroles).
    owner_url = os.environ.get("IL2WARD_MIGRATE_DATABASE_URL")
    if owner_url and len(sys.argv) > 1 and sys.argv[1] == "migrate":
        from urllib.parse import unquote, urlsplit

        app_user = unquote(urlsplit(os.environ.get("DATABASE_URL", "")).username or "")
        if not os.environ.get("IL2WARD_APP_DB_ROLE") and app_user:
            os.environ["IL2WARD_APP_DB_ROLE"] = app_user
        os.environ["DATABASE_URL"] = owner_url
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
