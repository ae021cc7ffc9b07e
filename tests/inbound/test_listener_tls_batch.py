"""The real listener process on PostgreSQL: MLLP over TLS (a self-signed certificate made here, an `ssl` client),
HL7 batch files (FHS/BHS ... BTS/FTS) over MLLP and through `hl7_replay`, and two connections sending results of
one patient's orders at once (message order per order holds whichever connection is faster)."""

import socket
import ssl
import subprocess
import threading
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from hl7.client import MLLPClient

from inbound.models import InboundMessage
from monitoring.models import LabResult
from tests.inbound.messages import oru
from tests.inbound.test_listener import Listener, msa
from tests.workers import require_postgres

pytestmark = pytest.mark.django_db(transaction=True)

START, END = b"\x0b", b"\x1c\r"


def frame(text: str) -> bytes:
    return START + text.encode() + END


def read_block(sock) -> bytes:
    received = b""
    while not received.endswith(END):
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {received!r}"
        received += chunk
    return received


@pytest.fixture
def certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_mllp_over_tls_with_the_sites_certificate(tmp_path, certificate, patient_a):
    require_postgres()
    cert, key = certificate
    listener = Listener(tmp_path, args=("--tls-cert", str(cert), "--tls-key", str(key)))
    try:
        assert "(TLS)" in listener.log()
        client = ssl.create_default_context(cafile=str(cert))  # verifies the certificate and the host name
        now = timezone.now()
        with socket.create_connection(("127.0.0.1", listener.port), timeout=30) as raw:
            with client.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                assert sock.version() in ("TLSv1.2", "TLSv1.3")
                sock.sendall(frame(oru("TLS-1", [("2160-0", "97", "umol/L")], at=now - timedelta(minutes=5))))
                assert msa(read_block(sock))[1:3] == ["AA", "TLS-1"]
        assert LabResult.objects.get().creatinine_mg_dl == Decimal("1.10")
        # A plain MLLP client on the TLS port gets nothing stored and does not stop the listener.
        with socket.create_connection(("127.0.0.1", listener.port), timeout=30) as plain:
            plain.sendall(frame(oru("TLS-2", [("2160-0", "1.2", "mg/dL")], at=now - timedelta(minutes=4))))
            plain.settimeout(10)
            try:
                answer = plain.recv(65536)  # closed, or a TLS alert: never an ACK
            except (ConnectionError, TimeoutError):
                answer = b""
            assert b"MSA" not in answer
        assert not InboundMessage.objects.filter(control_id="TLS-2").exists()
        # A client that does not trust the certificate refuses the connection itself.
        with socket.create_connection(("127.0.0.1", listener.port), timeout=30) as raw:
            with pytest.raises(ssl.SSLCertVerificationError):
                ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")
        # The listener still answers a TLS client after both.
        with socket.create_connection(("127.0.0.1", listener.port), timeout=30) as raw:
            with client.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                sock.sendall(frame(oru("TLS-3", [("2823-3", "4.1", "mmol/L")], at=now - timedelta(minutes=3),
                                       order="ORD-3")))  # fmt: skip
                assert msa(read_block(sock))[1:3] == ["AA", "TLS-3"]
        assert listener.process.poll() is None, listener.log()
    finally:
        listener.stop()


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def signed_client(tmp_path, ca: str, name: str):
    """A CA (made here, self-signed) and a client certificate it signed: (CA cert, client cert, client key)."""
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca_cert, ca_key = tmp_path / f"{ca}.pem", tmp_path / f"{ca}.key"
    if not ca_cert.exists():
        openssl("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_cert), "-days", "1", "-subj", f"/CN={ca}")
    key, csr, cert = (tmp_path / f"{name}.{ext}" for ext in ("key", "csr", "pem"))
    openssl("req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", str(cert), "-days", "1")  # fmt: skip
    return ca_cert, cert, key


def tls_send(port: int, server_cert, control_id: str, *, client_cert=None, client_key=None) -> bytes:
    """Send one ORU over TLS (trusting the listener's certificate), optionally with a client certificate; the
    answer, or b"" when the listener refused the handshake (an alert or a closed connection: never an ACK)."""
    context = ssl.create_default_context(cafile=str(server_cert))
    if client_cert:
        context.load_cert_chain(certfile=str(client_cert), keyfile=str(client_key))
    at = timezone.now() - timedelta(minutes=5)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                sock.sendall(frame(oru(control_id, [("2160-0", "97", "umol/L")], at=at, order=control_id)))
                return read_block(sock)
    except (ssl.SSLError, ConnectionError, AssertionError):  # TLS 1.3 reports a refused client at the first read
        return b""


def test_mutual_tls_accepts_only_clients_with_a_certificate_from_the_site_ca(tmp_path, certificate, patient_a):
    require_postgres()
    cert, key = certificate
    site_ca, good_cert, good_key = signed_client(tmp_path, "Site CA", "LAB")
    _, stranger_cert, stranger_key = signed_client(tmp_path, "Other CA", "LAB-elsewhere")
    listener = Listener(tmp_path, args=("--tls-cert", str(cert), "--tls-key", str(key), "--tls-client-ca",
                                        str(site_ca)))  # fmt: skip
    try:
        assert "(TLS, client certificates required)" in listener.log()
        assert msa(tls_send(listener.port, cert, "MTLS-1", client_cert=good_cert, client_key=good_key))[1:3] == [
            "AA", "MTLS-1"]  # fmt: skip
        assert tls_send(listener.port, cert, "MTLS-2") == b""  # no client certificate
        assert tls_send(listener.port, cert, "MTLS-3", client_cert=stranger_cert, client_key=stranger_key) == b""
        assert list(InboundMessage.objects.values_list("control_id", flat=True)) == ["MTLS-1"]
        assert LabResult.objects.get().source_message_id == "MTLS-1"
        # Still serving the site's clients after both refusals.
        assert msa(tls_send(listener.port, cert, "MTLS-4", client_cert=good_cert, client_key=good_key))[1] == "AA"
        assert "client certificate LAB" in listener.log()
        assert listener.process.poll() is None, listener.log()
    finally:
        listener.stop()


def test_without_a_client_ca_tls_asks_no_client_certificate(tmp_path, certificate, patient_a):
    """The nearest case: plain TLS accepts a client without a certificate."""
    require_postgres()
    cert, key = certificate
    listener = Listener(tmp_path, args=("--tls-cert", str(cert), "--tls-key", str(key)))
    try:
        assert "client certificates required" not in listener.log()
        assert msa(tls_send(listener.port, cert, "MTLS-5"))[1:3] == ["AA", "MTLS-5"]
    finally:
        listener.stop()


def test_mutual_tls_needs_the_listeners_own_certificate(tmp_path):
    require_postgres()
    site_ca, _, _ = signed_client(tmp_path, "Site CA", "LAB")
    with pytest.raises(AssertionError, match="needs --tls-cert"):
        Listener(tmp_path, args=("--tls-client-ca", str(site_ca)))


def test_tls_needs_both_a_certificate_and_a_key(tmp_path, certificate):
    require_postgres()
    cert, _ = certificate
    with pytest.raises(AssertionError, match="needs both"):
        Listener(tmp_path, args=("--tls-cert", str(cert)))


def batch(*messages: str, count: int | None = None) -> str:
    counted = len(messages) if count is None else count
    return "FHS|^~\\&|LAB|HOSP\rBHS|^~\\&|LAB|HOSP\r" + "".join(messages) + f"BTS|{counted}\rFTS|1\r"


def test_a_batch_over_mllp_is_answered_with_a_batch_of_acks(tmp_path, patient_a):
    require_postgres()
    now = timezone.now()
    listener = Listener(tmp_path)
    try:
        good = oru("BAT-1", [("2160-0", "1.1", "mg/dL")], at=now - timedelta(minutes=9), order="B-1")
        unknown = oru("BAT-2", [("2160-0", "1.1", "mg/dL")], at=now - timedelta(minutes=8), mrn="NOPE", order="B-2")
        other = oru("BAT-3", [("2823-3", "4.4", "mmol/L")], at=now - timedelta(minutes=7), order="B-3")
        with MLLPClient("127.0.0.1", listener.port) as client:
            answer = client.send_message(batch(good, unknown, other)).decode()
            lines = [line for line in answer.strip("\x0b\x1c\r").split("\r") if line]
            assert lines[0].startswith("BHS|") and lines[-1] == "BTS|3", answer
            assert [msa(line)[1:3] for line in lines if line.startswith("MSA")] == [
                ["AA", "BAT-1"], ["AE", "BAT-2"], ["AA", "BAT-3"]]  # fmt: skip
            assert LabResult.objects.count() == 2
            # A batch whose trailer counts more than it carries (cut short) is refused whole, nothing stored.
            short = oru("BAT-4", [("2160-0", "1.3", "mg/dL")], at=now - timedelta(minutes=6), order="B-4")
            answer = client.send_message(batch(short, count=2)).decode()
            assert "MSA|AR" in answer and "ERR|BTS^1^1^" in answer and "counts 2 messages" in answer, answer
        assert not InboundMessage.objects.filter(control_id="BAT-4").exists()
        assert LabResult.objects.count() == 2
    finally:
        listener.stop()


def test_hl7_replay_reads_a_batch_file(tmp_path, patient_a):
    now = timezone.now()
    path = tmp_path / "batch.hl7"
    messages = [oru(f"RB-{n}", [("2823-3", "4.1", "mmol/L")], at=now - timedelta(minutes=10 - n), order=f"RB-{n}")
                for n in range(3)]  # fmt: skip
    path.write_text(batch(*messages).replace("\r", "\n"))
    out = StringIO()
    call_command("hl7_replay", str(path), stdout=out)
    assert out.getvalue().split("\n")[0] == "    3  AA"
    assert LabResult.objects.count() == 3
    (tmp_path / "short.hl7").write_text(batch(*messages, count=4).replace("\r", "\n"))
    with pytest.raises(CommandError, match="counts 4 messages, 3 were received"):
        call_command("hl7_replay", str(tmp_path / "short.hl7"), stdout=StringIO())
    assert LabResult.objects.count() == 3


def test_two_connections_for_one_patient_keep_each_orders_latest_message(tmp_path, patient_a):
    """Connection 1 sends the originals (F), connection 2 the corrections (C, sent a minute later) of the same 15
    orders, in the opposite order and at the same time, through a listener with 4 worker threads: whichever
    arrives first, each order ends with its correction current and the original kept in error."""
    require_postgres()
    now = timezone.now()
    orders = [f"TWO-{n}" for n in range(15)]
    originals = [oru(f"F-{o}", [("2160-0", "1.1", "mg/dL")], at=now - timedelta(minutes=30), order=o) for o in orders]
    corrections = [oru(f"C-{o}", [("2160-0", "2.4", "mg/dL")], at=now - timedelta(minutes=29), order=o, status="C")
                   for o in reversed(orders)]  # fmt: skip
    listener = Listener(tmp_path, threads=4)
    codes: dict[str, list[str]] = {}
    try:

        def send(name, messages):
            with MLLPClient("127.0.0.1", listener.port) as client:
                codes[name] = [msa(client.send_message(m))[1] for m in messages]

        threads = [threading.Thread(target=send, args=(n, m)) for n, m in (("F", originals), ("C", corrections))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert codes == {"F": ["AA"] * 15, "C": ["AA"] * 15}, listener.log()
    finally:
        listener.stop()
    for order in orders:
        rows = {r.source_message_id: r for r in LabResult.objects.filter(source_order=order)}
        assert set(rows) == {f"F-{order}", f"C-{order}"}  # both kept
        assert rows[f"C-{order}"].entered_in_error_at is None, order
        assert rows[f"F-{order}"].entered_in_error_at is not None, order
    assert LabResult.objects.filter(entered_in_error_at__isnull=True).count() == 15
