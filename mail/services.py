"""State changes of mailboxes: one function per act, each in one transaction.

The order of the checks is QmailAdmin's: limit, name syntax, name free, passwords, strength.
"""

from __future__ import annotations

import operator
import os
import threading
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import reduce
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, Manager, QuerySet, Sum
from django.utils.translation import gettext as _

from hosting import audit
from hosting.audit import Action
from hosting.models import Domain, Pack
from hosting.roles import Seat
from hosting.services import has_room, lock_pack
from hosting.validators import domain_to_unicode, normalize_domain, parse_quota_mb
from mail import rename, routing_rules
from mail.models import (
    HOSTMASTER,
    POSTMASTER,
    ROBOT_REPLY_HOURS_DEFAULT,
    ROBOT_REPLY_HOURS_MAX,
    ROBOT_REPLY_HOURS_MIN,
    SPAM_MAX_SENDERS,
    SPAM_SCORE_MAX,
    SPAM_SCORE_MIN,
    CatchAll,
    CatchAllMode,
    Forward,
    Mailbox,
    Robot,
    Routing,
    SpamFilter,
    SpamMode,
    folded,
    hostmaster_required,
)
from mail.validators import check_new_password, clean_text, normalize_address, normalize_local_part
from mailhost.passwords import hash_password
from mailhost.render import list_bases
from provisioning.models import DomainMove
from provisioning.revisions import domain_changed


def check_mailbox_limits(pack: Pack) -> None:
    """Raise when the pack, or its reseller's pool, has no room for one more mailbox.

    Call inside a transaction after `lock_pack`."""
    if not has_room(pack.plan.max_mailboxes, Mailbox.objects.filter(domain__pack=pack)):
        raise ValidationError(_("Maximum number of POP accounts reached."), code="limit")
    reseller = pack.customer.reseller
    if reseller is not None:
        if not has_room(reseller.max_mailboxes, Mailbox.objects.filter(domain__pack__customer__reseller=reseller)):
            raise ValidationError(
                _("The reseller has reached its maximum number of POP accounts."), code="limit"
            )


def check_forward_limits(pack: Pack) -> None:
    """Raise when the pack has no room for one more forward. Call inside a transaction after
    `lock_pack`."""
    if not has_room(pack.plan.max_forwards, Forward.objects.filter(domain__pack=pack)):
        raise ValidationError(_("Maximum number of forwards reached."), code="limit")


def _holders(domain: Domain, local_part: str) -> dict[str, Exists]:
    """What of the domain may hold the name: a mailbox, forward, robot or mailing list, or a
    list's sub-address (`list+anything`: mlmmj's commands; `list-subscribe`...: the ezmlm-style
    ones, `render.list_bases`; the lists app is above mail: its rows are read through the domain's
    relation `lists`)."""
    return {
        "mailbox": Exists(Mailbox.objects.filter(domain=domain, local_part=local_part)),
        "forward": Exists(Forward.objects.filter(domain=domain, local_part=local_part)),
        "robot": Exists(Robot.objects.filter(domain=domain, local_part=local_part)),
        "list": Exists(domain.lists.filter(name=local_part)),
        "list_address": Exists(domain.lists.filter(name__in=list_bases(local_part))),
    }


def address_taken(domain: Domain, local_part: str) -> bool:
    """Whether something of the domain holds the name (`_holders`). One query."""
    taken = reduce(operator.or_, _holders(domain, local_part).values())
    return Domain.objects.filter(pk=domain.pk).filter(taken).exists()


def name_taken(domain: Domain, local: str, holder: str) -> ValidationError:
    """The refusal of a name that `holder` (a key of `_holders`) holds in the same domain, saying
    what holds it: only the domain's own objects are ever named (another customer's addresses are
    never looked at, see `routing_rules`)."""
    address = f"{local}@{domain.unicode_name}"
    if holder == "list_address":
        base = domain.lists.filter(name__in=list_bases(local)).values_list("name", flat=True).first()
        return ValidationError(
            _("Name already used. %(address)s is an address of the mailing list %(list)s.")
            % {"address": address, "list": f"{base}@{domain.unicode_name}"}, code="unique")
    message = {
        "mailbox": _("Name already used. %(address)s is already a POP account."),
        "forward": _("Name already used. %(address)s is already a forward."),
        "robot": _("Name already used. %(address)s is already a mail robot."),
        "list": _("Name already used. %(address)s is already a mailing list."),
    }[holder]
    return ValidationError(message % {"address": address}, code="unique")


