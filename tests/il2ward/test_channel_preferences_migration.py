"""The preferences migration keeps every user's choice: the three boolean columns become StaffProfile.channels by
channel name, and back again when it is reversed (Django's migration executor on the test database)."""

import itertools

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("il2ward", "0011_patient_discharged_at")]
AFTER = [("il2ward", "0013_remove_staffprofile_notify_booleans")]
COMBINATIONS = list(itertools.product([True, False], repeat=3))  # (in_app, email, webhook): all eight


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_every_users_choice_survives_the_move_to_channels_by_name_and_back():
    apps = migrate(BEFORE)
    User, Profile = apps.get_model("auth", "User"), apps.get_model("il2ward", "StaffProfile")
    for number, (in_app, email, webhook) in enumerate(COMBINATIONS):
        user = User.objects.create(username=f"migrated{number}")
        Profile.objects.create(user=user, notify_in_app=in_app, notify_email=email, notify_webhook=webhook)
    try:
        migrate(AFTER)
        from il2ward.channels import wants
        from il2ward.models import StaffProfile

        found = {
            p.user.username: tuple(wants(p, name) for name in ("in_app", "email", "webhook", "sms"))
            for p in StaffProfile.objects.select_related("user").filter(user__username__startswith="migrated")
        }
        assert found == {f"migrated{n}": (*choice, False) for n, choice in enumerate(COMBINATIONS)}
        stored = StaffProfile.objects.get(user__username="migrated5").channels  # (False, True, False)
        assert stored == {"in_app": {"on": False}, "email": {"on": True}, "webhook": {"on": False}}
        apps = migrate(BEFORE)  # reversed: the columns come back with the same values
        Profile = apps.get_model("il2ward", "StaffProfile")
        back = {
            p.user.username: (p.notify_in_app, p.notify_email, p.notify_webhook)
            for p in Profile.objects.select_related("user").filter(user__username__startswith="migrated")
        }
        assert back == {f"migrated{n}": choice for n, choice in enumerate(COMBINATIONS)}
    finally:  # the latest state again, whatever migrations come after these
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes("il2ward"))
