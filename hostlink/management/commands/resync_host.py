"""Send every domain of a mail host again (after the host was rebuilt or restored)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hosting.models import MailHost
from provisioning.revisions import resync_host


class Command(BaseCommand):
    help = "Send the complete state of every domain of a mail host to that host again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("host", help="name of the mail host")

    def handle(self, *args: Any, host: str, **options: Any) -> None:
        mail_host = MailHost.objects.filter(name=host).first()
        if mail_host is None:
            raise CommandError(f"no mail host named {host!r}")
        count = resync_host(mail_host)
        self.stdout.write(self.style.SUCCESS(f"{count} domain(s) of {host} queued for a full resync."))