def refuse_alias_domain(domain: Domain) -> None:
    """An alias domain holds nothing of its own (its addresses are its target's): refuse to
    create anything in it."""
    if domain.alias_of_id is not None:
        target = Domain.objects.filter(pk=domain.alias_of_id).values_list("name", flat=True).first() or ""
        raise ValidationError(
            _("%(name)s is an alias domain of %(target)s: every address of %(target)s is also valid at %(name)s. "
              "Create it in %(target)s.") % {"name": domain.unicode_name, "target": domain_to_unicode(target)},
            code="alias_domain")


def check_name_free(domain: Domain, local: str, *, home: bool = False) -> None:
    """Refuse a name something of the domain holds, saying what (`name_taken`), and with `home` (it
    gets a home on the host: a mailbox, a robot) one the host may still use for another's mail
    (`rename.home_checks`). One query. Nothing is created in an alias domain (every create of a
    mailbox, forward, robot or list checks its name here)."""
    refuse_alias_domain(domain)
    checks = {**_holders(domain, local), **(rename.home_checks(domain, local) if home else {})}
    found = Domain.objects.filter(pk=domain.pk).annotate(**checks).values(*checks).get()
    holder = next((name for name in _holders(domain, local) if found[name]), None)
    if holder is not None:
        raise name_taken(domain, local, holder)
    if home:
        rename.refuse_busy_home(local, renaming=found["renaming"], pending=found["pending"])


def claim_name(domain: Domain, name: str, *, limit: str, rows: Manager[Any] | QuerySet[Any], full: str,
               home: bool = False) -> tuple[Pack, str]:
    """Lock the pack, check the plan's `limit` against the pack's `rows`, then the name's syntax
    and that it is free in the domain (QmailAdmin's order; `home`: see `check_name_free`).
    Returns the locked pack and the name."""
    pack = lock_pack(domain.pack_id)
    if not has_room(getattr(pack.plan, limit), rows.filter(domain__pack=pack)):
        raise ValidationError(full, code="limit")
    local = normalize_local_part(name)
    check_name_free(domain, local, home=home)
    return pack, local


def resolve_quota(pack: Pack, quota_mb: int | str | None, *, replacing: Mailbox | None = None) -> int:
    """The quota a mailbox gets: whole MB up to MAX_QUOTA_MB (`parse_quota_mb`; blank: the plan's
    default, checked the same way), within the pack's total quota; `replacing`: the mailbox whose
    current quota is being changed (not counted twice)."""
    plan = pack.plan
    quota = parse_quota_mb(quota_mb)
    if quota is None:
        quota = parse_quota_mb(plan.default_quota_mb) or 0  # an int field: never blank
    if plan.total_quota_mb:
        if quota == 0:
            raise ValidationError(_("This pack does not allow unlimited quotas."), code="quota")
        others = Mailbox.objects.filter(domain__pack=pack)
        if replacing is not None:
            others = others.exclude(pk=replacing.pk)
        allotted = others.aggregate(s=Sum("quota_mb"))["s"] or 0
        if allotted + quota > plan.total_quota_mb:
            raise ValidationError(
                _("The pack's total quota would be exceeded (%(free)d MB left).")
                % {"free": max(plan.total_quota_mb - allotted, 0)},
                code="quota",
            )
    return quota


@dataclass(frozen=True)
class PreparedPassword:
    """A new password checked (`check_new_password`) and hashed before any transaction
    (`prepare_password`): hashing (argon2id, about 0.2 s) never runs under a lock. A refused
    password keeps its refusal, raised by the service at its place in QmailAdmin's order."""

    hash: str = field(default="", repr=False)
    error: ValidationError | None = None

    def checked_hash(self) -> str:
        if self.error is not None:
            raise self.error
        return self.hash


