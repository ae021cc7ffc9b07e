"""The MLLP listener: an asyncio server (hl7.mllp) that answers every message with its ACK.

Each message is read as one MLLP block, handed to inbound.services.message_receive in a worker thread (Django's
database calls are synchronous) and acknowledged only after its transaction committed, so an AA always means
"stored". Messages on one connection are processed in order; the sender waits for each ACK. When the database is
unreachable the answer is AE (error 207) and nothing is stored: the sender resends, and the next message
reconnects. A heartbeat row (`hl7-listener:<host>:<port>`) is written every IL2WARD_HEARTBEAT_SECONDS for /readyz.
"""

import asyncio
import logging
import signal
import socket
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import OperationalError, connections
from django.utils import timezone
from hl7.mllp import start_hl7_server
from hl7.mllp.exceptions import InvalidBlockError

from il2ward.heartbeats import process_beats
from inbound import hl7v2
from inbound.services import message_receive

log = logging.getLogger("inbound.listener")
HEARTBEAT_PREFIX = "hl7-listener:"


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
    """One message in, its ACK out (runs in a worker thread). Log lines carry ids and codes, never content."""
    drop_broken_connections()
    raw = _decode(block)
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


async def serve(host: str, port: int, *, threads: int = 2) -> None:
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hl7")

    async def on_connection(reader, writer):
        peer = writer.get_extra_info("peername")
        log.info("connection from %s", peer[0] if peer else "?")
        try:
            while not reader.at_eof():
                try:
                    block = await reader.readblock()
                except asyncio.IncompleteReadError:
                    break  # the sender closed the connection
                except (InvalidBlockError, ValueError):
                    log.warning("not an MLLP block; closing the connection")
                    break
                ack, _ = await loop.run_in_executor(pool, process_block, block)
                writer.writeblock(ack)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await start_hl7_server(on_connection, host, port, limit=2**22)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def heartbeats():
        while True:
            await loop.run_in_executor(pool, beat, port)
            await asyncio.sleep(settings.IL2WARD_HEARTBEAT_SECONDS)

    beats = asyncio.create_task(heartbeats())
    bound = ", ".join(f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in server.sockets)
    print(f"HL7 MLLP listener on {bound}", flush=True)
    async with server:
        await stop.wait()
    beats.cancel()
    pool.shutdown(wait=True)
    log.info("listener stopped")
