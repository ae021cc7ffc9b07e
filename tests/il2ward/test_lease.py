"""The beat lease (il2ward.lease): one holder at a time, renewed by the holder, taken over only once expired; a
sweep sent by a beat that does not hold it is skipped, and one sent by the holder (or by hand) runs."""

from datetime import timedelta

import pytest
from django.utils import timezone

from il2ward.lease import lease_current, lease_release, lease_take, standby_reason
from il2ward.models import Heartbeat

pytestmark = pytest.mark.django_db


def test_the_first_taker_holds_the_lease_and_a_second_is_refused_until_it_expires():
    now = timezone.now()
    assert lease_take(name="beat", holder="a:1", now=now, seconds=30)
    assert not lease_take(name="beat", holder="b:2", now=now + timedelta(seconds=29), seconds=30)
    assert lease_current("beat").holder == "a:1"
    # Expired (not renewed for 30 s): the standby takes it over.
    assert lease_take(name="beat", holder="b:2", now=now + timedelta(seconds=31), seconds=30)
    lease = lease_current("beat")
    assert lease.holder == "b:2" and lease.acquired_at == now + timedelta(seconds=31)
    assert not lease_take(name="beat", holder="a:1", now=now + timedelta(seconds=32), seconds=30)


def test_the_holder_renews_its_lease_and_keeps_it_past_the_first_expiry():
    now = timezone.now()
    assert lease_take(name="beat", holder="a:1", now=now, seconds=30)
    assert lease_take(name="beat", holder="a:1", now=now + timedelta(seconds=20), seconds=30)
    assert not lease_take(name="beat", holder="b:2", now=now + timedelta(seconds=40), seconds=30)
    lease = lease_current("beat")
    assert lease.acquired_at == now and lease.expires_at == now + timedelta(seconds=50)


def test_a_released_lease_is_taken_at_once():
    now = timezone.now()
    lease_take(name="beat", holder="a:1", now=now, seconds=30)
    assert not lease_release(name="beat", holder="b:2")  # only the holder releases
    assert lease_release(name="beat", holder="a:1")
    assert lease_take(name="beat", holder="b:2", now=now + timedelta(seconds=1), seconds=30)


def test_standby_reason_names_the_holder_for_another_sender_only():
    now = timezone.now()
    assert standby_reason(name="beat", sender="b:2") is None  # no lease yet
    lease_take(name="beat", holder="a:1", now=now, seconds=30)
    assert standby_reason(name="beat", sender="b:2") == "the beat lease is held by a:1"
    assert standby_reason(name="beat", sender="a:1") is None
    assert standby_reason(name="beat", sender=None) is None  # run by hand


def test_a_sweep_sent_by_a_standby_beat_is_skipped_and_the_holders_runs():
    from scheduling.tasks import sweep

    lease_take(name="beat", holder="a:1", now=timezone.now(), seconds=30)
    assert sweep.apply(kwargs={"beat": "b:2"}).get() == {"skipped": "the beat lease is held by a:1"}
    assert not Heartbeat.objects.filter(name="beat").exists()
    result = sweep.apply(kwargs={"beat": "a:1"}).get()
    assert "skipped" not in result and Heartbeat.objects.filter(name="beat").exists()


def test_a_resend_sweep_sent_by_a_standby_beat_is_skipped():
    from il2ward.tasks import deliveries_sweep

    lease_take(name="beat", holder="a:1", now=timezone.now(), seconds=30)
    assert deliveries_sweep.apply(kwargs={"beat": "b:2"}).get() == {"skipped": "the beat lease is held by a:1"}
    assert "skipped" not in deliveries_sweep.apply(kwargs={"beat": "a:1"}).get()