# Hashes this process makes at once: argon2id takes a core and 64 MiB for about 0.2 s, so more
# at once than there are cores only makes each finish later (50 parallel creates on 2 cores all
# ended together, after the time of 25 hashes) and adds 64 MiB each. The wait holds no lock: it
# comes before the transaction.
HASHING = threading.BoundedSemaphore(os.cpu_count() or 1)


def prepare_password(password: str | PreparedPassword) -> PreparedPassword:
    """Check and hash a new password; call it before the transaction (a view before
    `apply_changes`, a service before its `atomic`). A weak password is not hashed."""
    if isinstance(password, PreparedPassword):
        return password
    try:
        check_new_password(password)
    except ValidationError as error:
        return PreparedPassword(error=error)
    with HASHING:
        return PreparedPassword(hash=hash_password(password))


def mailbox_create(
    *,
    domain: Domain,
    local_part: str,
    password: str | PreparedPassword,
    real_name: str = "",
    quota_mb: int | str | None = None,
    is_admin: bool = False,
    acting_user: Seat | None,
) -> Mailbox:
    """Create a POP account. The password is hashed first (`prepare_password`), then the pack
    is locked and the limits, the name and the password's strength checked in one transaction:
    creates in one pack wait for each other's checks, never for each other's hashing."""
    prepared = prepare_password(password)
    with transaction.atomic():
        pack = lock_pack(domain.pack_id)
        check_mailbox_limits(pack)
        local = normalize_local_part(local_part)
        check_name_free(domain, local, home=True)
        password_hash = prepared.checked_hash()
        quota = resolve_quota(pack, quota_mb)
        revision = domain_changed(domain)
        try:
            with transaction.atomic():
                mailbox = Mailbox.objects.create(
                    domain=domain,
                    local_part=local,
                    password_hash=password_hash,
                    real_name=real_name.strip(),
                    search_name=folded(f"{local} {real_name.strip()}"),
                    quota_mb=quota,
                    is_admin=is_admin,
                    revision=revision,
                )
        except IntegrityError:
            raise ValidationError(_("Name already used."), code="unique") from None
        audit.record(acting_user, Action.MAILBOX_CREATE, mailbox)
    return mailbox


def mailbox_set_password(*, mailbox: Mailbox, password: str | PreparedPassword, acting_user: Seat | None) -> None:
    """Check the new password (`check_new_password`) and hash it before the transaction, then
    store only its hash."""
    password_hash = prepare_password(password).checked_hash()
    with transaction.atomic():
        revision = domain_changed(mailbox.domain)
        Mailbox.objects.filter(pk=mailbox.pk).update(password_hash=password_hash, revision=revision)
        mailbox.refresh_from_db(fields=["password_hash", "revision"])
        audit.record(acting_user, Action.MAILBOX_SET_PASSWORD, mailbox)


MAX_DESTINATIONS = 10


def check_destinations(domain: Domain, values: list[str] | tuple[str, ...], *, local: str,
                       keeps_copy: bool = False) -> list[str]:
    """Validate the destinations local@domain is to forward to: `name` alone means a mailbox of
    this domain, which must exist; no duplicates; no chain nor loop (`routing_rules`)."""
    result: list[str] = []
    for raw in values:
        raw = (raw or "").strip()
        if not raw:
            continue
        try:  # a refusal names the address typed, never "the account name" (code "destination")
            address = f"{normalize_local_part(raw)}@{domain.name}" if "@" not in raw else normalize_address(raw)
        except ValidationError:
            raise ValidationError(
                _("%(address)s is not a valid e-mail address: type name@domain, or the name of a POP account "
                  "of this domain.") % {"address": raw}, code="destination") from None
        if "@" not in raw and not Mailbox.objects.filter(domain=domain, local_part=address.partition("@")[0]).exists():
            raise ValidationError(
                _("%(name)s is not a POP account of this domain.") % {"name": raw}, code="destination"
            )
        if address not in result:
            result.append(address)
    if not result:
        raise ValidationError(_("Enter at least one destination."), code="required")
    if len(result) > MAX_DESTINATIONS:
        raise ValidationError(
            _("At most %(max)d destinations.") % {"max": MAX_DESTINATIONS}, code="max_destinations"
        )
    routing_rules.check_redirect(domain=domain, local=local, destinations=result, keeps_copy=keeps_copy)
    return result


