from django.apps import AppConfig


class Il2wardConfig(AppConfig):
    name = "il2ward"

    def ready(self) -> None:
        from il2ward import checks  # noqa: F401 - registers the settings checks
