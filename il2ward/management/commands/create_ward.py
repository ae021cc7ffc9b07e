from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from il2ward.errors import Invalid
from il2ward.services import ward_upsert


class Command(BaseCommand):
    help = "Create or update a ward (idempotent): create_ward CODE --name NAME --tz Area/City"

    def add_arguments(self, parser):
        parser.add_argument("code")
        parser.add_argument("--name", required=True)
        parser.add_argument("--tz", required=True, help="IANA time zone, e.g. America/Chicago")

    def handle(self, *args, code, name, tz, **options):
        try:
            ward = ward_upsert(code=code, name=name, tz=tz, now=timezone.now())
        except Invalid as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.errors.items())) from exc
        self.stdout.write(f"ward {ward.code} ({ward.tz})")