def touch(obj: Any, revision: int, *fields: str) -> None:
    """Write the changed fields and the revision of `obj`: one UPDATE of its row."""
    obj.revision = revision
    type(obj).objects.filter(pk=obj.pk).update(revision=revision, **{name: getattr(obj, name) for name in fields})


def set_fields(obj: Any, values: dict[str, Any]) -> dict[str, list[Any]]:
    """Set `values` on `obj`; what changed, `{"field": [before, after]}` (the audit row's
    `changes`; its keys are the fields to write). Empty: a no-op call, which returns before the
    revision, the push and the audit row. "before" is what `obj` held (the views load it afresh
    for each request): no query."""
    changed = {name: [getattr(obj, name), value] for name, value in values.items() if getattr(obj, name) != value}
    for name, (_before, after) in changed.items():
        setattr(obj, name, after)
    return changed


@transaction.atomic
def mailbox_set_routing(
    *, mailbox: Mailbox, routing: str, forward_to: list[str] | tuple[str, ...] = (), keep_copy: bool = False,
    acting_user: Seat | None,
) -> None:
    if routing not in Routing.values:
        raise ValidationError(_("Choose a routing."), code="invalid")
    destinations = (
        check_destinations(mailbox.domain, forward_to, local=mailbox.local_part, keeps_copy=bool(keep_copy))
        if routing == Routing.FORWARD else []
    )
    changed = set_fields(mailbox, {
        "routing": routing, "forward_to": destinations, "keep_copy": bool(keep_copy) and routing == Routing.FORWARD,
    })
    if not changed:
        return
    touch(mailbox, domain_changed(mailbox.domain), *changed)
    audit.record(acting_user, Action.MAILBOX_SET_ROUTING, mailbox, routing=routing, changes=changed)


def _whole_days(value: Any) -> int:
    """The vacation's reply period: a whole number of days from 1 to 365."""
    text = str(value).strip()
    if isinstance(value, bool) or not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 365:
        raise ValidationError(_("Between 1 and 365 days."), code="days")
    return int(text)


@transaction.atomic
def mailbox_set_vacation(
    *, mailbox: Mailbox, enabled: bool, subject: str = "", message: str = "", start: Any = None,
    end: Any = None, days: int = 1, acting_user: Seat | None,
) -> None:
    subject = clean_text(subject, max_length=200, single_line=True)
    message = clean_text(message, max_length=4000)
    if enabled and not message:
        raise ValidationError(_("Enter the vacation message."), code="required")
    if start and end and start > end:
        raise ValidationError(_("The vacation cannot end before it starts."), code="dates")
    days = _whole_days(days)
    changed = set_fields(mailbox, {
        "vacation_enabled": bool(enabled), "vacation_subject": subject, "vacation_message": message,
        "vacation_start": start, "vacation_end": end, "vacation_days": days,
    })
    if not changed:
        return
    touch(mailbox, domain_changed(mailbox.domain), *changed)
    audit.record(acting_user, Action.MAILBOX_SET_VACATION, mailbox, enabled=bool(enabled), changes=changed)


@transaction.atomic
def mailbox_set_access(
    *, mailbox: Mailbox, enabled: bool | None = None, allow_pop3: bool | None = None,
    allow_imap: bool | None = None, allow_smtp: bool | None = None, acting_user: Seat | None,
) -> None:
    asked = {"enabled": enabled, "allow_pop3": allow_pop3, "allow_imap": allow_imap, "allow_smtp": allow_smtp}
    changed = set_fields(mailbox, {k: bool(v) for k, v in asked.items() if v is not None})
    if not changed:
        return
    touch(mailbox, domain_changed(mailbox.domain), *changed)
    audit.record(acting_user, Action.MAILBOX_SET_ACCESS, mailbox, changes=changed,
                 **{name: after for name, (_before, after) in changed.items()})


