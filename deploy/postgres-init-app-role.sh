#!/bin/sh
# Run once by the postgres image on a new data directory (/docker-entrypoint-initdb.d): the application's login role.
# It owns nothing and is no superuser; `migrate` (run as the owner) grants it what it needs (il2ward/dbroles.py).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v app_password="$IL2WARD_APP_DB_PASSWORD" <<'SQL'
CREATE ROLE il2ward_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD :'app_password';
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
