"""What the patient's observations say. The rule engine itself is pure (monitoring/domain)."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class RuleSetVersion(models.Model):
    """A versioned rule set as data: a base set (consensus-2014, label-only) plus a site's threshold overrides.

    Never edited in place: a site change is a new version, so every stored evaluation can still name the exact
    thresholds that made it.
    """

    name = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    base = models.CharField(max_length=64)
    overrides = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    definition = models.JSONField(
        encoder=DjangoJSONEncoder, help_text="The complete rule set (rules, thresholds, options) as evaluated."
    )
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="ruleset_name_version_unique")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"
