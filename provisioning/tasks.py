"""Panel-side tasks (queue contract.PANEL_QUEUE, "panel"). Thin: they call provisioning.services.
Their names and the payloads the agent sends them are those of `mailhost.contract`."""

from __future__ import annotations

from celery import shared_task

from mailhost import contract
from provisioning import services


@shared_task(name=contract.PUSH_DOMAIN, acks_late=True, autoretry_for=(Exception,),
             retry_backoff=True, max_retries=5)
def push_domain(domain_id: int) -> int | None:
    return services.push(domain_id)


@shared_task(name=contract.PUSH_RETIRED, acks_late=True)
def push_retired(retired_id: int) -> None:
    services.push_retired(retired_id)


@shared_task(name=contract.REPORT, acks_late=True)
def report(*, host: str, domain: str, revision: int, state: str = "present", error: str = "",
           behind: bool = False) -> None:
    services.record_report(host=host, domain=domain, revision=revision, state=state, error=error, behind=behind)


@shared_task(name=contract.MIGRATED, acks_late=True)
def migrated(*, host: str, move: int, domain: str, copied: list[str] | None = None, error: str = "",
             seconds: float = 0.0) -> None:
    services.record_migrated(host=host, move=move, domain=domain, copied=copied, error=error)


@shared_task(name=contract.RECONCILE)
def reconcile() -> int:
    return services.reconcile()


@shared_task(name=contract.LIST_MEMBERS, acks_late=True)
def list_members(*, host: str, changes: list[contract.ListChange]) -> int:
    return services.record_list_changes(host=host, changes=changes)


@shared_task(name=contract.HELD, acks_late=True)
def held(*, host: str, lists: list[contract.ListHeld], complete: bool = False) -> int:
    return services.record_held(host=host, lists=lists, complete=complete)


@shared_task(name=contract.USAGE, acks_late=True)
def usage(*, host: str, usage: dict[str, int]) -> int:
    return services.record_usage(host=host, usage=usage)
