from django.apps import AppConfig


class LockoutsConfig(AppConfig):
    name = "il2ward.lockouts"
    label = "il2ward_lockouts"
    verbose_name = "Lock-out commands"
