"""The DNS checks of the domains, run and stored (`DnsCheck`): in the background (Celery beat on
the bulk queue, `check_due`) and on demand ("Check now": `request_check` queues `check_domains`).

The checks themselves are `hosting.dnscheck`'s pure functions. Here: what the panel knows of each
domain is read in a few queries (`facts_for`), the lookups run outside any transaction, several
domains at once in a bounded thread pool (`DNS_CHECK_THREADS`: a lookup mostly waits for its
server, so a slow or silent server costs wall time, not CPU), then each batch's results are
written in one transaction (an upsert of the batch's rows, and `DkimKey.dns_seen_at` of the keys
seen for the first time), and a NEXT key seen is switched on (`provisioning.dkim.dkim_activate_seen`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from config.celery import app as panel_app
from hosting import dns, dnscheck
from hosting.models import DkimKey, DkimKeyState, Domain
from mailhost import contract
from provisioning.dkim import dkim_activate_seen
from provisioning.models import DnsCheck

log = logging.getLogger(__name__)

CHECK_TASK = "provisioning.dns_check_domains"
DUE_TASK = "provisioning.dns_check_due"
# "Check now" queues at most one check of a domain in this time.
ASK_AGAIN_AFTER = timedelta(seconds=30)
# The beat's run (every BEAT_SECONDS: config/settings.py): batches of this many domains, no new
# batch once the budget is spent (the bulk worker also runs the imports: a run never holds it for
# long), and no more domains than twice its share of an interval (`per_run`): the checks of 1,000
# domains come as 100 a minute, not all in one burst every hour.
BATCH = 100
BUDGET_SECONDS = 25.0
BEAT_SECONDS = 60


def facts_for(domain_ids: Iterable[int]) -> list[dnscheck.DomainFacts]:
    """What the checks need of each domain (its name, its pack's mail host, the DKIM keys it
    publishes: its own, its target's for an alias domain), in two queries; the host's addresses
    are filled in by `run_checks`."""
    rows = list(Domain.objects.filter(pk__in=list(domain_ids))
                .values_list("pk", "name", "alias_of_id", "pack__mail_host__fqdn"))
    owners = {alias_of or pk for pk, _name, alias_of, _host in rows}
    keys: dict[int, list[dnscheck.KeyFacts]] = {}
    for key_id, owner, selector, public_key, _state, _created in (
            DkimKey.objects.filter(domain_id__in=owners, state__in=[DkimKeyState.ACTIVE, DkimKeyState.NEXT])
            .values_list("pk", "domain_id", "selector", "public_key", "state", "created_at")
            .order_by(F("state").asc(), "created_at")):  # "active" before "next"
        keys.setdefault(owner, []).append(dnscheck.KeyFacts(id=key_id, selector=selector, public_key=public_key))
    return [dnscheck.DomainFacts(id=pk, name=name, host=(fqdn or "").rstrip(".").lower(),
                                 keys=tuple(keys.get(alias_of or pk, [])), own_keys=alias_of is None)
            for pk, name, alias_of, fqdn in rows]


def threads() -> int:
    return max(1, int(getattr(settings, "DNS_CHECK_THREADS", 32)))


def run_checks(facts: list[dnscheck.DomainFacts]) -> list[tuple[dnscheck.DomainFacts, dnscheck.Outcome]]:
    """The checks of these domains, several at once (never in a transaction: no row is locked
    while DNS answers). The mail hosts' addresses are looked up once each."""
    if connection.in_atomic_block:
        raise RuntimeError("DNS checks look up DNS: run them outside any transaction")
    if not facts:
        return []
    resolver = dns.resolver()  # dnspython's resolver is safe to share between threads (no cache here)
    hosts = sorted({one.host for one in facts if one.host})
    workers = min(threads(), len(facts))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dnscheck") as pool:
        addresses = dict(zip(hosts, pool.map(lambda host: dnscheck.host_addresses(host, resolver), hosts),
                             strict=True))
        ready = [dataclasses.replace(one, host_addresses=addresses.get(one.host, ())) for one in facts]
        outcomes = list(pool.map(lambda one: _check_one(one, resolver), ready))
    return list(zip(ready, outcomes, strict=True))


def _check_one(facts: dnscheck.DomainFacts, resolver: object) -> dnscheck.Outcome:
    try:
        return dnscheck.check_domain(facts, resolver)  # type: ignore[arg-type]
    except Exception as error:  # one domain's failure never stops the others' checks
        log.exception("DNS check of %s failed", facts.name)
        return dnscheck.Outcome(checks=[dnscheck.check_entry("mx", dnscheck.UNKNOWN, "lookup_failed",
                                                        found=[type(error).__name__])])


def store(checked: list[tuple[dnscheck.DomainFacts, dnscheck.Outcome]]) -> None:
    """Write a batch's results in one transaction: one upsert for the batch's rows, one update
    for the DKIM keys seen for the first time; then switch on the NEXT keys seen."""
    if not checked:
        return
    now = timezone.now()
    seen = [key for _facts, outcome in checked for key in outcome.seen_keys]
    with transaction.atomic():
        alive = set(Domain.objects.filter(pk__in=[facts.id for facts, _ in checked]).values_list("pk", flat=True))
        rows = [DnsCheck(domain_id=facts.id, checked_at=now, results=outcome.results)
                for facts, outcome in checked if facts.id in alive]
        try:
            with transaction.atomic():
                DnsCheck.objects.bulk_create(rows, update_conflicts=True, unique_fields=["domain"],
                                             update_fields=["checked_at", "results"])
        except IntegrityError:  # a domain deleted meanwhile: row by row
            for row in rows:
                with transaction.atomic():
                    if Domain.objects.filter(pk=row.domain_id).exists():
                        DnsCheck.objects.update_or_create(domain_id=row.domain_id, defaults={
                            "checked_at": row.checked_at, "results": row.results})
        first_seen = list(DkimKey.objects.filter(pk__in=seen, dns_seen_at__isnull=True)
                          .values_list("domain_id", "state"))
        DkimKey.objects.filter(pk__in=seen, dns_seen_at__isnull=True).update(dns_seen_at=now)
    for domain_id in sorted({domain_id for domain_id, state in first_seen if state == DkimKeyState.NEXT}):
        domain = Domain.objects.filter(pk=domain_id).first()
        if domain is not None:
            try:
                dkim_activate_seen(domain)
            except Exception:  # the beat's dkim_maintain switches it later
                log.exception("switching the DKIM key of domain %s failed", domain_id)


def check_domains(domain_ids: Iterable[int]) -> int:
    """Check these domains now and store the results (the on-demand task). Returns how many."""
    checked = run_checks(facts_for(domain_ids))
    store(checked)
    return len(checked)


def due(limit: int, every: timedelta) -> list[int]:
    """The domains whose last check is older than `every` (never checked first, then oldest)."""
    cutoff = timezone.now() - every
    return list(Domain.objects.filter(Q(dns_check__isnull=True) | Q(dns_check__checked_at__isnull=True)
                                      | Q(dns_check__checked_at__lt=cutoff))
                .order_by(F("dns_check__checked_at").asc(nulls_first=True), "pk")
                .values_list("pk", flat=True)[:limit])


def per_run(every: timedelta, batch: int = BATCH) -> int:
    """How many domains one beat run checks at most: twice its share of the domains in an
    interval (a run that could not keep up is caught up by the next ones), at least a batch."""
    runs = max(1.0, every.total_seconds() / BEAT_SECONDS)
    return max(batch, math.ceil(2 * Domain.objects.count() / runs))


def check_due(*, batch: int = BATCH, budget_seconds: float = BUDGET_SECONDS, every: timedelta | None = None,
              limit: int | None = None) -> int:
    """The beat's run: the domains not checked for `DNS_CHECK_SECONDS`, oldest first, in batches
    of `batch`, until none is due, `limit` (default `per_run`) are checked or `budget_seconds` are
    spent. Returns how many were checked."""
    every = every if every is not None else timedelta(seconds=settings.DNS_CHECK_SECONDS)
    limit = limit if limit is not None else per_run(every, batch)
    started = time.monotonic()
    done = 0
    while done < limit and time.monotonic() - started < budget_seconds:
        ids = due(min(batch, limit - done), every)
        if not ids:
            break
        done += check_domains(ids)
    return done


def request_check(domain: Domain) -> bool:
    """"Check now": queue a check of the domain on the bulk queue (never looked up in the request),
    unless one was asked less than ASK_AGAIN_AFTER ago. Returns whether it was queued."""
    now = timezone.now()
    with transaction.atomic():
        DnsCheck.objects.get_or_create(domain_id=domain.pk)
        claimed = (DnsCheck.objects.filter(domain_id=domain.pk)
                   .filter(Q(requested_at__isnull=True) | Q(requested_at__lt=now - ASK_AGAIN_AFTER))
                   .update(requested_at=now))
        if claimed:
            transaction.on_commit(lambda: _enqueue(domain.pk))
    return bool(claimed)


def _enqueue(domain_id: int) -> None:
    try:
        panel_app.send_task(CHECK_TASK, args=[[domain_id]], queue=contract.BULK_QUEUE)
    except Exception as error:  # noqa: BLE001 - whatever the broker's client raises: the beat checks it later
        log.warning("the DNS check of domain %s could not be queued (%s: %s); the beat will check it",
                    domain_id, type(error).__name__, error)
        DnsCheck.objects.filter(domain_id=domain_id).update(requested_at=None)
