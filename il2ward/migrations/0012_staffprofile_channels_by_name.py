"""Notification preferences stored by channel name (StaffProfile.channels) instead of one boolean column each; every
user's current choice is copied, so nobody starts or stops receiving anything. The columns go in the next migration
(PostgreSQL refuses to alter a table with row updates pending in the same transaction)."""

from django.db import migrations, models

OLD = {"in_app": "notify_in_app", "email": "notify_email", "webhook": "notify_webhook"}


def booleans_to_channels(apps, schema_editor):
    StaffProfile = apps.get_model("il2ward", "StaffProfile")
    profiles = list(StaffProfile.objects.only("pk", *OLD.values()))
    for profile in profiles:
        profile.channels = {name: {"on": getattr(profile, column)} for name, column in OLD.items()}
    StaffProfile.objects.bulk_update(profiles, ["channels"], batch_size=500)


def channels_to_booleans(apps, schema_editor):
    StaffProfile = apps.get_model("il2ward", "StaffProfile")
    profiles = list(StaffProfile.objects.only("pk", "channels"))
    for profile in profiles:
        for name, column in OLD.items():
            setattr(profile, column, bool(((profile.channels or {}).get(name) or {}).get("on", True)))
    StaffProfile.objects.bulk_update(profiles, list(OLD.values()), batch_size=500)


class Migration(migrations.Migration):
    dependencies = [("il2ward", "0011_patient_discharged_at")]

    operations = [
        migrations.AddField(
            model_name="staffprofile",
            name="channels",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.RunPython(booleans_to_channels, channels_to_booleans),
    ]
