"""PostgreSQL restarted under the running MLLP listener (a server of this test's own, never the shared one): a
sender keeps sending lab results, one connection at a time with an ACK timeout, while the server is stopped (fast
shutdown, as `pg_ctl restart`), kept down and started again.

Asserted: the listener never crashes nor hangs (every message is answered within the timeout, the process lives);
while the database is down the answers are AE ("resend", nothing stored), after it is up they are AA again without
restarting the listener; every message answered AA is stored exactly once (nothing lost), and a message answered AE
and resent afterwards is stored too."""

import os
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.faults.conftest import manage
from tests.faults.own_services import OwnPostgres, free_port
from tests.inbound.messages import oru
from tests.workers import ROOT, require_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
BEFORE, DOWN, AFTER = 1.5, 2.5, 3.0  # seconds of sending before the stop, of outage, after the start
ACK_TIMEOUT = 15

SEED = """
from datetime import date
from django.utils import timezone
from il2ward.models import Patient
from il2ward.services import ward_upsert
ward = ward_upsert(code="onc-r", name="Restart ward", tz="America/Chicago", now=timezone.now())
Patient.objects.create(mrn="A-0001", name="Restart patient", birth_date=date(1970, 1, 1), ward=ward)
"""

COUNT = """
from inbound.models import InboundMessage
from monitoring.models import LabResult
accepted = sorted(InboundMessage.objects.filter(status="accepted").values_list("control_id", flat=True))
stored = sorted(LabResult.objects.values_list("source_message_id", flat=True))
print("accepted=" + ",".join(accepted)); print("stored=" + ",".join(stored))
"""


def send(port: int, raw: str) -> str:
    """One message on a new connection; its MSA-1, or the error that stood for it."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=ACK_TIMEOUT) as sock:
            sock.settimeout(ACK_TIMEOUT)
            sock.sendall(b"\x0b" + raw.encode() + b"\x1c\r")
            received = b""
            while not received.endswith(b"\x1c\r"):
                chunk = sock.recv(65536)
                if not chunk:
                    return "closed"
                received += chunk
    except TimeoutError:
        return "timeout"
    except OSError as exc:
        return type(exc).__name__
    line = next(s for s in received.decode().split("\r") if s.strip("\x0b").startswith("MSA"))
    return line.split("|")[1]


def test_the_listener_answers_ae_while_postgres_is_down_and_aa_after_losing_nothing(transactional_db, tmp_path):
    require_postgres()
    with OwnPostgres() as pg:
        pg.create_database("il2ward_hl7_restart")
        db_url = pg.url("il2ward_hl7_restart")
        manage("migrate", "-v0", database_url=db_url)
        manage("shell", "-c", SEED, database_url=db_url)
        port = free_port()
        log_path = tmp_path / "listener.log"
        env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": "", "PYTHONUNBUFFERED": "1",
               "IL2WARD_HEARTBEAT_SECONDS": "1"}  # fmt: skip
        env.pop("IL2WARD_CELERY_EAGER", None)
        with open(log_path, "w") as log:
            listener = subprocess.Popen([sys.executable, "manage.py", "hl7_listen", "--port", str(port)], cwd=ROOT,
                                        env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while "HL7 MLLP listener on" not in log_path.read_text():
                assert listener.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)

            results: list[tuple[float, str, str]] = []  # sent at, control id, answer
            stop = threading.Event()

            def sender():
                n = 0
                while not stop.is_set():
                    n += 1
                    control_id = f"PGR-{n:05d}"
                    at = datetime.now(UTC) - timedelta(minutes=30, seconds=-n)  # distinct, in the past
                    raw = oru(control_id, [("2823-3", "4.1", "mmol/L")], at=at, order=control_id)
                    started = time.monotonic()
                    results.append((started, control_id, send(port, raw)))
                    time.sleep(0.02)

            thread = threading.Thread(target=sender, daemon=True)
            thread.start()
            time.sleep(BEFORE)
            down_at = time.monotonic()
            pg.stop(mode="fast")
            time.sleep(DOWN)
            pg.start()
            up_at = time.monotonic()
            time.sleep(AFTER)
            stop.set()
            thread.join(timeout=ACK_TIMEOUT * 2)
            assert not thread.is_alive(), "the sender hung"

            # Resend what was refused while the database was down: now stored.
            resent = {cid: send(port, oru(cid, [("2823-3", "4.1", "mmol/L")],
                                          at=datetime.now(UTC) - timedelta(minutes=20), order=cid))
                      for _, cid, answer in results if answer != "AA"}  # fmt: skip
            assert listener.poll() is None, log_path.read_text()[-3000:]
            counted = dict(line.split("=", 1) for line in manage("shell", "-c", COUNT, database_url=db_url).split("\n")
                           if line.startswith(("accepted=", "stored=")))  # fmt: skip
        finally:
            listener.terminate()
            listener.wait(timeout=30)

    answers = [answer for *_, answer in results]
    aa = {cid for _, cid, answer in results if answer == "AA"}
    during = [answer for started, _, answer in results if down_at + 0.3 < started < up_at - 0.3]
    after = [answer for started, _, answer in results if started > up_at + 1.5]
    summary = f"{len(results)} sent; {dict((a, answers.count(a)) for a in set(answers))}"
    assert "timeout" not in answers, summary  # never hangs
    assert during and set(during) <= {"AE"}, (summary, during)  # the database down: AE, resend
    assert after and set(after) == {"AA"}, (summary, after)  # reconnected by itself
    assert set(resent.values()) <= {"AA"}, resent
    accepted_ids, stored_ids = set(counted["accepted"].split(",")) - {""}, counted["stored"].split(",")
    assert aa <= accepted_ids, aa - accepted_ids  # nothing lost that was answered AA
    assert accepted_ids == aa | set(resent)
    assert sorted(stored_ids) == sorted(accepted_ids)  # each stored exactly once
    print(summary, f"; {len(resent)} resent after the restart")
