"""What the three reset commands share: unlock through the service, answer as axes' own commands do."""

from django.core.management.base import BaseCommand

from il2ward.credentials import lockout_unlock


class UnlockCommand(BaseCommand):
    def unlock(self, **target) -> int:
        return lockout_unlock(by=None, via=f"manage.py {self.name}", **target)

    def report(self, count: int) -> None:
        self.stdout.write(f"{count} attempts removed." if count else "No attempts found.")

    @property
    def name(self) -> str:
        return self.__module__.rsplit(".", 1)[-1]
