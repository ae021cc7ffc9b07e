import os

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from il2ward.errors import Invalid
from il2ward.models import Role
from il2ward.services import staff_upsert


class Command(BaseCommand):
    help = "Create or update a staff member (idempotent). The password is read from IL2WARD_PASSWORD, never argv."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--ward", action="append", default=[], dest="wards", help="ward code (repeatable)")
        parser.add_argument("--email", default="")
        parser.add_argument("--name", default="", help="printed name shown under e-signatures")

    def handle(self, *args, username, role, wards, email, name, **options):
        password = os.environ.get("IL2WARD_PASSWORD", "")
        if not password:
            raise CommandError("Set IL2WARD_PASSWORD in the environment (the password is never taken from argv).")
        existing = get_user_model().objects.filter(username=username).first()
        try:  # the same rules (settings.AUTH_PASSWORD_VALIDATORS) as everywhere else a password is set
            validate_password(password, user=existing)
        except ValidationError as exc:
            raise CommandError(f"IL2WARD_PASSWORD: {' '.join(exc.messages)}") from exc
        try:
            staff_upsert(
                username=username,
                role=role,
                password=password,
                ward_codes=wards,
                email=email,
                printed_name=name,
                now=timezone.now(),
            )
        except Invalid as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.errors.items())) from exc
        self.stdout.write(f"staff {username} ({role}) wards: {', '.join(wards) or '-'}")
