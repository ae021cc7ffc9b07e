import asyncio
import logging

from django.core.management.base import BaseCommand

from inbound.listener import serve


class Command(BaseCommand):
    help = "Listen for HL7 v2 messages over MLLP (ORU^R01, ADT^A01/A02/A03/A08) and answer each with an ACK."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0 in a container).")
        parser.add_argument("--port", type=int, default=2575)
        parser.add_argument("--threads", type=int, default=2, help="Database worker threads.")

    def handle(self, *args, host, port, threads, **options):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        asyncio.run(serve(host, port, threads=threads))
