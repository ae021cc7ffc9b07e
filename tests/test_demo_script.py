"""`scripts/demo`, the README's first command, as a newcomer runs it: it says where it runs only once the server
answers, with DEBUG off and no warnings first; a port already taken is reported with the fix, and nothing starts."""

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo(port: int, var_dir: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_DEBUG")}
    env.update(PORT=str(port), IL2WARD_VAR_DIR=str(var_dir))
    return subprocess.Popen(
        ["bash", "scripts/demo"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so the test can stop web, worker and beat together
    )


def get(url: str):
    request = urllib.request.Request(url)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        return opener.open(request, timeout=10)
    except urllib.error.HTTPError as error:
        return error


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    port = free_port()
    process = demo(port, tmp_path_factory.mktemp("demo"))
    lines = []
    deadline = time.monotonic() + 240
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if "IL2Ward demo is running at" in line or time.monotonic() > deadline:
            break
    try:
        assert any("running at" in line for line in lines), "\n".join(lines)
        yield port, lines
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_the_demo_announces_itself_only_when_it_answers_with_no_warning_first(running):
    port, lines = running
    assert get(f"http://127.0.0.1:{port}/healthz").status == 200
    printed = [line for line in lines if line.strip()]
    assert printed[0].startswith("demo ward onc4 loaded"), printed[:3]  # no kombu or axes chatter before it
    assert not [line for line in printed if "WARNING" in line or "No hostname" in line]


def test_the_demo_runs_without_debug_pages_and_serves_its_favicon(running):
    port, _ = running
    missing = get(f"http://127.0.0.1:{port}/no-such-page/")
    body = missing.read()
    assert missing.status == 404 and b"Traceback" not in body and b"DEBUG = True" not in body
    icon = get(f"http://127.0.0.1:{port}/favicon.ico")
    assert icon.status == 301 and icon.headers["Location"].endswith(".svg")
    assert get(f"http://127.0.0.1:{port}{icon.headers['Location']}").status == 200


def test_a_port_already_in_use_is_reported_with_the_fix(running, tmp_path):
    port, _ = running
    second = demo(port, tmp_path)
    out, _ = second.communicate(timeout=240)
    assert second.returncode == 1
    assert f"Port {port} is already in use" in out and "PORT=8001 scripts/demo" in out
