from django.apps import AppConfig


class Il2wardConfig(AppConfig):
    name = "il2ward"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from il2ward import checks  # noqa: F401 - registers the settings checks
        from il2ward.dbroles import grant_after_migrate

        post_migrate.connect(grant_after_migrate, dispatch_uid="il2ward.grant_app_role")
