from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from inbound import hl7v2
from inbound.services import message_receive


def split_messages(text: str) -> list[str]:
    """A file of HL7 v2 messages, one segment a line, each message starting with MSH; '#' lines are comments. A
    batch file (FHS/BHS ... BTS/FTS) is read by hl7v2.split_batch, its trailer's count checked."""
    lines = [line for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
             if line.strip() and not line.startswith("#")]  # fmt: skip
    if any(line[:3] in hl7v2.BATCH_SEGMENTS for line in lines):
        return hl7v2.split_batch("\r".join(lines))
    messages, current = [], []
    for line in lines:
        if line.startswith("MSH") and current:
            messages.append("\r".join(current) + "\r")
            current = []
        current.append(line)
    if current:
        messages.append("\r".join(current) + "\r")
    return messages


class Command(BaseCommand):
    help = (
        "Replay a file of HL7 v2 messages through the same processing as the listener. Times in the file may be "
        "written relative to now ({now-90m}, {now-2h}), so the sample feed is always current."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")

    def handle(self, *args, path, **options):
        file = Path(path)
        if not file.exists():
            raise CommandError(f"No file {path}")
        now = timezone.now()
        counts: dict[str, int] = {}
        try:
            messages = split_messages(substitute_times(file.read_text(), now=now))
        except hl7v2.Refusal as refusal:
            raise CommandError(f"{path}: {refusal.text} Nothing replayed.") from refusal
        for raw in messages:
            receipt = message_receive(raw=raw, now=timezone.now())
            key = receipt.code if receipt.refusal is None else f"{receipt.code} {receipt.refusal.code}"
            if receipt.duplicate:
                key = "AA duplicate"
            counts[key] = counts.get(key, 0) + 1
        for key, n in sorted(counts.items()):
            self.stdout.write(f"{n:5d}  {key}")


def substitute_times(text: str, *, now) -> str:
    """{now-90m} / {now-2h} / {now} → an HL7 time in UTC; {run} → a run id, so control ids are new each replay."""
    import re
    from datetime import UTC, timedelta

    def repl(match):
        sign, amount, unit = match.group(1), match.group(2), match.group(3)
        delta = timedelta(minutes=int(amount)) if unit == "m" else timedelta(hours=int(amount))
        moment = now - delta if sign == "-" else now + delta
        return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")

    text = re.sub(r"\{now([-+])(\d+)([mh])\}", repl, text)
    text = text.replace("{now}", now.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000"))
    return text.replace("{run}", now.strftime("%Y%m%d%H%M"))
