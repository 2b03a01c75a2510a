"""The lists' Celery tasks (the panel's queue). Thin: they call the service."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from lists import imports


@shared_task(name=imports.TASK, acks_late=True)
def import_members(import_id: int, text: str, source: str, actor: list[Any]) -> None:
    """A long member import (lists.imports.run_import): its progress is on the MemberImport."""
    imports.run_import(import_id, text, source, actor)
