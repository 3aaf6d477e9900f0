"""``python -m django broadcast_message GROUP TEXT``: broadcast from a plain process."""

from django.core.management.base import BaseCommand, CommandError

from django_websocket import BrokerError, broadcast


class Command(BaseCommand):
    help = "Broadcast TEXT to every member of GROUP, in every process sharing the broker."

    def add_arguments(self, parser):
        parser.add_argument("group")
        parser.add_argument("text")
        parser.add_argument("--binary", action="store_true", help="send TEXT as bytes")

    def handle(self, group, text, binary, **options):
        try:
            broadcast(group, text.encode() if binary else text)
        except BrokerError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"sent to {group}")
