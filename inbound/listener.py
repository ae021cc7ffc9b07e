"""The MLLP listener: an asyncio server (hl7.mllp) that answers every message with its ACK.

Each message is read as one MLLP block, handed to inbound.services.message_receive in a worker thread (Django's
database calls are synchronous) and acknowledged only after its transaction committed, so an AA always means
"stored". Messages on one connection are processed in order; the sender waits for each ACK. When the database is
unreachable the answer is AE (error 207) and nothing is stored: the sender resends, and the next message
reconnects. What each commit would do next (publish the patient's re-evaluation, bump the ward board's version) is
gathered instead (il2ward.deferral) and done by a flush every FLUSH_SECONDS, after the ACKs: once per patient and
task per window, and one board UPDATE, off the path of the next message; when the broker refuses the flush's first
publish, the re-evaluations run here (il2ward.tasking). A heartbeat row (`hl7-listener:<host>:<port>`) is written
every IL2WARD_HEARTBEAT_SECONDS for /readyz.
"""

import asyncio
import logging
import signal
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import OperationalError, connections
from django.utils import timezone
from hl7.mllp import start_hl7_server
from hl7.mllp.exceptions import InvalidBlockError

from il2ward import deferral, tasking
from il2ward.heartbeats import process_beats
from inbound import hl7v2
from inbound.services import message_receive

log = logging.getLogger("inbound.listener")
HEARTBEAT_PREFIX = "hl7-listener:"
# How long a result's re-evaluation may wait after its ACK: long enough to gather a burst of one patient's
# messages into one evaluation, short against the minutes a nurse takes to reach the dose.
FLUSH_SECONDS = 0.25
AFTER_ACK = deferral.Deferred()  # this process's gathered work (its worker threads add, the flush takes)


def heartbeat_name(port: int) -> str:
    return f"{HEARTBEAT_PREFIX}{socket.gethostname()}:{port}"


def _decode(block: bytes) -> str:
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError:
        return block.decode("latin-1")  # HL7 v2's default character set (MSH-18 empty) is 8-bit


def drop_broken_connections() -> None:
    """Keep this thread's database connection between messages (a new connection per message would cost more than
    the message), but replace one the database dropped. Not close_old_connections(): with CONN_MAX_AGE 0 it closes
    every time."""
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and conn.errors_occurred and not conn.is_usable():
            conn.close()
        conn.errors_occurred = False


def process_block(block: bytes) -> tuple[bytes, str]:
    """One message (or one batch: FHS/BHS ... BTS/FTS) in, its ACK (a batch of ACKs) out; runs in a worker thread.
    Log lines carry ids and codes, never content. The work after each commit is gathered into AFTER_ACK."""
    drop_broken_connections()
    raw = _decode(block)
    with deferral.collecting(AFTER_ACK):
        if hl7v2.is_batch(raw):
            return _process_batch(raw)
        return _process_message(raw)


def flush_after_ack() -> int:
    """Do the gathered work (in a worker thread, with its own database connection)."""
    drop_broken_connections()
    return tasking.flush_deferred(AFTER_ACK)


def _process_batch(raw: str) -> tuple[bytes, str]:
    """Each message of the batch as if sent alone (its own transaction and ACK), answered as one batch. A batch
    that does not add up (BTS-1) is refused whole, nothing stored."""
    now = timezone.now()
    try:
        messages = hl7v2.split_batch(raw)
    except hl7v2.Refusal as refusal:
        log.info("batch refused: %s at %s", refusal.code, refusal.field)
        ack = hl7v2.ack(None, raw, code="AR", refusal=refusal, ack_id=now.strftime("%H%M%S%f"), now=now)
        return hl7v2.batch_ack([ack], now=now).encode(), "AR"
    acks, codes = [], []
    for message in messages:
        ack, code = _process_message(message)
        acks.append(ack.decode())
        codes.append(code)
    log.info("batch of %d messages: %s", len(messages), " ".join(codes))
    worst = "AR" if "AR" in codes else "AE" if "AE" in codes else "AA"
    return hl7v2.batch_ack(acks, now=now).encode(), worst


