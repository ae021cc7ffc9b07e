import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from il2ward.errors import Invalid
from monitoring.services import rule_set_override


def _value(text: str):
    """A threshold or option value as typed: JSON when it parses (numbers, true/false, lists), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class Command(BaseCommand):
    help = (
        "Create the next version of a rule set with some thresholds or options changed (audited): "
        "rule_set_override consensus-2014 --set CV-HR.hold_above=100 --reason 'site policy 2027-03' --by admin. "
        "Running courses keep the version they started with; new courses take the new one."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--set", dest="pairs", action="append", required=True, metavar="KEY=VALUE")
        parser.add_argument("--reason", required=True)
        parser.add_argument("--by", help="username recorded as the author (default: none, a command-line change)")

    def handle(self, *args, name, pairs, reason, by, **options):
        if not reason.strip():
            raise CommandError("--reason must say why the thresholds change")
        overrides = {}
        for pair in pairs:
            key, sep, text = pair.partition("=")
            if not sep or not key.strip():
                raise CommandError(f"--set {pair!r}: write KEY=VALUE")
            overrides[key.strip()] = _value(text.strip())
        user = None
        if by:
            user = get_user_model().objects.filter(username=by).first()
            if user is None:
                raise CommandError(f"no user {by!r}")
        try:
            version = rule_set_override(
                name=name, overrides=overrides, reason=reason.strip(), by=user, now=timezone.now()
            )
        except Invalid as exc:
            raise CommandError("; ".join(m for messages in exc.errors.values() for m in messages)) from exc
        self.stdout.write(f"{version.name} v{version.version}: {json.dumps(version.overrides, sort_keys=True)}")
