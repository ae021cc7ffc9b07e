"""Local stand-ins for what is outside the machine: a tiny SMTP server and a webhook receiver on 127.0.0.1.

Both run in a thread of the test process, record what they receive, and can be told to fail or to stall, so the
channel code is tested against real sockets (no mocks).
"""

import json
import socketserver
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self):
        return message_from_bytes(self.data, policy=default_policy)


class SmtpSink:
    """Just enough SMTP for smtplib (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT). `reject = n` answers the
    next n DATA commands with 451 (a temporary failure); an address in `down_for` is refused at RCPT with 451 (that
    mailbox's server is down) while it is there."""

    def __init__(self):
        self.mails: list[Mail] = []
        self.reject = 0
        self.down_for: set[str] = set()
        self.refused = 0
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")
                self.wfile.flush()

            def handle(self):
                self.reply("220 sink ESMTP")
                sender, rcpts = "", []
                while True:
                    raw = self.rfile.readline()
                    if not raw:
                        return
                    command = raw.decode(errors="replace").strip()
                    verb = command.split(" ", 1)[0].upper()
                    if verb == "EHLO":
                        self.reply("250-sink")
                        self.reply("250 8BITMIME")
                    elif verb == "HELO":
                        self.reply("250 sink")
                    elif verb == "MAIL":
                        sender, rcpts = command.split(":", 1)[1].strip().strip("<>").split(">")[0], []
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        address = command.split(":", 1)[1].strip().strip("<>")
                        if address in sink.down_for:
                            sink.refused += 1
                            self.reply("451 mailbox unavailable, try again later")
                            continue
                        rcpts.append(address)
                        self.reply("250 OK")
                    elif verb == "DATA":
                        if sink.reject > 0:
                            sink.reject -= 1
                            self.reply("451 try again later")
                            continue
                        self.reply("354 end with .")
                        lines = []
                        while True:
                            line = self.rfile.readline()
                            if line in (b".\r\n", b".\n", b""):
                                break
                            lines.append(line[1:] if line.startswith(b"..") else line)
                        sink.mails.append(Mail(sender, rcpts, b"".join(lines)))
                        self.reply("250 queued")
                    elif verb in ("RSET", "NOOP"):
                        self.reply("250 OK")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 not implemented")

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Hook:
    headers: object  # an http.client.HTTPMessage: names are case-insensitive
    body: bytes
    at: float
    status: int = 200  # what the sink answered

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class WebhookSink:
    """Records every POST. `statuses` (a list) answers the next requests with those codes, then 200; `delay` seconds
    before answering; `hold` (an Event) makes the *first* request wait until it is set; while `down` is true every
    request is answered 503 (recorded with that status)."""

    delay: float = 0.0
    statuses: list[int] = field(default_factory=list)
    hold: threading.Event | None = None
    hooks: list[Hook] = field(default_factory=list)
    down: bool = False

    def __post_init__(self):
        sink = self
        self.lock = threading.Lock()
        self.first_arrived = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with sink.lock:
                    status = 503 if sink.down else (sink.statuses.pop(0) if sink.statuses else 200)
                    sink.hooks.append(Hook(self.headers, body, time.time(), status))  # case-insensitive
                    first = len(sink.hooks) == 1
                if first:
                    sink.first_arrived.set()
                    if sink.hold is not None:
                        sink.hold.wait(120)
                if sink.delay:
                    time.sleep(sink.delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the sender died while we held the request
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()

    def delivery_counts(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        with self.lock:
            for hook in self.hooks:
                key = int(hook.headers["X-IL2Ward-Delivery"])
                counts[key] = counts.get(key, 0) + 1
        return counts
