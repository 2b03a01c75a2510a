"""POP accounts moved in whole from another server (`vpopmail.importer`): thousands of rows in
one service call, with `mail.services.mailbox_create`'s rules checked once for all of them.

`mailbox_create` costs a lock, a revision and an audit row per account (and a hash): right for a
person's form, 10,000 times too much for a server's move. Here the pack is locked once, its room
(the plan's and the reseller's POP accounts, the pack's total quota) checked once for the whole
call, every name checked free in a few queries, the rows written with `bulk_create` in batches,
the domain's revision bumped once and one audit row written. The hashes come as they are (the
old server's `{MD5-CRYPT}`, `{SHA512-CRYPT}`...: `mailhost.passwords` verifies them and the
mailbox login upgrades them at the next login, `mail.auth`); nothing is hashed here.

A row that cannot be created (its name, its hash, its texts) is refused alone, with its reason;
rows beyond the pack's room refuse the whole call (the caller plans within the room: what an
import cannot hold is its report's, not a half-written domain's). A forwarding row's
destinations pass `services.check_destinations` (no chain, no loop) once the rows exist; a
refused one stays a plain account, its reason reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from hosting import audit
from hosting.audit import Action
from hosting.models import UNLIMITED, Domain, Pack
from hosting.roles import Seat
from hosting.services import lock_pack
from hosting.validators import MAX_QUOTA_MB
from mail import rename, services
from mail.models import Forward, Mailbox, Robot, Routing, folded
from mail.validators import clean_text, normalize_local_part
from mailhost.render import HASH_RE, list_bases
from provisioning.models import RemovedName
from provisioning.revisions import domain_changed

BATCH = 1000


@dataclass
class NewMailbox:
    """One POP account to create, as the source holds it (`password_hash`: `{SCHEME}hash`)."""

    local_part: str
    password_hash: str = field(repr=False)
    real_name: str = ""
    quota_mb: int | None = None  # None: the plan's default; 0: unlimited
    is_admin: bool = False
    allow_pop3: bool = True
    allow_imap: bool = True
    allow_smtp: bool = True
    routing: str = Routing.STANDARD
    forward_to: list[str] = field(default_factory=list)
    keep_copy: bool = False
    vacation_enabled: bool = False
    vacation_subject: str = ""
    vacation_message: str = ""
    vacation_days: int = 1


@dataclass
class BulkResult:
    created: list[str] = field(default_factory=list)  # local parts
    refused: dict[str, str] = field(default_factory=dict)  # local part → why (nothing created)
    routing_refused: dict[str, str] = field(default_factory=dict)  # created, left a plain account: why


def _message(error: ValidationError) -> str:
    return " ".join(error.messages)


def _row(domain: Domain, new: NewMailbox) -> Mailbox:
    """The row of one account, each value checked as the services check it (ValidationError)."""
    local = normalize_local_part(new.local_part)
    if not HASH_RE.match(new.password_hash or ""):
        raise ValidationError(_("This password hash cannot be used by the mail server."), code="hash")
    if new.routing not in Routing.values:
        raise ValidationError(_("Choose a routing."), code="invalid")
    real_name = clean_text(new.real_name, max_length=200, single_line=True)
    subject = clean_text(new.vacation_subject, max_length=200, single_line=True)
    message = clean_text(new.vacation_message, max_length=4000)
    if new.vacation_enabled and not message:
        raise ValidationError(_("Enter the vacation message."), code="required")
    if not 1 <= new.vacation_days <= 365:
        raise ValidationError(_("Between 1 and 365 days."), code="days")
    forwarding = new.routing == Routing.FORWARD
    return Mailbox(
        domain=domain, local_part=local, password_hash=new.password_hash, real_name=real_name,
        search_name=folded(f"{local} {real_name}"), quota_mb=new.quota_mb or 0, is_admin=new.is_admin,
        allow_pop3=new.allow_pop3, allow_imap=new.allow_imap, allow_smtp=new.allow_smtp,
        routing=Routing.STANDARD if forwarding else new.routing,  # set once the destinations pass (below)
        keep_copy=False, vacation_enabled=new.vacation_enabled, vacation_subject=subject,
        vacation_message=message, vacation_days=new.vacation_days,
    )


def _taken(domain: Domain, names: list[str]) -> dict[str, str]:
    """The names among `names` something of the domain holds (`services.check_name_free`'s
    holders, and a home the host may still use: `rename.home_checks`), with the refusal's
    message; a few queries whatever the count."""
    found: dict[str, str] = {}
    chunks = [names[start:start + BATCH] for start in range(0, len(names), BATCH)]  # bounded IN (...) lists
    for model, holder in ((Mailbox, "mailbox"), (Forward, "forward"), (Robot, "robot")):
        for chunk in chunks:
            for local in model.objects.filter(domain=domain, local_part__in=chunk).values_list("local_part",
                                                                                             flat=True):
                found.setdefault(local, _message(services.name_taken(domain, local, holder)))
    lists = set(domain.lists.values_list("name", flat=True))
    for local in names:
        if local in lists:
            found.setdefault(local, _message(services.name_taken(domain, local, "list")))
        elif list_bases(local) & lists:
            found.setdefault(local, _message(services.name_taken(domain, local, "list_address")))
    # A home the host may still use for another's mail (`rename.home_checks`), refused as a create is.
    renaming = set(rename.pending_renames(domain).values_list("renamed_from", flat=True))
    pending: set[str] = set()
    for chunk in chunks:
        pending.update(RemovedName.objects.filter(domain=domain, name__in=chunk).values_list("name", flat=True))
    for local in names:
        if local in renaming or local in pending:
            try:
                rename.refuse_busy_home(local, renaming=local in renaming, pending=local in pending)
            except ValidationError as error:
                found.setdefault(local, _message(error))
    return found


def _check_room(pack: Pack, rows: list[Mailbox]) -> None:
    """Refuse the whole call when the pack (its plan, its reseller's pool, its total quota) has no
    room for `rows`. Under the pack's lock."""
    plan = pack.plan
    counts = [(plan.max_mailboxes, Mailbox.objects.filter(domain__pack=pack),
               _("Maximum number of POP accounts reached."))]
    reseller = pack.customer.reseller
    if reseller is not None:
        counts.append((reseller.max_mailboxes, Mailbox.objects.filter(domain__pack__customer__reseller=reseller),
                       _("The reseller has reached its maximum number of POP accounts.")))
    for limit, existing, message in counts:
        if limit != UNLIMITED and existing.count() + len(rows) > limit:
            raise ValidationError(message, code="limit")
    if plan.total_quota_mb:
        if any(row.quota_mb == 0 for row in rows):
            raise ValidationError(_("This pack does not allow unlimited quotas."), code="quota")
        allotted = Mailbox.objects.filter(domain__pack=pack).aggregate(s=Sum("quota_mb"))["s"] or 0
        if allotted + sum(row.quota_mb for row in rows) > plan.total_quota_mb:
            raise ValidationError(
                _("The pack's total quota would be exceeded (%(free)d MB left).")
                % {"free": max(plan.total_quota_mb - allotted, 0)}, code="quota")


def mailboxes_import(*, domain: Domain, mailboxes: list[NewMailbox], acting_user: Seat | None,
                     source: str = "", progress: Callable[[int], None] | None = None) -> BulkResult:
    """Create the POP accounts `mailboxes` in `domain` (see the module): one transaction, one
    revision, one audit row (`Action.MAILBOX_IMPORT`, `source` in its detail). Rows whose name is
    taken or whose values are refused are left out, with why; rows beyond the pack's room refuse
    the call (ValidationError, nothing written). `progress(created so far)` after each batch."""
    result = BulkResult()
    rows: list[tuple[Mailbox, NewMailbox]] = []
    seen: set[str] = set()
    for new in mailboxes:  # checked before the transaction: no lock held meanwhile
        try:
            row = _row(domain, new)
        except ValidationError as error:
            result.refused[new.local_part] = _message(error)
            continue
        if row.local_part in seen:
            result.refused[new.local_part] = _("Name already used.")
            continue
        seen.add(row.local_part)
        rows.append((row, new))
    with transaction.atomic():
        pack = lock_pack(domain.pack_id)
        services.refuse_alias_domain(domain)  # as every create of an account (check_name_free)
        taken = _taken(domain, [row.local_part for row, _new in rows])
        for local, why in taken.items():
            result.refused[local] = why
        rows = [(row, new) for row, new in rows if row.local_part not in taken]
        default_quota = pack.plan.default_quota_mb or 0
        for row, new in rows:
            if new.quota_mb is None:
                row.quota_mb = default_quota
        too_large = {row.local_part for row, _new in rows if not 0 <= row.quota_mb <= MAX_QUOTA_MB}
        for local in too_large:
            result.refused[local] = _("The quota is too large (at most %(max)d MB).") % {"max": MAX_QUOTA_MB}
        rows = [(row, new) for row, new in rows if row.local_part not in too_large]
        _check_room(pack, [row for row, _new in rows])
        if not rows:
            return result
        revision = domain_changed(domain)
        for start in range(0, len(rows), BATCH):
            batch = [row for row, _new in rows[start:start + BATCH]]
            for row in batch:
                row.revision = revision
            Mailbox.objects.bulk_create(batch, batch_size=BATCH)
            result.created += [row.local_part for row in batch]
            if progress is not None:
                progress(len(result.created))
        for row, new in rows:
            if new.routing == Routing.FORWARD:
                _set_forward(domain, row, new, result)
        audit.record(acting_user, Action.MAILBOX_IMPORT, domain, source=source, lines=len(mailboxes),
                     created=len(result.created), refused=len(result.refused))
    return result


def _set_forward(domain: Domain, row: Mailbox, new: NewMailbox, result: BulkResult) -> None:
    """A created account forwards as its source did when its destinations pass the panel's rules
    (`check_destinations`: no chain, no loop), else stays a plain account (reported)."""
    try:
        with transaction.atomic():
            targets = services.check_destinations(domain, new.forward_to, local=row.local_part,
                                                  keeps_copy=new.keep_copy)
            Mailbox.objects.filter(domain=domain, local_part=row.local_part).update(
                routing=Routing.FORWARD, forward_to=targets, keep_copy=new.keep_copy)
    except ValidationError as error:
        result.routing_refused[row.local_part] = _message(error)


@dataclass
class ForwardsResult:
    created: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # local part → why


def forwards_import(*, domain: Domain, forwards: list[tuple[str, list[str]]], acting_user: Seat | None,
                    source: str = "") -> ForwardsResult:
    """Create the forwards `forwards` ((local part, destinations) pairs) in `domain`, each checked
    as `services.forward_create` checks it (its name free, its destinations final: no chain, no
    loop), in one transaction: the pack locked once, its room for all of them checked once (beyond
    it: ValidationError, nothing written), one revision, one audit row (`Action.FORWARD_IMPORT`,
    `source` in its detail). A refused forward is left out, with why. No destination: the name
    accepts mail and drops it (`services.forward_create`'s `discard`)."""
    result = ForwardsResult()
    with transaction.atomic():
        pack = lock_pack(domain.pack_id)
        services.refuse_alias_domain(domain)
        limit = pack.plan.max_forwards
        if limit != UNLIMITED and Forward.objects.filter(domain__pack=pack).count() + len(forwards) > limit:
            raise ValidationError(_("Maximum number of forwards reached."), code="limit")
        ids: list[int] = []
        for name, destinations in forwards:
            try:
                with transaction.atomic():
                    local = normalize_local_part(name)
                    services.check_name_free(domain, local)
                    targets = services.check_destinations(domain, destinations, local=local) if destinations else []
                    ids.append(Forward.objects.create(domain=domain, local_part=local, destinations=targets).pk)
            except ValidationError as error:
                result.refused[name] = _message(error)
                continue
            except IntegrityError:
                result.refused[name] = _("Name already used.")
                continue
            result.created.append(local)
        if ids:
            Forward.objects.filter(pk__in=ids).update(revision=domain_changed(domain))
            audit.record(acting_user, Action.FORWARD_IMPORT, domain, source=source, lines=len(forwards),
                         created=len(result.created), refused=len(result.refused))
    return result
