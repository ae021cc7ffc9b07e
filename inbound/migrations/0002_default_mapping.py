from datetime import UTC, datetime

from django.db import migrations

from inbound.defaults import DEFAULT_MAPPINGS


def seed(apps, schema_editor):
    MappingVersion = apps.get_model("inbound", "MappingVersion")
    CodeMapping = apps.get_model("inbound", "CodeMapping")
    if MappingVersion.objects.exists():
        return
    version = MappingVersion.objects.create(
        number=1, created_at=datetime.now(UTC), reason="Defaults shipped with IL2Ward (inbound/defaults.py)"
    )
    CodeMapping.objects.bulk_create(
        CodeMapping(
            version=version, system=system, code=code, display=display, unit=unit, target=target, field=field,
            factor=str(factor), divisor=str(divisor), offset=str(offset),
        )  # fmt: skip
        for system, code, display, unit, target, field, factor, divisor, offset in DEFAULT_MAPPINGS
    )


class Migration(migrations.Migration):
    dependencies = [("inbound", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
