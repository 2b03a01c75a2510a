"""A domain's life on the mail hosts: created at a revision above any it had, deleted from every
host that keeps it, moved with its pack to another host. Each is one transaction.

Above hosting (the tenant tree, its limits) and provisioning's records; below mail, which
creates a new domain with its required accounts (`mail.accounts.domain_create_with_accounts`:
postmaster, and hostmaster on a .fr domain) around `domain_create`.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta
from functools import partial

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from hosting import audit, dns
from hosting.audit import Action
from hosting.models import Domain, MailHost, Pack, VerifiedHow
from hosting.roles import Seat
from hosting.services import check_alias_domain_limits, check_domain_limits, lock_pack
from hosting.validators import normalize_hosted_domain
from provisioning import dkim
from provisioning.models import DomainMove, DomainSync, RetiredDomain
from provisioning.revisions import domain_changed, schedule_retired_push

log = logging.getLogger(__name__)

# The proof a customer publishes: a TXT record on a name of its own under the domain (RFC 8552's
# underscored names, as `_dmarc` and `_acme-challenge`), not on the apex: it leaves the apex's TXT
# records (SPF, other providers' proofs) alone, and a CNAME of the apex cannot hide it.
PROOF_LABEL = "_mailpanel-verify"
PROOF_PREFIX = "mailpanel-verify="
# The background check (`check_unproven`): each unproven domain at most this often, and a run
# bounded in domains and in time (a lookup is bounded by hosting.dns.LIFETIME).
CHECK_EVERY = timedelta(minutes=10)
CHECK_BATCH = 50
CHECK_BUDGET_SECONDS = 60.0
# The page's button ("Check now") checks at once, unless the last check is more recent than this.
CHECK_AGAIN_AFTER = timedelta(seconds=10)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def proof_record(domain: Domain) -> tuple[str, str]:
    """The TXT record that proves the domain is the customer's: its name and its text."""
    return f"{PROOF_LABEL}.{domain.name}", f"{PROOF_PREFIX}{domain.verification_token}"


def shown_text(found: str, limit: int = 60) -> str:
    """A text found in DNS as the page and the database may hold it: its start, control
    characters (NUL included, which PostgreSQL refuses) as U+FFFD."""
    return CONTROL.sub("\ufffd", found[:limit])


def parent_names(name: str) -> list[str]:
    """The domains above `name` that a customer could hold (two labels or more), nearest first."""
    labels = name.split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels) - 1)]


def _proven_parent(domain: Domain) -> bool:
    """Whether a domain above this one is held and proven by the same customer."""
    return Domain.objects.filter(
        name__in=parent_names(domain.name), pack__customer_id=domain.pack.customer_id, verified_at__isnull=False
    ).exists()


def _check_new_name(ascii_name: str, pack: Pack) -> tuple[bool, int]:
    """The checks of a new domain's name (an alias domain's too) for `pack`'s customer: not
    hosted yet, not under another customer's domain. Returns whether a domain above it is proven
    by the same customer (the new one is then proven too) and the revision it starts at (above any
    its name had on a host: revisions only grow for a name on a host, even across a delete and a
    re-create)."""
    if Domain.objects.filter(name=ascii_name).exists():
        raise ValidationError(_("This domain is already hosted."), code="unique")
    # Under another customer's domain: refused (its mail is that customer's). Under one of the
    # same customer's, proven: proven too (the same customer proved it holds the parent).
    parents = list(Domain.objects.filter(name__in=parent_names(ascii_name)).values_list(
        "name", "pack__customer_id", "verified_at"))
    for parent, customer_id, _verified_at in parents:
        if customer_id != pack.customer_id:
            raise ValidationError(_("This domain is under %(parent)s, which another customer holds.")
                                  % {"parent": parent}, code="parent")
    proven_parent = any(verified_at is not None for _name, _customer, verified_at in parents)
    retired = RetiredDomain.objects.filter(name=ascii_name).aggregate(m=Max("revision"))["m"] or 0
    return proven_parent, retired


