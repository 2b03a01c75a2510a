"""The lists' Celery tasks (the panel's queues): member imports, and what the hosts' agents report
of their lists. Thin: they call the service."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from lists import imports, reports
from mailhost import contract


@shared_task(name=imports.TASK, acks_late=True)
def import_members(import_id: int, text: str, source: str, actor: list[Any]) -> None:
    """A long member import (lists.imports.run_import): its progress is on the MemberImport."""
    imports.run_import(import_id, text, source, actor)


@shared_task(name=contract.LIST_MEMBERS, acks_late=True)
def list_members(*, host: str, changes: list[contract.ListChange]) -> int:
    return reports.record_list_changes(host=host, changes=changes)


@shared_task(name=contract.HELD, acks_late=True)
def held(*, host: str, lists: list[contract.ListHeld], complete: bool = False) -> int:
    return reports.record_held(host=host, lists=lists, complete=complete)
