"""Time formats (il2ward.timefmt): UTC instants with Z for machines, ward-local text for people."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from il2ward import timefmt

CHICAGO = ZoneInfo("America/Chicago")
T = datetime(2027, 3, 12, 22, 0, tzinfo=UTC)


def test_iso_z_writes_utc_with_z_and_keeps_none():
    assert timefmt.iso_z(T.astimezone(CHICAGO)) == "2027-03-12T22:00:00Z"
    assert timefmt.iso_z(T.replace(microsecond=5)) == "2027-03-12T22:00:00.000005Z"
    assert timefmt.iso_z(None) is None


def test_a_naive_time_is_refused_never_read_as_server_time():
    with pytest.raises(ValueError, match="naive"):
        timefmt.iso_z(datetime(2027, 3, 12, 22, 0))  # noqa: DTZ001
    with pytest.raises(ValueError, match="naive"):
        timefmt.local_text(datetime(2027, 3, 12, 22, 0), CHICAGO)  # noqa: DTZ001


def test_ward_local_forms():
    assert timefmt.local_iso(T, CHICAGO) == "2027-03-12T16:00:00-06:00"
    assert timefmt.local_iso(T, None) == "2027-03-12T22:00:00+00:00"
    assert timefmt.local_iso(None, CHICAGO) is None
    assert timefmt.readable(T, CHICAGO) == "Fri 12 Mar 2027 16:00 CST (UTC-06:00) = 22:00 UTC"
    assert timefmt.readable(None, CHICAGO) == ""
    assert timefmt.local_text(T, CHICAGO) == "Fri 12 Mar 2027 16:00 CST"
    assert timefmt.local_text(T, CHICAGO, timefmt.SHORT) == "Fri 12 Mar 16:00"
    assert timefmt.local_text(T.replace(day=5), CHICAGO, timefmt.PRINTED) == "Fri 5 Mar 2027 16:00 CST"
    # The day after the spring change the offset is CDT's: the zone, not a fixed offset.
    assert timefmt.local_text(datetime(2027, 3, 15, 21, 0, tzinfo=UTC), CHICAGO) == "Mon 15 Mar 2027 16:00 CDT"
    typed = datetime.strptime("2027-03-12 16:00", timefmt.TYPED)  # noqa: DTZ007
    assert typed == datetime.strptime("2027-03-12T16:00", timefmt.PICKER)  # noqa: DTZ007
