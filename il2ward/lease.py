"""Leases in the database: exactly one process at a time runs a singleton job (the beat's sweeps).

A lease row names its holder (`host:pid`) and when it expires. `lease_take` is one conditional UPDATE: it succeeds
for the holder (a renewal) or for anyone once the lease has expired (a takeover), and fails otherwise; the first
taker of a name inserts the row. So with two beats the second one waits (a standby) and takes over at most one
lease period after the first one stopped renewing (killed, hung, cut off from the database).

Times are the processes' own clocks (`now` passed in, like everywhere else): hosts that run beats keep NTP time, and
a skew shorter than the lease period only shortens or lengthens a takeover.
"""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When

from il2ward.models import Lease

BEAT = "beat"


def lease_take(*, name: str, holder: str, now, seconds: int) -> bool:
    """Take or renew lease `name` for `holder` until now + seconds; False while someone else holds it unexpired."""
    expires_at = now + timedelta(seconds=seconds)
    taken = (
        Lease.objects.filter(name=name)
        .filter(Q(holder=holder) | Q(expires_at__lt=now))
        .update(
            holder=holder,
            expires_at=expires_at,
            acquired_at=Case(When(holder=holder, then=F("acquired_at")), default=Value(now)),
        )
    )
    if taken:
        return True
    try:
        with transaction.atomic():
            Lease.objects.create(name=name, holder=holder, acquired_at=now, expires_at=expires_at)
    except IntegrityError:  # the row exists (someone else holds it) or was inserted by a concurrent first taker
        return False
    return True


def lease_release(*, name: str, holder: str) -> bool:
    """Give the lease up (a beat shutting down cleanly), so a standby need not wait for it to expire."""
    return bool(Lease.objects.filter(name=name, holder=holder).delete()[0])


def lease_current(name: str) -> Lease | None:
    return Lease.objects.filter(name=name).first()


def standby_reason(*, name: str, sender: str | None) -> str | None:
    """Why a job sent by `sender` must not run (another process holds the lease), or None when it may.

    A job with no sender (run by hand, by a test, by an older beat) runs: the jobs are idempotent, the lease only
    keeps two beats from doubling the work. The sender that is the lease's current holder runs even if its lease
    has just expired: nobody else has taken it, so nobody else is running the job.
    """
    if sender is None:
        return None
    lease = lease_current(name)
    if lease is None or lease.holder == sender:
        return None
    return f"the {name} lease is held by {lease.holder}"
