"""Writes for monitoring: rule-set versions (observations are added by the hold-rules work)."""

from datetime import datetime

from django.db import IntegrityError, transaction

from il2ward.audit import audit
from il2ward.errors import Invalid
from monitoring.domain.rulesets import RULE_SETS
from monitoring.models import RuleSetVersion


def rule_set_current(name: str, *, now: datetime) -> RuleSetVersion:
    """The newest version of a rule set; version 1 is written from the built-in definition on first use."""
    latest = RuleSetVersion.objects.filter(name=name).order_by("-version").first()
    if latest is not None:
        return latest
    if name not in RULE_SETS:
        raise Invalid({"rule_set": [f"Unknown rule set {name!r}; one of {', '.join(sorted(RULE_SETS))}"]})
    try:
        with transaction.atomic():
            version = RuleSetVersion.objects.create(
                name=name, version=1, base=name, overrides={}, definition=RULE_SETS[name].to_dict(), created_at=now
            )
            audit(actor=None, action="ruleset.create", obj=version, at=now, new={"name": name, "version": 1})
            return version
    except IntegrityError:  # created concurrently
        return RuleSetVersion.objects.get(name=name, version=1)


@transaction.atomic
def rule_set_override(*, name: str, overrides: dict, by, now: datetime) -> RuleSetVersion:
    """A site's change of thresholds: a new version of the rule set, never an edit of an old one."""
    current = rule_set_current(name, now=now)
    base = RULE_SETS[current.base]
    merged = {**current.overrides, **overrides}
    try:
        definition = base.with_overrides(merged, version=current.version + 1).to_dict()
    except ValueError as exc:
        raise Invalid({"overrides": [str(exc)]}) from exc
    version = RuleSetVersion.objects.create(
        name=name,
        version=current.version + 1,
        base=current.base,
        overrides=merged,
        definition=definition,
        created_at=now,
        created_by=by,
    )
    audit(actor=by, action="ruleset.override", obj=version, at=now, old=current.overrides, new=merged)
    return version
