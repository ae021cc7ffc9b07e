from il2ward.lockouts.management.commands._unlock import UnlockCommand


class Command(UnlockCommand):
    help = "Reset all access attempts and lock-outs of the given client addresses (each logged and audited)"

    def add_arguments(self, parser):
        parser.add_argument("ip", nargs="+", type=str)

    def handle(self, *args, **options):
        self.report(sum(self.unlock(address=address) for address in options["ip"]))