def _create_row(**fields: object) -> Domain:
    try:
        with transaction.atomic():
            return Domain.objects.create(**fields)
    except IntegrityError:
        raise ValidationError(_("This domain is already hosted."), code="unique") from None


@transaction.atomic
def domain_create(*, pack: Pack, name: str, acting_user: Seat | None) -> Domain:
    ascii_name = normalize_hosted_domain(name)  # www. dropped; the hosts' own names refused
    locked = lock_pack(pack.pk)
    check_domain_limits(locked)
    proven_parent, retired = _check_new_name(ascii_name, locked)
    domain = _create_row(pack=locked, name=ascii_name, revision=retired)
    domain_changed(domain)
    audit.record(acting_user, Action.DOMAIN_CREATE, domain)
    transaction.on_commit(partial(dkim.enqueue_ensure, domain.pk))  # its DKIM key, made off the page's time
    if proven_parent:
        _mark_verified(domain, VerifiedHow.PARENT, acting_user)
    return domain


@transaction.atomic
def alias_domain_create(*, domain: Domain, name: str, acting_user: Seat | None,
                        verified_how: VerifiedHow | None = None) -> Domain:
    """An alias domain of `domain` (vpopmail's `vaddaliasdomain`): every address of `domain` is
    also valid at `name`. The name is checked as a new domain's (`domain_create`); the alias lives
    in its target's pack, within the plan's own count of alias domains, and is proven like any
    domain before its host serves it (`verified_how` given: proven at once, as the vpopmail import
    does). Never an alias of an alias."""
    ascii_name = normalize_hosted_domain(name)
    locked = lock_pack(domain.pack_id)
    # The target under its row lock (after the pack's, lock_pack's order): a delete of it waits
    # for this alias, then deletes it with its target.
    target = Domain.objects.select_for_update(of=("self",)).filter(pk=domain.pk, pack=locked).first()
    if target is None:
        raise ValidationError(_("This domain no longer exists."), code="gone")
    if target.alias_of_id is not None:
        raise ValidationError(
            _("%(name)s is itself an alias domain: add the alias to the domain it is an alias of.")
            % {"name": target.unicode_name}, code="alias")
    check_alias_domain_limits(locked)
    proven_parent, retired = _check_new_name(ascii_name, locked)
    alias = _create_row(pack=locked, name=ascii_name, alias_of=target, revision=retired)
    domain_changed(alias)
    audit.record(acting_user, Action.ALIAS_DOMAIN_CREATE, alias, alias_of=target.name)
    how = verified_how or (VerifiedHow.PARENT if proven_parent else None)
    if how is not None:
        _mark_verified(alias, how, acting_user)
    return alias


def _mark_verified(locked: Domain, how: VerifiedHow, acting_user: Seat | None) -> None:
    """In the caller's transaction, the domain (its row locked) being unproven: proven now, and
    its host gets the whole domain, served from now on."""
    now = timezone.now()
    Domain.objects.filter(pk=locked.pk).update(verified_at=now, verified_how=how, verification_error="")
    locked.verified_at, locked.verified_how, locked.verification_error = now, how, ""
    # The host held nothing of it but its name (mailhost.apply): the next document is the whole domain.
    DomainSync.objects.filter(domain=locked).update(needs_full=True)
    domain_changed(locked)
    audit.record(acting_user, Action.DOMAIN_VERIFY, locked, how=str(how))


@transaction.atomic
def domain_verify(*, domain: Domain, how: VerifiedHow = VerifiedHow.HAND, acting_user: Seat | None) -> bool:
    """Mark the domain proven the customer's (`how`: by hand, for operators and resellers; the
    DNS check passes its own). Returns False, changing nothing, when it already was."""
    locked = Domain.objects.select_for_update(of=("self",)).select_related("pack").get(pk=domain.pk)
    if locked.verified_at is not None:
        return False
    _mark_verified(locked, how, acting_user)
    domain.verified_at, domain.verified_how, domain.revision = locked.verified_at, locked.verified_how, locked.revision
    return True