@transaction.atomic
def mailbox_set_real_name(*, mailbox: Mailbox, real_name: str, acting_user: Seat | None) -> None:
    real_name = clean_text(real_name, max_length=200, single_line=True)
    if real_name == mailbox.real_name:
        return
    changed = {"real_name": [mailbox.real_name, real_name]}
    mailbox.real_name = real_name
    mailbox.search_name = mailbox.searched_as()
    touch(mailbox, domain_changed(mailbox.domain), "real_name", "search_name")
    audit.record(acting_user, Action.MAILBOX_SET_REAL_NAME, mailbox, changes=changed)


@transaction.atomic
def mailbox_set_admin(*, mailbox: Mailbox, is_admin: bool, acting_user: Seat | None) -> None:
    """Make a mailbox an admin of its domain, or a plain account again (postmaster always is one)."""
    changed = set_fields(mailbox, {"is_admin": bool(is_admin)})
    if not changed:
        return
    touch(mailbox, domain_changed(mailbox.domain), *changed)
    audit.record(acting_user, Action.MAILBOX_SET_ADMIN, mailbox, is_admin=mailbox.is_admin, changes=changed)


@transaction.atomic
def mailbox_set_quota(*, mailbox: Mailbox, quota_mb: int | str | None, acting_user: Seat | None) -> None:
    pack = lock_pack(mailbox.domain.pack_id)
    quota = resolve_quota(pack, quota_mb, replacing=mailbox)
    changed = set_fields(mailbox, {"quota_mb": quota})
    if not changed:
        return
    touch(mailbox, domain_changed(mailbox.domain), *changed)
    audit.record(acting_user, Action.MAILBOX_SET_QUOTA, mailbox, quota_mb=quota, changes=changed)


def _check_hostmaster(mailbox: Mailbox, confirmed: bool, message: str) -> None:
    """A .fr domain's hostmaster goes (deleted or renamed) only when the caller confirms it."""
    if mailbox.local_part == HOSTMASTER and hostmaster_required(mailbox.domain.name) and not confirmed:
        raise ValidationError(message % {"domain": mailbox.domain.unicode_name}, code="hostmaster")


@transaction.atomic
def mailbox_rename(
    *, mailbox: Mailbox, new_local_part: str, confirm_hostmaster: bool = False, acting_user: Seat | None
) -> Mailbox:
    """Give a mailbox another name in its domain; its mail follows it: the host moves the old
    home to the new name (`mailhost.apply`). The new name is checked as a new mailbox's (syntax,
    free: mailbox, forward, robot, list, a list's sub-address); `postmaster` is neither the old
    nor the new name; the redirects of the domain that reached the old address reach the new
    one (`mail.rename.repoint`), a redirect of another domain is refused
    (`routing_rules.check_rename`). The old name leaves a tombstone, and the mailbox keeps it
    (`renamed_from`) until its host confirms the rename. Returns the renamed mailbox."""
    domain = mailbox.domain
    lock_pack(domain.pack_id)
    current = Mailbox.objects.select_for_update().select_related("domain").get(pk=mailbox.pk)
    old = current.local_part
    if old == POSTMASTER:
        raise ValidationError(_("The postmaster account cannot be renamed."), code="postmaster")
    new = normalize_local_part(new_local_part)
    if new == old:
        return current
    if new == POSTMASTER:
        raise ValidationError(_("No account can be renamed postmaster: it is the domain's own account."),
                              code="postmaster")
    _check_hostmaster(current, confirm_hostmaster, _(
        "hostmaster@%(domain)s is required on a .fr domain: the .fr registry checks hostmaster@ before "
        "a DNS change. Confirm to rename it anyway."))
    if current.renamed_revision:
        raise ValidationError(_("The previous rename of this account is still being applied on the mail "
                                "server. Try again in a moment."), code="renaming")
    if DomainMove.objects.open().filter(domain=domain).exists():
        raise ValidationError(_("This domain is moving to another mail host: rename its accounts once the "
                                "move is done."), code="moving")
    check_name_free(domain, new, home=True)
    if current.routing == Routing.FORWARD:
        routing_rules.check_redirect(domain=domain, local=new, destinations=current.forward_to,
                                     keeps_copy=current.keep_copy)
    routing_rules.check_rename(domain=domain, local=old)
    revision = domain_changed(domain, removed=old)
    fields = {"local_part": new, "renamed_from": old, "renamed_revision": revision, "revision": revision,
              "search_name": folded(f"{new} {current.real_name}")}
    try:
        with transaction.atomic():
            Mailbox.objects.filter(pk=current.pk).update(**fields)
    except IntegrityError:
        raise ValidationError(_("Name already used."), code="unique") from None
    for target in (current, mailbox):
        for name, value in fields.items():
            setattr(target, name, value)
    updated = rename.repoint(domain, old, new, revision)
    for _receiver, changed in rename.mailbox_renamed.send(sender=Mailbox, domain=domain, old=old, new=new,
                                                          revision=revision):
        updated += changed or []  # each receiver's list (django-stubs says str | None)
    audit.record(acting_user, Action.MAILBOX_RENAME, current, changes={"local_part": [old, new]},
                 redirects_updated=updated)
    return current


