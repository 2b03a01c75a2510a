"""Panel-side tasks (queue "panel"). Thin: they call provisioning.services."""

from __future__ import annotations

from celery import shared_task

from provisioning import services


@shared_task(name="provisioning.push_domain", acks_late=True, autoretry_for=(Exception,),
             retry_backoff=True, max_retries=5)
def push_domain(domain_id: int) -> int | None:
    return services.push(domain_id)


@shared_task(name="provisioning.push_retired", acks_late=True)
def push_retired(retired_id: int) -> None:
    services.push_retired(retired_id)


@shared_task(name="provisioning.report", acks_late=True)
def report(*, host: str, domain: str, revision: int, state: str = "present", error: str = "") -> None:
    services.record_report(host=host, domain=domain, revision=revision, state=state, error=error)


@shared_task(name="provisioning.migrated", acks_late=True)
def migrated(*, host: str, move: int, domain: str, copied: list[str] | None = None, error: str = "",
             seconds: float = 0.0) -> None:
    services.record_migrated(host=host, move=move, domain=domain, copied=copied, error=error)


@shared_task(name="provisioning.reconcile")
def reconcile() -> int:
    return services.reconcile()


@shared_task(name="provisioning.list_members", acks_late=True)
def list_members(*, host: str, changes: list[dict]) -> int:
    return services.record_list_changes(host=host, changes=changes)


@shared_task(name="provisioning.usage", acks_late=True)
def usage(*, host: str, usage: dict[str, int]) -> int:
    return services.record_usage(host=host, usage=usage)
