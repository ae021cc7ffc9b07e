from django.core.management.base import BaseCommand, CommandError

from il2ward.audit import verify_chain
from il2ward.models import AuditEvent


class Command(BaseCommand):
    help = "Check the audit trail's hash chain; report the first row whose hash or link does not match."

    def handle(self, *args, **options):
        bad = verify_chain()
        if bad is not None:
            raise CommandError(f"audit chain broken at event {bad.pk} ({bad.action} {bad.object_type}:{bad.object_id})")
        self.stdout.write(f"audit chain intact: {AuditEvent.objects.count()} events")
