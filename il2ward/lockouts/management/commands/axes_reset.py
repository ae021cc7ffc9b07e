from il2ward.lockouts.management.commands._unlock import UnlockCommand


class Command(UnlockCommand):
    help = "Reset all access attempts and lock-outs (logged and audited)"

    def handle(self, *args, **options):
        self.report(self.unlock(everything=True))
