# IL2Ward: one image for web (gunicorn), worker and beat (docker-compose.yml starts each with its own command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    IL2WARD_VAR_DIR=/app/var

# Pango and a font for WeasyPrint (course summary PDFs; the slim image has no fonts at all).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

# Only the application: never .venv, var/ (a demo database may hold patient data), .git, tests or demo fixtures.
COPY manage.py ./
COPY common common
COPY il2ward il2ward
COPY monitoring monitoring
COPY scheduling scheduling

# Static files are collected with the production storage (hashed names + manifest), so the build needs the
# production settings; this key only exists at build time and signs nothing.
RUN IL2WARD_ENV=production DJANGO_SECRET_KEY=collectstatic-build-only-key-signs-nothing-at-all-0000 \
    IL2WARD_AUDIT_KEYS=build:collectstatic-build-only-key-signs-nothing \
    IL2WARD_ALLOWED_HOSTS=localhost python manage.py collectstatic --noinput \
    && useradd --system --uid 10001 --home-dir /app il2ward \
    && mkdir -p /app/var /app/audit \
    && chown -R il2ward /app/var /app/audit

USER il2ward
EXPOSE 8000
CMD ["gunicorn", "il2ward.wsgi", "--bind", "0.0.0.0:8000", "--worker-class", "gthread", "--workers", "3", \
     "--threads", "4", "--access-logfile", "-", "--logger-class", "il2ward.logredact.GunicornLogger"]
