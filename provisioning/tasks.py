"""The DNS checks' tasks (bulk queue, `contract.BULK_QUEUE`): the beat's run and "Check now"."""

from __future__ import annotations

from celery import shared_task

from provisioning import dnscheck


@shared_task(name=dnscheck.DUE_TASK)
def dns_check_due() -> int:
    """The beat's run: the domains not checked for DNS_CHECK_SECONDS, oldest first, bounded."""
    return dnscheck.check_due()


@shared_task(name=dnscheck.CHECK_TASK)
def dns_check_domains(domain_ids: list[int]) -> int:
    """"Check now" of a domain's page: its checks, at once."""
    return dnscheck.check_domains(domain_ids)