def _process_message(raw: str) -> tuple[bytes, str]:
    now = timezone.now()
    try:
        receipt = message_receive(raw=raw, now=now)
    except OperationalError:
        for conn in connections.all(initialized_only=True):
            conn.close()  # the next message reconnects
        refusal = hl7v2.Refusal("unavailable", "MSH-10", "Temporarily unavailable; nothing stored, resend.")
        try:
            parsed = hl7v2.parse(raw)
        except hl7v2.Refusal:
            parsed = None
        log.warning("database unavailable; message answered AE (resend)")
        ack = hl7v2.ack(parsed, raw, code="AE", refusal=refusal, ack_id=now.strftime("%H%M%S%f"), now=now)
        return ack.encode(), "AE"
    row = receipt.message
    log.info(
        "message %s %s from %s: %s%s%s",
        row.control_id if row else "-",
        row.message_type if row else "-",
        row.source_system if row else "-",
        receipt.code,
        f" {receipt.refusal.code} at {receipt.refusal.field}" if receipt.refusal else "",
        " (duplicate)" if receipt.duplicate else "",
    )
    return receipt.ack.encode(), receipt.code


def beat(port: int) -> None:
    drop_broken_connections()
    try:
        process_beats(name=heartbeat_name(port), now=timezone.now())
    except OperationalError:
        for conn in connections.all(initialized_only=True):
            conn.close()
        log.warning("database unavailable; heartbeat not written")


def tls_context(cert: str, key: str, client_ca: str = "") -> ssl.SSLContext:
    """Server side TLS (1.2 or later) with the site's certificate chain and key; the interface engine verifies us.
    With `client_ca` (mutual TLS) the handshake also demands a client certificate signed by that CA: a client with
    none, or with one from another CA, is refused before it can send a message."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=cert, keyfile=key)
    if client_ca:
        context.load_verify_locations(cafile=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


async def serve(host: str, port: int, *, threads: int = 2, tls: ssl.SSLContext | None = None) -> None:
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hl7")

    async def on_connection(reader, writer):
        peer = writer.get_extra_info("peername")
        subject = dict(part for rdn in (writer.get_extra_info("peercert") or {}).get("subject", ()) for part in rdn)
        log.info("connection from %s%s", peer[0] if peer else "?",
                 f" (client certificate {subject['commonName']})" if "commonName" in subject else "")  # fmt: skip
        try:
            while not reader.at_eof():
                try:
                    block = await reader.readblock()
                except asyncio.IncompleteReadError:
                    break  # the sender closed the connection
                except (InvalidBlockError, ValueError):
                    log.warning("not an MLLP block; closing the connection")
                    break
                except (ssl.SSLError, OSError) as exc:  # e.g. a client that does not speak TLS to a TLS port
                    log.warning("connection dropped: %s", type(exc).__name__)
                    break
                ack, _ = await loop.run_in_executor(pool, process_block, block)
                writer.writeblock(ack)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await start_hl7_server(on_connection, host, port, limit=2**22, ssl=tls)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def heartbeats():
        while True:
            await loop.run_in_executor(pool, beat, port)
            await asyncio.sleep(settings.IL2WARD_HEARTBEAT_SECONDS)

    async def flushes():
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            if len(AFTER_ACK):
                await loop.run_in_executor(pool, flush_after_ack)

    beats = asyncio.create_task(heartbeats())
    flusher = asyncio.create_task(flushes())
    bound = ", ".join(f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in server.sockets)
    mutual = tls is not None and tls.verify_mode == ssl.CERT_REQUIRED
    print(f"HL7 MLLP listener on {bound}{' (TLS' if tls else ''}{', client certificates required' if mutual else ''}"
          f"{')' if tls else ''}", flush=True)  # fmt: skip
    async with server:
        await stop.wait()
    beats.cancel()
    flusher.cancel()
    pool.submit(flush_after_ack)  # queued after the messages in hand, whose work joins AFTER_ACK
    pool.shutdown(wait=True)
    log.info("listener stopped")