@transaction.atomic
def mailbox_delete(
    *, mailbox: Mailbox, redirect_to: str = "", confirm_hostmaster: bool = False, acting_user: Seat | None
) -> None:
    """Delete a mailbox (its maildir goes on the host); optionally keep its address as a forward.
    A .fr domain's hostmaster goes only with `confirm_hostmaster`."""
    if mailbox.local_part == POSTMASTER:
        raise ValidationError(_("You cannot delete the postmaster account."), code="postmaster")
    if getattr(acting_user, "pk", None) == mailbox.pk and isinstance(acting_user, Mailbox):
        raise ValidationError(_("You cannot delete the account you are logged in with."), code="self")
    _check_hostmaster(mailbox, confirm_hostmaster, _(
        "hostmaster@%(domain)s is required on a .fr domain: the .fr registry checks hostmaster@ before "
        "a DNS change. Confirm to delete it anyway."))
    domain, local = mailbox.domain, mailbox.local_part
    pack = lock_pack(domain.pack_id)
    if redirect_to:
        destinations = check_destinations(domain, [redirect_to], local=local)
    else:
        destinations = []
        routing_rules.check_removal(domain=domain, local=local)
    if destinations:
        check_forward_limits(pack)
    audit.record(acting_user, Action.MAILBOX_DELETE, mailbox, redirect_to=redirect_to)
    mailbox.delete()
    revision = domain_changed(domain, removed=local)
    if destinations:
        forward = Forward.objects.create(domain=domain, local_part=local, destinations=destinations, revision=revision)
        audit.record(acting_user, Action.FORWARD_CREATE, forward)


@transaction.atomic
def forward_create(*, domain: Domain, local_part: str, destinations: list[str], acting_user: Seat | None,
                   discard: bool = False) -> Forward:
    """A forward; with `discard`, a name that accepts mail and drops it (no destination: a vpopmail
    `.qmail-NAME` of comments only, which the import brings in)."""
    _pack, local = claim_name(domain, local_part, limit="max_forwards", rows=Forward.objects,
                              full=_("Maximum number of forwards reached."))
    if discard and any((value or "").strip() for value in destinations):
        raise ValidationError(_("A forward that deletes its mail has no destination."), code="destination")
    targets = [] if discard else check_destinations(domain, destinations, local=local)
    forward = Forward.objects.create(
        domain=domain, local_part=local, destinations=targets, revision=domain_changed(domain)
    )
    audit.record(acting_user, Action.FORWARD_CREATE, forward)
    return forward


@transaction.atomic
def forward_set_destinations(*, forward: Forward, destinations: list[str], acting_user: Seat | None) -> None:
    targets = check_destinations(forward.domain, destinations, local=forward.local_part)
    changed = set_fields(forward, {"destinations": targets})
    if not changed:
        return
    touch(forward, domain_changed(forward.domain), *changed)
    audit.record(acting_user, Action.FORWARD_CHANGE, forward, changes=changed)


