"""docker-compose.yml and the Dockerfile: the services the architecture names, exactly one beat, working healthchecks.

Docker itself is not needed: the compose file is read with PyYAML, and the two steps that can break at run time (the
production collectstatic of the image build, the web healthcheck behind the SSL redirect) are run here for real.
"""

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
APP_SERVICES = ("web", "worker", "sweeper", "beat")
SECRET_KEY = "x7Kq2pV9mZ4tR8wY1nB6cF3hJ5gL0sD2aE7uI9oP4kQ8vM3rT6yW1zX5bN0cH7jG2"


def tokens(command) -> list[str]:
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def runs_celery_beat(service: dict) -> bool:
    words = tokens(service.get("command")) + tokens(service.get("entrypoint"))
    return "celery" in words and "beat" in words


def replicas(service: dict) -> int:
    return int(service.get("deploy", {}).get("replicas", 1))


def test_the_architectures_services_are_declared():
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(SERVICES)
    assert SERVICES["postgres"]["image"].split(":")[1].startswith("15")
    assert SERVICES["redis"]["image"].split(":")[1].startswith("7")


def test_postgres_is_planned_for_solid_state_storage_as_the_bench_plans_it():
    from bench.common import DEPLOYED_RANDOM_PAGE_COST

    command = tokens(SERVICES["postgres"]["command"])
    assert command[0] == "postgres" and f"random_page_cost={DEPLOYED_RANDOM_PAGE_COST}" in command


def test_web_worker_and_beat_run_the_right_processes():
    assert tokens(SERVICES["web"]["command"])[:2] == ["gunicorn", "il2ward.wsgi"]
    assert tokens(SERVICES["worker"]["command"])[:4] == ["celery", "-A", "il2ward", "worker"]
    assert tokens(SERVICES["sweeper"]["command"])[:4] == ["celery", "-A", "il2ward", "worker"]
    assert tokens(SERVICES["beat"]["command"])[:4] == ["celery", "-A", "il2ward", "beat"]


def consumed_queues(service: dict) -> set[str]:
    words = tokens(service.get("command"))
    return set(words[words.index("-Q") + 1].split(",")) if "-Q" in words else set()


def test_every_queue_has_a_worker_and_the_sweeps_one_of_their_own():
    from django.conf import settings

    declared = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    consumers = {name: consumed_queues(s) for name, s in SERVICES.items() if "worker" in tokens(s.get("command"))}
    assert set().union(*consumers.values()) == declared, consumers
    # Nothing else is taken by a process that takes the sweeps: an evaluation backlog or a slow send never holds one.
    assert [name for name, queues in consumers.items() if "sweeps" in queues] == ["sweeper"]
    assert consumers["sweeper"] == {"sweeps"}


def test_exactly_one_service_runs_celery_beat_once():
    beats = [name for name, service in SERVICES.items() if runs_celery_beat(service)]
    assert beats == ["beat"]
    assert replicas(SERVICES["beat"]) == 1


def test_no_worker_embeds_a_beat():
    for name, service in SERVICES.items():
        words = tokens(service.get("command"))
        if "worker" in words:
            embedded = [w for w in words if w in ("-B", "--beat") or re.fullmatch(r"-[A-Za-z]*B[A-Za-z]*", w)]
            assert not embedded, f"{name} runs a worker with an embedded beat: {words}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_get_their_configuration_from_the_environment(name):
    env = SERVICES[name]["environment"]
    assert env["IL2WARD_ENV"] == "production"
    assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:6379/")
    # The secrets come from the operator's environment, never from the file.
    for secret in ("DJANGO_SECRET_KEY", "IL2WARD_ALLOWED_HOSTS", "IL2WARD_AUDIT_KEYS"):
        assert re.fullmatch(r"\$\{" + secret + r":\?[^}]*\}", env[secret]), env[secret]
    # The application connects as il2ward_app, which owns no table (and is not the image's superuser).
    assert env["DATABASE_URL"].startswith("postgres://il2ward_app:${IL2WARD_APP_DB_PASSWORD")
    assert SERVICES["postgres"]["environment"]["POSTGRES_USER"] != "il2ward_app"
    assert "IL2WARD_MIGRATE_DATABASE_URL" not in env


