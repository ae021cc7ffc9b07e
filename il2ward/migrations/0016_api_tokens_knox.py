"""API tokens move to django-rest-knox (hashed, expiring, one per client).

The plaintext tokens of Django REST framework's authtoken app, where its table exists, are carried over hashed
(SHA-512, as knox checks them), expiring IL2WARD_API_TOKEN_HOURS from now so their clients keep working until they log
in again; then the plaintext table is dropped (and its migration records, so re-adding the app would start clean).
"""

import hashlib
from datetime import timedelta

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


DRF_TABLE = "authtoken_token"


def migrate_drf_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if DRF_TABLE not in connection.introspection.table_names():
        return
    from django.utils import timezone

    ApiToken = apps.get_model("il2ward", "ApiToken")
    expiry = timezone.now() + timedelta(hours=settings.IL2WARD_API_TOKEN_HOURS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id FROM {DRF_TABLE}")  # noqa: S608 - a constant table name
        rows = cursor.fetchall()
    ApiToken.objects.bulk_create(
        ApiToken(
            digest=hashlib.sha512(key.encode()).hexdigest(),
            token_key=key[:15],
            user_id=user_id,
            client="migrated",
            expiry=expiry,
        )  # fmt: skip
        for key, user_id in rows
    )
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {DRF_TABLE}")
        cursor.execute("DELETE FROM django_migrations WHERE app = 'authtoken'")


class Migration(migrations.Migration):
    dependencies = [
        ("il2ward", "0015_ward_board_version"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="securityevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("login", "signed in"),
                    ("login_failed", "sign-in failed"),
                    ("logout", "signed out"),
                    ("lockout", "locked out"),
                    ("password_recheck_failed", "re-entered password failed"),
                    ("token_issued", "API token issued"),
                    ("token_revoked", "API token revoked"),
                    ("token_expired", "API token expired"),
                    ("unlock", "lock-out lifted"),
                    ("export", "export"),
                    ("mrn_conflict", "MRN of a patient not visible to the user"),
                ],
                max_length=32,
            ),
        ),
        migrations.CreateModel(
            name="ApiToken",
            fields=[
                ("token_key", models.CharField(db_index=True, max_length=25)),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("expiry", models.DateTimeField(blank=True, null=True)),
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("digest", models.CharField(max_length=128, unique=True)),
                ("client", models.CharField(blank=True, max_length=64)),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="auth_token_set",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-created", "-pk"],
                "indexes": [models.Index(fields=["user", "client"], name="il2ward_api_user_id_875c60_idx")],
            },
        ),
        migrations.RunPython(migrate_drf_tokens, migrations.RunPython.noop),
    ]
