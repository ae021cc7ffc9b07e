"""Private service instances for tests that kill or restart a service: never the shared Redis or PostgreSQL."""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.workers import skip_or_fail


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OwnRedis:
    """`redis-server` on a free loopback port with its data in `directory`; kill() and start() again on that port."""

    def __init__(self, directory: Path, *, persistent: bool = False):
        if not shutil.which("redis-server"):
            skip_or_fail("needs redis-server on PATH")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.persistent = persistent
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--save", ""]
        with open(self.directory / "redis.log", "a") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                 *persistence],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 15
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((self.directory / "redis.log").read_text()[-3000:])
            time.sleep(0.05)

    def ping(self) -> bool:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL, as a crashed or restarted broker host: connections drop without a goodbye."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=15)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.kill()


class OwnPostgres:
    """A PostgreSQL server of its own (initdb in a fresh directory under /tmp, a free loopback port, trust auth for
    the `postgres` role), for tests that stop and restart the database; never the shared server.

    Run as the `postgres` system user when the tests run as root (PostgreSQL refuses to run as root). Durability is
    switched off (fsync, synchronous_commit): a fast shutdown still writes everything committed to disk, which is
    what a restart tests; a power cut is not simulated.
    """

    def __init__(self):
        import glob
        import tempfile

        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            skip_or_fail("needs the PostgreSQL server binaries (/usr/lib/postgresql/*/bin)")
        self.bin = Path(found[-1]).parent
        self.as_postgres = os.geteuid() == 0
        self.directory = Path(tempfile.mkdtemp(prefix="il2ward-own-pg-"))
        if self.as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        self.data = self.directory / "data"
        self.log_path = self.directory / "postgres.log"
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self._run(["initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])

    def _user(self) -> dict:
        return {"user": "postgres", "group": "postgres"} if self.as_postgres else {}

    def _run(self, argv: list[str]) -> None:
        result = subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]], capture_output=True, text=True, timeout=120, **self._user()
        )
        if result.returncode:
            raise AssertionError(f"{argv[0]} failed: {result.stdout}{result.stderr}")

    def url(self, name: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        settings = {"listen_addresses": "127.0.0.1", "unix_socket_directories": str(self.directory), "fsync": "off",
                    "synchronous_commit": "off", "full_page_writes": "off", "max_connections": "60"}  # fmt: skip
        argv = [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        log = open(self.log_path, "a")  # noqa: SIM115 - the server's stderr for as long as it runs
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, **self._user())
        log.close()
        deadline = time.monotonic() + 30
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(self.log_path.read_text()[-3000:])
            time.sleep(0.05)

    def ready(self) -> bool:
        result = subprocess.run(
            [str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
        )
        return result.returncode == 0

    def stop(self, *, mode: str = "fast") -> None:
        """`fast` (SIGINT): what `pg_ctl restart` does, every session terminated; `immediate` (SIGQUIT): a crash,
        recovered from the WAL at the next start."""
        import signal

        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT if mode == "fast" else signal.SIGQUIT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)

    def create_database(self, name: str) -> None:
        self._run(["createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name])
        role = os.environ.get("IL2WARD_APP_DB_ROLE")
        if role:  # migrate grants the application's role (il2ward.dbroles), as on the shared server
            create = f"DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
            self._run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-qc", create, name])

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