def delete_address(row: Any, *, local: str, action: Action, acting_user: Seat | None) -> None:
    """Delete a row that holds an address of its domain (a forward, a robot, a list): unless mail
    still goes to `local` (`routing_rules.check_removal`), write the audit row, delete, bump the
    domain's revision. Call inside the caller's transaction."""
    domain = row.domain
    routing_rules.check_removal(domain=domain, local=local)
    audit.record(acting_user, action, row)
    row.delete()
    domain_changed(domain, removed=local)


@transaction.atomic
def forward_delete(*, forward: Forward, acting_user: Seat | None) -> None:
    delete_address(forward, local=forward.local_part, action=Action.FORWARD_DELETE, acting_user=acting_user)


def _reply_hours(value: Any) -> int:
    """A robot's reply period: a whole number of hours from ROBOT_REPLY_HOURS_MIN to _MAX."""
    text = str(value).strip()
    if (isinstance(value, bool) or not text.isascii() or not text.isdigit()
            or not ROBOT_REPLY_HOURS_MIN <= int(text) <= ROBOT_REPLY_HOURS_MAX):
        raise ValidationError(
            _("Between %(min)d and %(max)d hours."), code="reply_hours",
            params={"min": ROBOT_REPLY_HOURS_MIN, "max": ROBOT_REPLY_HOURS_MAX},
        )
    return int(text)


def _robot_fields(
    domain: Domain, local: str, *, subject: str, message: str, copy_to: str, reply_hours: Any
) -> dict[str, Any]:
    """The checked values of a robot at local@domain (create and update): subject on one line,
    a message, the copy address (a redirect: `routing_rules`), the reply period."""
    subject = clean_text(subject, max_length=200, single_line=True)
    message = clean_text(message, max_length=4000)
    if not message:
        raise ValidationError(_("Enter the message the robot sends."), code="required")
    hours = _reply_hours(reply_hours)
    try:  # a refusal names the copy address (code "destination")
        copy_address = normalize_address(copy_to) if (copy_to or "").strip() else ""
    except ValidationError:
        raise ValidationError(_("%(address)s is not a valid e-mail address.") % {"address": copy_to.strip()},
                              code="destination") from None
    if copy_address:
        routing_rules.check_redirect(domain=domain, local=local, destinations=[copy_address])
    return {"subject": subject, "message": message, "copy_to": copy_address, "reply_hours": hours}


@transaction.atomic
def robot_create(
    *, domain: Domain, local_part: str, subject: str, message: str, copy_to: str = "",
    reply_hours: int | str = ROBOT_REPLY_HOURS_DEFAULT, acting_user: Seat | None
) -> Robot:
    _pack, local = claim_name(domain, local_part, limit="max_robots", rows=Robot.objects,
                              full=_("Maximum number of mail robots reached."), home=True)
    fields = _robot_fields(domain, local, subject=subject, message=message, copy_to=copy_to, reply_hours=reply_hours)
    robot = Robot.objects.create(domain=domain, local_part=local, revision=domain_changed(domain), **fields)
    audit.record(acting_user, Action.ROBOT_CREATE, robot)
    return robot


@transaction.atomic
def robot_update(
    *, robot: Robot, subject: str, message: str, copy_to: str, reply_hours: int | str, acting_user: Seat | None
) -> None:
    """Change what a robot answers, where its copy goes and how often it answers one sender;
    the audit row holds each changed field as [before, after]."""
    fields = _robot_fields(robot.domain, robot.local_part, subject=subject, message=message, copy_to=copy_to,
                           reply_hours=reply_hours)
    changed = set_fields(robot, fields)
    if not changed:
        return
    touch(robot, domain_changed(robot.domain), *changed)
    audit.record(acting_user, Action.ROBOT_CHANGE, robot, changes=changed)


@transaction.atomic
def robot_delete(*, robot: Robot, acting_user: Seat | None) -> None:
    delete_address(robot, local=robot.local_part, action=Action.ROBOT_DELETE, acting_user=acting_user)


