"""Panel-side tasks of the link to the hosts (queue contract.PANEL_QUEUE, "panel"): push, reports,
heartbeats, moves, the reconcile and the ownership check. Thin: they call hostlink's and
provisioning's services. Their names and the payloads the agent sends them are those of
`mailhost.contract` (the lists' and the mailboxes' reports are lists.tasks and mail.tasks)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from hosting.models import Domain
from hostlink import mailimport, moves, push, reports
from mailhost import contract
from provisioning import dkim, domains


@shared_task(name=contract.PUSH_DOMAIN, acks_late=True, autoretry_for=(Exception,),
             retry_backoff=True, max_retries=5)
def push_domain(domain_id: int) -> int | None:
    return push.push(domain_id)


@shared_task(name=contract.PUSH_RETIRED, acks_late=True)
def push_retired(retired_id: int) -> None:
    push.push_retired(retired_id)


@shared_task(name=contract.REPORT, acks_late=True)
def report(*, host: str, domain: str, revision: int, state: str = "present", error: str = "",
           behind: bool = False) -> None:
    push.heard_from(host)
    reports.record_report(host=host, domain=domain, revision=revision, state=state, error=error, behind=behind)
    if state == "present" and not error and not behind:
        mailimport.send_waiting(domain)  # a mail import waiting for this host to have the mailboxes


@shared_task(name=contract.HEARTBEAT, acks_late=True)
def heartbeat(*, host: str, reads: list[int] | None = None, started: bool = False) -> None:
    push.heard_from(host, contract_version=max(reads) if reads else None, heartbeat=True, started=started)


@shared_task(name=contract.MIGRATED, acks_late=True)
def migrated(*, host: str, move: int, domain: str, copied: list[str] | None = None, error: str = "",
             seconds: float = 0.0) -> None:
    moves.record_migrated(host=host, move=move, domain=domain, copied=copied, error=error)


@shared_task(name=contract.MAIL_IMPORTED, acks_late=True)
def mail_imported(*, host: str, id: Any, domain: str, mailboxes: list[dict[str, Any]] | None = None,  # noqa: A002
                  seconds: float = 0.0, error: str = "") -> None:
    push.heard_from(host)
    mailimport.record_mail_imported(host=host, id=id, domain=domain, mailboxes=mailboxes, seconds=seconds,
                                    error=error)


@shared_task(name=contract.RECONCILE)
def reconcile() -> int:
    sent = push.reconcile()
    mailimport.reconcile_imports()
    return sent


@shared_task(name="provisioning.check_unproven")
def check_unproven() -> int:
    """The background check of the domains not yet proven (Celery beat)."""
    return domains.check_unproven()


@shared_task(name=dkim.ENSURE_TASK)
def dkim_ensure(domain_id: int) -> None:
    """A new domain's DKIM key (bulk queue: the RSA key takes a fraction of a second of CPU)."""
    domain = Domain.objects.filter(pk=domain_id).first()
    if domain is not None:
        dkim.dkim_key_ensure(domain)


@shared_task(name=dkim.MAINTAIN_TASK)
def dkim_maintain() -> int:
    """The beat's DKIM pass: keys whose new record was seen switched, missing keys made."""
    return dkim.dkim_maintain()