def _look(domain: Domain) -> tuple[VerifiedHow | None, str]:
    """Ask DNS (and the panel, for a parent) whether the domain is proven: how, else what was found."""
    if _proven_parent(domain):
        return VerifiedHow.PARENT, ""
    found = []
    name, text = proof_record(domain)
    try:
        records = dns.txt_records(name)
    except dns.LookupFailed as error:
        found.append(f"TXT {error}")
    else:
        if text in (record.strip() for record in records):
            return VerifiedHow.TXT, ""
        shown = ", ".join(f'"{shown_text(record)}"' for record in records[:3]) or "none"
        found.append(f"TXT {name}: {shown}")
    fqdn = domain.pack.mail_host.fqdn
    try:
        hosts = dns.mx_hosts(domain.name)
    except dns.LookupFailed as error:
        found.append(f"MX {error}")
    else:
        if fqdn and any(dns.same_host(host, fqdn) for host in hosts):
            return VerifiedHow.MX, ""
        found.append(f"MX {domain.name}: {', '.join(hosts[:3]) or 'none'}")
    return None, "; ".join(found)


def domain_check_ownership(*, domain: Domain, acting_user: Seat | None = None) -> bool:
    """Check against DNS whether the domain is proven the customer's (the TXT record of
    `proof_record`, or its MX on the pack's mail host, or a parent proven by the same customer),
    record the check's time and what it found, and mark it proven when it is. Never inside a
    transaction (the lookups take up to a few seconds: no row stays locked meanwhile). Returns
    whether the domain is proven."""
    if connection.in_atomic_block:
        raise RuntimeError("domain_check_ownership looks up DNS: call it outside any transaction")
    current = Domain.objects.select_related("pack__mail_host").filter(pk=domain.pk).first()
    if current is None:
        return False
    if current.verified_at is not None:
        return True
    how, found = _look(current)
    with transaction.atomic():
        locked = Domain.objects.select_for_update(of=("self",)).select_related("pack").filter(pk=domain.pk).first()
        if locked is None:
            return False
        Domain.objects.filter(pk=locked.pk).update(verification_checked_at=timezone.now(),
                                                   verification_error=found[:300])
        if locked.verified_at is not None:
            return True
        if how is not None:
            _mark_verified(locked, how, acting_user)
    return how is not None


def check_unproven(*, batch: int = CHECK_BATCH, budget_seconds: float = CHECK_BUDGET_SECONDS) -> int:
    """The background check: the unproven domains not checked for CHECK_EVERY, least recently
    checked first, at most `batch` of them and no more once `budget_seconds` are spent. Returns
    how many were found proven."""
    started = time.monotonic()
    due = (
        Domain.objects.filter(verified_at__isnull=True)
        .filter(Q(verification_checked_at__isnull=True) | Q(verification_checked_at__lt=timezone.now() - CHECK_EVERY))
        .order_by(F("verification_checked_at").asc(nulls_first=True), "pk")
        .values_list("pk", flat=True)[:batch]
    )
    proven = 0
    for pk in list(due):
        if time.monotonic() - started > budget_seconds:
            break
        try:
            proven += domain_check_ownership(domain=Domain(pk=pk))
        except Exception:  # one domain's failure never stops the others' checks
            log.exception("ownership check of domain %s failed", pk)
    return proven


