import json
import zoneinfo
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from scheduling.domain import calendar


class Command(BaseCommand):
    help = (
        "Print a course's dose slots without a database: "
        "dose_calendar --first-dose 2027-03-12T16:00 --tz America/Chicago [--cycles 2] [--json]. "
        "A first dose without an offset is ward-local wall-clock time in --tz."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--first-dose", required=True)
        parser.add_argument("--tz", required=True)
        parser.add_argument("--cycles", type=int, default=2, choices=[1, 2])
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, first_dose, tz, cycles, **options):
        # Checked against the list, not by loading: ZoneInfo("America") is a directory (IsADirectoryError).
        if tz not in zoneinfo.available_timezones():
            raise CommandError(f"unknown time zone {tz!r} (an IANA name such as America/Chicago)")
        zone = zoneinfo.ZoneInfo(tz)
        try:
            first = datetime.fromisoformat(first_dose)
        except ValueError as exc:
            raise CommandError(f"--first-dose is not an ISO 8601 time: {first_dose!r}") from exc
        first = calendar.to_local_aware(first, zone) if first.tzinfo is None else first
        slots = calendar.course_slots(first, zone=zone, cycles=cycles)
        if options["json"]:
            self.stdout.write(json.dumps(calendar.slots_to_json(slots, zone), indent=2))
            return
        for slot in slots:
            local = slot.due_at.astimezone(zone)
            self.stdout.write(
                f"C{slot.cycle} #{slot.number:>2}  {local:%a %Y-%m-%d %H:%M %Z}  ({slot.due_at:%Y-%m-%dT%H:%MZ})"
            )
