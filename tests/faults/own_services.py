"""Private service instances for tests that kill or restart a service: never the shared Redis or PostgreSQL."""

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
