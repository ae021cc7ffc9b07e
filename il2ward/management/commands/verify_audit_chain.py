from django.core.management.base import BaseCommand, CommandError

from il2ward.audit import CheckpointError, verify_trail


class Command(BaseCommand):
    help = (
        "Check the audit trail: every row's link and HMAC (with the key its row names), then the chain against the "
        "latest signed checkpoint (an edited, re-hashed, reordered or truncated trail is reported with the first bad "
        "row, or the truncation)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--checkpoints", help="the checkpoint file (default IL2WARD_AUDIT_CHECKPOINT_FILE)")

    def handle(self, *args, **options):
        try:
            report = verify_trail(checkpoint_path=options.get("checkpoints"))
        except CheckpointError as exc:
            raise CommandError(f"audit checkpoints tampered: {exc}") from exc
        if not report.intact:
            bad = report.bad_event
            where = f" ({bad.action} {bad.object_type}:{bad.object_id})" if bad is not None else ""
            raise CommandError(f"audit chain broken at {report.problem}{where}")
        anchor = (
            f"checked against the checkpoint of {report.checkpoint['at']} ({report.checkpoint['count']} events)"
            if report.checkpoint
            else "no checkpoint yet: a cut tail cannot be detected until one is written"
        )
        legacy = f", {report.legacy} unkeyed rows from before the chain was keyed" if report.legacy else ""
        self.stdout.write(f"audit chain intact: {report.count} events{legacy}; {anchor}")
