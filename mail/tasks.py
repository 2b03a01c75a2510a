"""Mail's Celery tasks: what a host's agent reports of its mailboxes (the panel's queue), a long
import of POP accounts or forwards (the bulk queue). Thin."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from mail import reports, transfer
from mailhost import contract


@shared_task(name=contract.USAGE, acks_late=True)
def usage(*, host: str, usage: dict[str, int]) -> int:
    return reports.record_usage(host=host, usage=usage)


@shared_task(name=transfer.TASK, acks_late=True)
def import_accounts(import_id: int, token: str, language: str, actor: list[Any]) -> None:
    """A long import of POP accounts or forwards (mail.transfer.run_import): its progress is on the AccountImport."""
    transfer.run_import(import_id, token, language, actor)
