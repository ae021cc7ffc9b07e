"""Reminders end to end, per kind: how punctual, how many, how many twice; from one compressed run of the real chain.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x IL2WARD_BENCH_REDIS_URL=redis://127.0.0.1:6379/8 \\
        .venv/bin/python -m bench reminders_e2e

The run is the end-to-end scenario test (tests/notifications/test_chain_e2e.py): a real Celery worker and beat
(sweep every second), PostgreSQL, Redis, a local SMTP server and a local webhook receiver, timings compressed by
environment variables (dose_due 1 min before the slot, assessment_due 2 min before, an escalation chain of 1-minute
steps walked by moving the flag back a minute at a time). Running the test itself is the measurement: this module
runs it in a child pytest (its own test database `test_<db>` on the server DATABASE_URL names, the Redis database
IL2WARD_BENCH_REDIS_URL names, flushed) and prints what it wrote to IL2WARD_E2E_FIGURES. It needs both services:
without them it reports why and fails.

Per kind (a row per recipient of a notification written during the run):
- due: rows written; delivered: their deliveries delivered, all channels (in-app is delivered as its row commits);
  due before the run: scheduled rows whose time had come before the scenario began (the daily weight and labs
  reminders at 06:00 ward-local of a course created later that day), left out of the timing error;
- timing error: delivered − when it was due. For the scheduled kinds (assessment_due, dose_due, dose_overdue,
  vitals_due, weight_due, labs_due, escalation) "due" is the notification's due_at, the moment its offset came (for an
  escalation, the step's time after the flag); for the kinds written when something happens (hold_flagged,
  stop_recommended, dose_missed, third_hold) it is the moment the row was written (its deliveries' created_at), so
  their figure is the delivery's latency. Max and p95 in seconds;
- duplicates: the same kind and episode (topic: kind, dose or patient, evaluation or time bucket), recipient and
  channel delivered more than once; plus, at the receivers, an e-mail accepted twice for one notification and a
  webhook accepted (2xx) twice for one event.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SWEEP_SECONDS = 1
SCHEDULED = {"assessment_due", "dose_due", "dose_overdue", "vitals_due", "weight_due", "labs_due", "escalation"}
BAR_ERROR_SECONDS = 10 * SWEEP_SECONDS  # the test's bar: within ten sweep intervals on a busy 2-core machine


def p95(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def figures(*, since_id: int = 0, started=None, mails=(), hooks=()) -> dict[str, dict]:
    """Per kind: due, delivered, max_error_s, p95_error_s, duplicates (see the module docstring). `mails` and `hooks`
    are what the local SMTP server and webhook receiver recorded (tests/notifications/sinks.py). Rows written during
    the run are those with an id above `since_id`. A scheduled reminder whose due time is before `started` (a daily
    06:00 reminder for a course created at 19:00) has no timing error to speak of: it is counted in
    `due_before_start` and left out of the error figures."""
    from il2ward.models import Delivery, Notification

    out: dict[str, dict] = defaultdict(
        lambda: {
            "due": 0,
            "delivered": 0,
            "max_error_s": None,
            "p95_error_s": None,
            "duplicates": 0,
            "due_before_start": 0,
        }
    )
    errors: dict[str, list[float]] = defaultdict(list)
    for kind, due_at in Notification.objects.filter(pk__gt=since_id).values_list("kind", "due_at"):
        out[kind]["due"] += 1
        if kind in SCHEDULED and started is not None and due_at is not None and due_at < started:
            out[kind]["due_before_start"] += 1
    delivered = Delivery.objects.filter(notification_id__gt=since_id, status=Delivery.Status.DELIVERED)
    episodes: Counter = Counter()
    for kind, topic, key, recipient, channel, due_at, created_at, at in delivered.values_list(
        "notification__kind",
        "notification__topic",
        "notification__dedupe_key",
        "notification__recipient_id",
        "channel",
        "notification__due_at",
        "created_at",  # the delivery's: when the notification was written (the scenario moves a flag's back)
        "delivered_at",
    ):
        out[kind]["delivered"] += 1
        reference = due_at if kind in SCHEDULED and due_at is not None else created_at
        if started is None or reference >= started:
            errors[kind].append((at - reference).total_seconds())
        episodes[(kind, topic or key, recipient, channel)] += 1
    for (kind, *_), n in episodes.items():
        out[kind]["duplicates"] += n - 1
    by_notification = Counter(m.message["X-IL2Ward-Notification"] for m in mails)
    kinds = dict(Notification.objects.filter(pk__gt=since_id).values_list("pk", "kind"))
    for notification, n in by_notification.items():
        if n > 1:
            out[kinds.get(int(notification), "?")]["duplicates"] += n - 1
    accepted = Counter((h.json["kind"], h.headers["X-IL2Ward-Event-Id"]) for h in hooks if 200 <= h.status < 300)
    for (kind, _), n in accepted.items():
        out[kind]["duplicates"] += n - 1
    for kind, values in errors.items():
        out[kind]["max_error_s"] = round(max(values), 2)
        out[kind]["p95_error_s"] = round(p95(values), 2)
    return dict(sorted(out.items()))


def _seconds(value) -> str:
    return "—" if value is None else f"{value:.2f} s"


def table(result: dict[str, dict]) -> str:
    """The figures as text; "—": nothing of that kind fell due during the run."""
    lines = ["kind              due  delivered  max error  p95 error  duplicates  due before the run"]
    for kind, row in result.items():
        lines.append(
            f"{kind:<16} {row['due']:>4} {row['delivered']:>10} {_seconds(row['max_error_s']):>10} "
            f"{_seconds(row['p95_error_s']):>10} {row['duplicates']:>11} {row['due_before_start']:>19}"
        )
    return "\n".join(lines)


def measure(*, database_url: str, redis_url: str) -> dict[str, dict]:
    """Run the scenario test in a child pytest against these services; return its figures."""
    with tempfile.TemporaryDirectory(prefix="il2ward-e2e-") as tmp:
        out = Path(tmp) / "figures.json"
        env = {k: v for k, v in os.environ.items() if k not in ("IL2WARD_VAR_DIR", "IL2WARD_CELERY_EAGER")}
        env.update(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            IL2WARD_REQUIRE_SERVICES="1",
            IL2WARD_E2E_FIGURES=str(out),
            DJANGO_SETTINGS_MODULE="il2ward.settings",
        )
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/notifications/test_chain_e2e.py", "-q", "-p", "no:cacheprovider",
             "-k", "scenario"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"the end-to-end scenario failed ({done.returncode}):\n{done.stdout[-6000:]}")
        return json.loads(out.read_text())


def run() -> list[tuple]:
    """(name, value, bar, passed) rows for `python -m bench`: per kind, max timing error and duplicates."""
    from bench import common

    database_url = common._state.get("postgres_admin_url") or os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("IL2WARD_BENCH_REDIS_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")) or not redis_url:
        raise RuntimeError("bench.reminders_e2e needs DATABASE_URL=postgres://... and IL2WARD_BENCH_REDIS_URL")
    result = measure(database_url=database_url, redis_url=redis_url)
    print(table(result), file=sys.stderr)
    rows = []
    for kind, row in result.items():
        rows.append((f"e2e {kind}: rows due", row["due"], f"deliveries delivered {row['delivered']}"))
        if row["max_error_s"] is not None:
            rows.append((f"e2e {kind}: p95 timing error, s", row["p95_error_s"], "info"))
            rows.append((f"e2e {kind}: max timing error, s", row["max_error_s"], f"≤ {BAR_ERROR_SECONDS}",
                         row["max_error_s"] <= BAR_ERROR_SECONDS))  # fmt: skip
        rows.append((f"e2e {kind}: duplicates", row["duplicates"], "= 0", row["duplicates"] == 0))
    return rows


if __name__ == "__main__":
    figures_ = measure(
        database_url=os.environ["DATABASE_URL"],
        redis_url=os.environ.get("IL2WARD_BENCH_REDIS_URL") or os.environ["REDIS_URL"],
    )
    print(table(figures_))
