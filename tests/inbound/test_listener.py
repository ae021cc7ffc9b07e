"""The real listener process (`manage.py hl7_listen`) on PostgreSQL, driven by the `hl7` package's MLLP clients
(`mllp_send` and hl7.client.MLLPClient) and a raw socket; with a real Celery worker, a lab result that crosses a
threshold changes the dose's decision."""

import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from hl7.client import MLLPClient

from il2ward.models import Heartbeat
from inbound.models import InboundMessage
from monitoring.models import LabResult
from scheduling.models import DoseEvaluation
from tests.inbound.messages import oru
from tests.scheduling.doses.conftest import attest, chart, first_dose
from tests.workers import ROOT, celery_worker, purge_redis, require_postgres, require_redis, test_database_url

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Listener:
    def __init__(self, tmp_path: Path, env: dict | None = None):
        self.port = free_port()
        self.log_path = tmp_path / f"listener-{self.port}.log"
        listener_env = {**os.environ, "DATABASE_URL": test_database_url(), "PYTHONUNBUFFERED": "1",
                        "IL2WARD_HEARTBEAT_SECONDS": "1", **(env or {})}  # fmt: skip
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "hl7_listen", "--port", str(self.port)],
                cwd=ROOT,
                env=listener_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while "HL7 MLLP listener on" not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"listener did not start:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def listener(tmp_path):
    require_postgres()
    started = Listener(tmp_path)
    yield started
    started.stop()


def msa(ack: bytes | str) -> list[str]:
    text = ack.decode() if isinstance(ack, bytes) else ack
    line = next(seg for seg in text.replace("\n", "\r").split("\r") if seg.strip("\x0b\x1c").startswith("MSA"))
    return line.split("|")


def test_mllp_send_a_file_of_messages_each_acknowledged(listener, patient_a, tmp_path):
    now = timezone.now()
    good = oru("CLI-1", [("2160-0", "97", "umol/L")], at=now - timedelta(minutes=20))
    unknown = oru("CLI-2", [("2160-0", "1.1", "mg/dL")], at=now - timedelta(minutes=20), mrn="NOPE")
    path = tmp_path / "feed.hl7"
    path.write_bytes(b"".join(b"\x0b" + m.encode() + b"\x1c\r" for m in (good, unknown, good)))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "mllp_send"), "--file", str(path), "--port", str(listener.port),
         "127.0.0.1"], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + listener.log()
    acks = [msa(chunk) for chunk in result.stdout.split("\x1c") if "MSA" in chunk]
    assert [a[1:3] for a in acks] == [["AA", "CLI-1"], ["AE", "CLI-2"], ["AA", "CLI-1"]], result.stdout
    assert LabResult.objects.get().creatinine_mg_dl == Decimal("1.10")  # 97 µmol/L, stored once
    assert InboundMessage.objects.get(control_id="CLI-1").times_received == 2
    assert "Alpha" not in listener.log() and "NOPE" not in listener.log()  # ids and codes only in the log


def test_raw_socket_client_gets_an_ack_per_message_and_the_heartbeat_is_written(listener, patient_a):
    now = timezone.now()
    first = oru("RAW-1", [("2823-3", "4.0", "mmol/L")], at=now - timedelta(minutes=5))
    second = oru("RAW-2", [("2823-3", "4.2", "mmol/L")], at=now - timedelta(minutes=4), order="ORD-2")
    with socket.create_connection(("127.0.0.1", listener.port), timeout=30) as sock:
        # Both messages in one write, split across packets: the listener frames them by MLLP, not by reads.
        payload = b"".join(b"\x0b" + m.encode() + b"\x1c\r" for m in (first, second))
        sock.sendall(payload[:37])
        time.sleep(0.05)
        sock.sendall(payload[37:])
        received = b""
        while received.count(b"\x1c\r") < 2:
            chunk = sock.recv(65536)
            assert chunk, "connection closed before both ACKs"
            received += chunk
    acks = [msa(block) for block in received.split(b"\x1c\r") if block.strip()]
    assert [a[1:3] for a in acks] == [["AA", "RAW-1"], ["AA", "RAW-2"]], received
    assert LabResult.objects.count() == 2
    deadline = time.monotonic() + 10
    while not Heartbeat.objects.filter(name__startswith="hl7-listener:", name__endswith=f":{listener.port}").exists():
        assert time.monotonic() < deadline, listener.log()
        time.sleep(0.2)


def test_a_creatinine_sent_with_mllp_client_holds_the_dose(listener, patient_a, oncologist, nurse_a, make_course,
                                                           tmp_path):  # fmt: skip
    """The whole path: MLLP → listener → labs_record → commit → Redis → worker → evaluation: give becomes hold."""
    from scheduling.services import dose_evaluate

    redis_url = require_redis()
    purge_redis(redis_url)
    now = timezone.now().replace(microsecond=0)
    course = make_course(patient_a, first_dose_at=now + timedelta(minutes=30), now=now - timedelta(hours=2))
    chart(
        patient_a, nurse_a, at=now - timedelta(hours=3), now=now, skip=("vitals", "neuro", "exam", "weight", "fluids")
    )
    attest(course, oncologist, now=now)
    chart(patient_a, nurse_a, at=now - timedelta(minutes=10), now=now)
    dose = first_dose(course)
    assert dose_evaluate(dose_id=dose.pk, now=now).decision == "give"
    with celery_worker(tmp_path, redis_url=redis_url):
        with MLLPClient("127.0.0.1", listener.port) as client:
            ack = client.send_message(oru("CLI-9", [("2160-0", "230", "umol/L")], at=now - timedelta(minutes=2)))
        assert msa(ack)[1] == "AA", ack
        deadline = time.monotonic() + 30
        while True:
            latest = DoseEvaluation.objects.filter(dose=dose).order_by("-pk").first()
            if latest.decision != "give":
                break
            assert time.monotonic() < deadline, listener.log()
            time.sleep(0.25)
    assert latest.decision == "hold"
    assert any(f.get("rule") == "RN-CREAT" for f in latest.findings), latest.findings
    labs = LabResult.objects.filter(source_system="LAB").get()
    assert labs.creatinine_mg_dl == Decimal("2.60")  # 230 / 88.42