@transaction.atomic
def catchall_set(*, domain: Domain, mode: str, target: str = "", acting_user: Seat | None) -> CatchAll:
    """Set what becomes of mail to unknown addresses of the domain."""
    refuse_alias_domain(domain)
    target = (target or "").strip()
    if mode == CatchAllMode.MAILBOX:
        local, _at, host = target.partition("@")
        if host and normalize_domain(host) != domain.name:
            raise ValidationError(_("Choose a POP account of this domain."), code="target")
        local = normalize_local_part(local)
        if not Mailbox.objects.filter(domain=domain, local_part=local).exists():
            raise ValidationError(_("Choose a POP account of this domain."), code="target")
        target = local
    elif mode == CatchAllMode.REMOTE:
        target = normalize_address(target)
    elif mode == CatchAllMode.DOMAIN:
        target = normalize_domain(target)
        if target == domain.name:
            raise ValidationError(_("Choose another domain."), code="target")
    elif mode in (CatchAllMode.BOUNCE, CatchAllMode.DELETE):
        target = ""
    else:
        raise ValidationError(_("Choose what becomes of unknown e-mail."), code="invalid")
    routing_rules.check_catchall(domain=domain, mode=mode, target=target)
    current = CatchAll.objects.filter(domain=domain, mode=mode, target=target).first()
    if current is not None:
        return current
    catchall, _created = CatchAll.objects.update_or_create(
        domain=domain, defaults={"mode": mode, "target": target, "revision": domain_changed(domain)}
    )
    audit.record(acting_user, Action.CATCHALL_SET, catchall, mode=mode, catchall_target=target)
    return catchall


def spam_senders(entries: list[str], *, field: str) -> list[str]:
    """Senders as the host takes them: each an address or a domain name (IDNA), lower case, once
    each, sorted, at most SPAM_MAX_SENDERS; ValidationError (code `field`) naming a bad entry."""
    found: set[str] = set()
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        try:
            found.add(normalize_address(entry) if "@" in entry else normalize_domain(entry))
        except ValidationError:
            raise ValidationError(
                _("“%(entry)s” is neither an e-mail address nor a domain name.") % {"entry": entry[:100]},
                code=field) from None
    if len(found) > SPAM_MAX_SENDERS:
        raise ValidationError(_("At most %(count)d senders in a list.") % {"count": SPAM_MAX_SENDERS}, code=field)
    return sorted(found)


@transaction.atomic
def spam_filter_set(*, domain: Domain, mode: str, score: Decimal | str | float, allow: list[str],
                    block: list[str], acting_user: Seat | None) -> SpamFilter:
    """Set what the domain's mail host does with spam to the domain: off, mark the subject, file
    in Junk or refuse, from `score`; `allow`ed senders always delivered, `block`ed ones refused."""
    refuse_alias_domain(domain)
    if mode not in SpamMode.values:
        raise ValidationError(_("Choose what becomes of spam."), code="mode")
    try:
        value = Decimal(str(score)).quantize(Decimal("0.1"))
    except (InvalidOperation, ValueError):
        value = Decimal("NaN")
    if not value.is_finite() or not SPAM_SCORE_MIN <= value <= SPAM_SCORE_MAX:
        raise ValidationError(_("Choose a score from %(low)s to %(high)s.") % {
            "low": SPAM_SCORE_MIN, "high": SPAM_SCORE_MAX}, code="score")
    allowed = spam_senders(allow, field="allow")
    blocked = spam_senders(block, field="block")
    both = sorted(set(allowed) & set(blocked))
    if both:
        raise ValidationError(_("“%(entry)s” cannot be both allowed and blocked.") % {"entry": both[0]}, code="block")
    current = SpamFilter.objects.filter(domain=domain).first()
    if current is not None and (current.mode, current.score, current.allow, current.block) == (
            mode, value, allowed, blocked):
        return current
    spam_filter, _created = SpamFilter.objects.update_or_create(
        domain=domain, defaults={"mode": mode, "score": value, "allow": allowed, "block": blocked,
                                 "revision": domain_changed(domain)})
    audit.record(acting_user, Action.SPAM_FILTER_SET, spam_filter, mode=mode, score=str(value),
                 allow=allowed, block=blocked)
    return spam_filter
