from django.core.management.base import BaseCommand
from django.utils import timezone

from il2ward.audit import checkpoint_write


class Command(BaseCommand):
    help = "Append a signed checkpoint of the audit chain's head to the checkpoint file (beat does this on a schedule)."

    def handle(self, *args, **options):
        record = checkpoint_write(now=timezone.now())
        self.stdout.write(f"audit checkpoint: {record['count']} events up to event {record['last_id']}")
