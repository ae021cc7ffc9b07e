from django.core.management.base import BaseCommand
from django.utils import timezone

from fixtures import demo


class Command(BaseCommand):
    help = "Load the demo ward (staff, six patients, courses mid-cycle and in rest days). Skips if already loaded."

    def handle(self, *args, **options):
        result = demo.load(now=timezone.now())
        if result["loaded"]:
            self.stdout.write(f"demo ward {result['ward']} loaded with {result['patients']} patients")
        else:
            self.stdout.write("demo data already present; left as it is")
