from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Not available here: use axes_reset_username or axes_reset_ip (each unlock is logged and audited)"

    def add_arguments(self, parser):
        parser.add_argument("ip", type=str)
        parser.add_argument("username", type=str)

    def handle(self, *args, **options):
        # axes would clear the pair's attempts without a log entry; the unlock service lifts a username's or an
        # address's lock-out, which is what an administrator can account for.
        raise CommandError("Use axes_reset_username or axes_reset_ip: every unlock is logged and audited.")