def test_migrate_runs_as_the_owner_and_the_app_role_is_created_without_privileges():
    env = SERVICES["migrate"]["environment"]
    owner = SERVICES["postgres"]["environment"]["POSTGRES_USER"]
    assert env["IL2WARD_MIGRATE_DATABASE_URL"].startswith(f"postgres://{owner}:${{POSTGRES_PASSWORD")
    assert env["DATABASE_URL"].startswith("postgres://il2ward_app:")
    mounts = SERVICES["postgres"]["volumes"]
    init = next(m.split(":")[0] for m in mounts if "/docker-entrypoint-initdb.d/" in m)
    script = (ROOT / init).read_text()
    create = re.search(r"CREATE ROLE il2ward_app ([^;]*);", script).group(1)
    assert "NOSUPERUSER" in create and "NOCREATEROLE" in create and "NOCREATEDB" in create


@pytest.mark.parametrize("name", ["postgres", "redis", *APP_SERVICES])
def test_long_running_services_have_a_healthcheck(name):
    check = SERVICES[name].get("healthcheck")
    assert check and tokens(check["test"])[0] in ("CMD", "CMD-SHELL")


def test_web_healthcheck_probes_healthz():
    script = " ".join(tokens(SERVICES["web"]["healthcheck"]["test"]))
    assert "/healthz" in script


def test_app_services_wait_for_migrations_and_redis():
    assert tokens(SERVICES["migrate"]["command"]) == ["python", "manage.py", "migrate", "--noinput"]
    for name in APP_SERVICES:
        needs = SERVICES[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully"
        assert needs["redis"]["condition"] == "service_healthy"


def test_dockerfile_builds_the_app_image():
    assert re.search(r"^FROM python:3\.11-slim\b", DOCKERFILE, re.M)
    assert re.search(r"pip install (-r|--requirement) requirements\.txt", DOCKERFILE)
    assert re.search(r"manage\.py collectstatic --noinput", DOCKERFILE)
    copied = {line.split()[1] for line in DOCKERFILE.splitlines() if line.startswith("COPY ")}
    local_apps = {"common", "il2ward", "monitoring", "scheduling"}
    assert local_apps | {"manage.py", "requirements.txt"} <= copied
    assert "." not in copied, "COPY . . would put .venv, var/ (demo data) and .git into the image"
    assert re.search(r"^USER (?!root)\S+", DOCKERFILE, re.M), "the app must not run as root"


def production_env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "IL2WARD_"))}
    env.pop("REDIS_URL", None)
    env.update(
        IL2WARD_ENV="production",
        DJANGO_SECRET_KEY=SECRET_KEY,
        IL2WARD_ALLOWED_HOSTS="ward.example.org",
        IL2WARD_AUDIT_KEYS="k1:" + SECRET_KEY[:40],
        IL2WARD_VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        **extra,
    )
    return env


@pytest.mark.slow
def test_production_collectstatic_of_the_image_build_succeeds(tmp_path):
    """The Dockerfile's collectstatic uses the manifest storage, which fails on any reference to a missing file."""
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "var" / "staticfiles" / "staticfiles.json").exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_web_healthcheck_passes_against_gunicorn_in_production_mode(tmp_path):
    """Production redirects HTTP to HTTPS and checks the Host header: the healthcheck must get through both."""
    port = str(free_port())
    env = production_env(tmp_path, PORT=port)
    log = tmp_path / "gunicorn.log"
    with open(log, "w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "il2ward.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, "gunicorn did not start listening within 30 s"
                time.sleep(0.2)
        test = tokens(SERVICES["web"]["healthcheck"]["test"])
        assert test[:2] == ["CMD", "python"]
        # As Docker runs it: failures during the start period (the worker still importing Django, slow on a
        # loaded machine) do not count; the check must pass before the start period and its retries run out.
        deadline = time.monotonic() + 20 + 3 * 30
        while True:
            check = subprocess.run([sys.executable, *test[2:]], env=env, capture_output=True, text=True, timeout=30)
            if check.returncode == 0 or time.monotonic() > deadline or server.poll() is not None:
                break
            time.sleep(1)
        assert check.returncode == 0, check.stderr[-3000:] + log.read_text()[-3000:]
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
