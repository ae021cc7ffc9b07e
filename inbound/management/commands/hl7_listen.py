import asyncio
import logging
import ssl

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inbound.listener import serve, tls_context


class Command(BaseCommand):
    help = "Listen for HL7 v2 messages over MLLP (ORU^R01, ADT^A01/A02/A03/A08) and answer each with an ACK."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0 in a container).")
        parser.add_argument("--port", type=int, default=2575)
        parser.add_argument("--threads", type=int, default=2, help="Database worker threads.")
        parser.add_argument("--tls-cert", default=settings.IL2WARD_HL7_TLS_CERT,
                            help="PEM certificate chain: MLLP over TLS (default IL2WARD_HL7_TLS_CERT).")  # fmt: skip
        parser.add_argument("--tls-key", default=settings.IL2WARD_HL7_TLS_KEY,
                            help="PEM private key for --tls-cert (default IL2WARD_HL7_TLS_KEY).")  # fmt: skip
        parser.add_argument("--tls-client-ca", default=settings.IL2WARD_HL7_TLS_CLIENT_CA,
                            help="PEM CA file: mutual TLS, only clients with a certificate it signed "
                            "(default IL2WARD_HL7_TLS_CLIENT_CA).")  # fmt: skip

    def handle(self, *args, host, port, threads, tls_cert, tls_key, tls_client_ca, **options):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        if bool(tls_cert) != bool(tls_key):
            raise CommandError("TLS needs both --tls-cert and --tls-key.")
        if tls_client_ca and not tls_cert:
            raise CommandError("Mutual TLS (--tls-client-ca) needs --tls-cert and --tls-key.")
        try:
            tls = tls_context(tls_cert, tls_key, tls_client_ca) if tls_cert else None
        except (OSError, ssl.SSLError) as exc:
            raise CommandError(f"Cannot load the TLS certificate, key or client CA: {exc}") from exc
        asyncio.run(serve(host, port, threads=threads, tls=tls))