def _retire(locked: Domain, action: Action, acting_user: Seat | None, **detail: object) -> list[int]:
    """In the caller's transaction, a domain's row locked: record that every host that keeps it
    (its pack's, and the one it is leaving while a move is open) is to remove it, at a revision
    above its last, write the audit row and delete the row. Returns the RetiredDomain ids to push."""
    hosts = {locked.pack.mail_host_id, *DomainMove.objects.open().filter(domain=locked).values_list(
        "from_host_id", flat=True)}
    retired_ids = [
        RetiredDomain.objects.update_or_create(
            name=locked.name, host_id=host_id,
            defaults={"revision": locked.revision + 1, "confirmed": False, "error": ""},
        )[0].pk
        for host_id in sorted(hosts)
    ]
    audit.record(acting_user, action, locked, **detail)
    locked.delete()
    return retired_ids


@transaction.atomic
def domain_delete(*, domain: Domain, acting_user: Seat | None) -> None:
    """Delete a domain with everything in it; its mail host removes it (maildirs included), and
    so does the host it is leaving when a move is still open (that host still keeps it). A
    domain's alias domains go with it, each retired from its hosts as a domain is; an alias domain
    alone is deleted the same way (its target keeps everything)."""
    # Only the domain's row: locking the joined pack too would deadlock with lock_pack's order.
    locked = (
        Domain.objects.select_for_update(of=("self",)).select_related("pack__mail_host").get(pk=domain.pk)
    )
    aliases = list(Domain.objects.select_for_update(of=("self",)).select_related("pack")
                   .filter(alias_of=locked).order_by("pk"))
    retired_ids = [
        retired_id for alias in aliases
        for retired_id in _retire(alias, Action.ALIAS_DOMAIN_DELETE, acting_user, alias_of=locked.name)
    ]
    if locked.alias_of_id is not None:
        target_name = Domain.objects.filter(pk=locked.alias_of_id).values_list("name", flat=True).first()
        retired_ids += _retire(locked, Action.ALIAS_DOMAIN_DELETE, acting_user, alias_of=target_name)
    else:
        retired_ids += _retire(locked, Action.DOMAIN_DELETE, acting_user, **(
            {"alias_domains": [alias.name for alias in aliases]} if aliases else {}))
    for retired_id in retired_ids:
        transaction.on_commit(partial(schedule_retired_push, retired_id))


def open_move(domain: Domain, from_host: MailHost, to_host: MailHost) -> DomainMove | None:
    """Record, in the caller's transaction, that the domain leaves `from_host` for `to_host` at
    its current revision (the caller bumped it). An open move of the domain is kept as it is."""
    if from_host.pk == to_host.pk or DomainMove.objects.open().filter(domain=domain).exists():
        return None
    return DomainMove.objects.create(domain=domain, from_host=from_host, to_host=to_host, revision=domain.revision)


@transaction.atomic
def pack_move(*, pack: Pack, mail_host: MailHost, acting_user: Seat | None) -> None:
    """Place a pack on another mail host: its domains are applied there, their mail is copied
    there, and only then are they removed from the old one (one DomainMove per domain)."""
    locked = lock_pack(pack.pk)
    if locked.mail_host_id == mail_host.pk:
        return
    if not mail_host.active:
        raise ValidationError(_("This mail host does not accept new packs."), code="host")
    if DomainMove.objects.open().filter(domain__pack=locked).exists():
        raise ValidationError(_("A move of this pack is still in progress."), code="moving")
    # A rename the old host has not applied: its mail is still under the old name there, and the
    # copy asks for the new one (mail is above this floor: read through `Domain.mailboxes`).
    if Domain.objects.filter(pack=locked, mailboxes__renamed_revision__gt=0).exists():
        raise ValidationError(_("A POP account of this pack was renamed a moment ago and its mail host has not "
                                "applied it yet. Try again in a moment."), code="renaming")
    old = locked.mail_host
    Pack.objects.filter(pk=locked.pk).update(mail_host=mail_host)
    for domain in Domain.objects.filter(pack=locked):
        domain_changed(domain)
        open_move(domain, old, mail_host)
    audit.record(acting_user, Action.PACK_MOVE, locked, old_host=old.name, new_host=mail_host.name)
