"""The QmailAdmin-style login: a mailbox's address and password open a session for that mailbox.

The mailbox is kept in the session by id plus an HMAC of its password hash, so changing the
password ends every other session of that mailbox.

Throttling: every attempt first takes a slot under its address and under its client IP, in one
transaction that increments both counters and reads them back (`LoginThrottle` rows, atomic on
SQLite and PostgreSQL alike); past either limit the attempt is refused without verifying the
password, so parallel requests cannot all slip in before the count. A success gives its slot
back: only failures stay counted, until the window, which starts at the first failure and does
not slide, ends. The per-IP limit is higher, so that one office behind one address is not locked
out by one typo.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from hosting.models import Domain
from hosting.validators import domain_as_typed, normalize_domain
from mail.models import POSTMASTER, LoginThrottle, Mailbox
from mail.validators import normalize_local_part
from mailhost.passwords import hash_password, needs_upgrade, verify_password
from provisioning.revisions import domain_changed

SESSION_ID = "mailbox_id"
SESSION_HASH = "mailbox_auth"
DEFAULT_ACCOUNT = POSTMASTER


def parse_login(account: str, domain: str) -> tuple[str, str] | None:
    """Accept `postmaster` + `example.test`, or `user@example.test` in the account field. The
    domain is read as it is when added (`hosting.validators.domain_as_typed`: `www.example.test`
    is `example.test`), so that what the customer typed to add a domain opens it."""
    account = (account or "").strip() or DEFAULT_ACCOUNT
    if "@" in account:
        account, _sep, domain = account.rpartition("@")
    try:
        return normalize_local_part(account), domain_as_typed(domain)
    except Exception:  # noqa: BLE001 - any invalid input is simply a failed login
        return None


def _typed_domain(account: str, domain: str) -> str | None:
    """The domain's name exactly as typed (no www. dropped), or None: a domain added with its
    www. before the panel dropped it is still reached by its stored name."""
    account = (account or "").strip()
    if "@" in account:
        domain = account.rpartition("@")[2]
    try:
        return normalize_domain(domain)
    except Exception:  # noqa: BLE001 - any invalid input is simply not a domain
        return None


def _through_aliases(names: list[str]) -> list[str]:
    """The names with each alias domain among them read as the domain it is an alias of: x@alias
    logs in as the mailbox x@target, with its password (vpopmail and QmailAdmin did). One query."""
    targets = dict(Domain.objects.filter(name__in=names, alias_of__isnull=False).values_list("name", "alias_of__name"))
    return [targets.get(name, name) for name in names]


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "")


class TooManyAttempts(Exception):
    """Past the limit of login attempts for this address or this client IP: not verified."""


def _attempt_limits(request: HttpRequest, address: str) -> dict[str, int]:
    return {
        f"ip:{_client_ip(request)}": settings.MAILBOX_LOGIN_MAX_FAILURES_PER_IP,
        f"addr:{address}": settings.MAILBOX_LOGIN_MAX_FAILURES,
    }


def _forget_expired(now: datetime, keep: list[str]) -> None:
    """Delete a few other keys' rows whose window has ended (an attempt's own rows are reused),
    one statement per row, so that a delete never holds one row while waiting for another (no
    deadlock with an attempt being counted)."""
    ended = LoginThrottle.objects.filter(window_ends__lte=now).exclude(key__in=keep)
    for pk in ended.values_list("pk", flat=True)[:10]:
        LoginThrottle.objects.filter(pk=pk, window_ends__lte=now).delete()


def take_attempt(limits: dict[str, int]) -> bool:
    """Count one attempt under every key and say whether every count stays within its limit.

    One transaction per attempt: the row is created if missing (a conflict-safe insert), then
    `count = count + 1` (or 1 when the window has ended or nothing is counted, which starts a new
    window) and the new count read back. The update holds the row (PostgreSQL's row lock,
    SQLite's IMMEDIATE write lock) until the commit, so parallel attempts are counted one after
    the other; keys in one order for every attempt, so that two attempts never wait on each other.
    """
    now = timezone.now()
    ends = now + timedelta(seconds=settings.MAILBOX_LOGIN_WINDOW_SECONDS)
    keys = sorted(limits)
    _forget_expired(now, keep=keys)
    restart = Q(window_ends__lte=now) | Q(count=0)
    within = True
    with transaction.atomic():
        LoginThrottle.objects.bulk_create(
            [LoginThrottle(key=key, count=0, window_ends=ends) for key in keys], ignore_conflicts=True
        )
        for key in keys:
            LoginThrottle.objects.filter(key=key).update(
                count=Case(When(restart, then=Value(1)), default=F("count") + 1),
                window_ends=Case(When(restart, then=Value(ends)), default=F("window_ends")),
            )
            count = LoginThrottle.objects.values_list("count", flat=True).get(key=key)
            within = within and count <= limits[key]
    return within


def give_back_attempt(limits: dict[str, int]) -> None:
    """A successful login is not a failure: its slot is given back under every key."""
    with transaction.atomic():
        for key in sorted(limits):
            LoginThrottle.objects.filter(key=key, count__gt=0).update(count=F("count") - 1)


class PanelRequest(HttpRequest):
    """An HttpRequest as MailboxSessionMiddleware leaves it: `mailbox` is the Mailbox logged in
    through the QmailAdmin-style form, or None. A type for the views to read it by, never built."""

    mailbox: Mailbox | None


class MailboxRequest(PanelRequest):
    """The request of a view behind `mailbox_required`: a mailbox is logged in."""

    mailbox: Mailbox


def authenticate_mailbox(request: HttpRequest, account: str, domain: str, password: str) -> Mailbox | None:
    """The enabled mailbox these credentials open, or None when they open none.

    Raises TooManyAttempts, without verifying the password, when the attempt is past the limit
    of its address or of its client IP."""
    parsed = parse_login(account, domain)
    names: list[str] = []
    if parsed is not None:  # an alias domain's name is its target's: one mailbox, one count of attempts
        names = _through_aliases([parsed[1], _typed_domain(account, domain) or parsed[1]])  # the rule's name first
        parsed = (parsed[0], names[0])
    limits = _attempt_limits(request, "@".join(parsed or (account, domain)))
    if not take_attempt(limits):
        raise TooManyAttempts
    mailbox = None
    if parsed is not None:
        local = parsed[0]
        found = {
            m.domain.name: m
            for m in Mailbox.objects.select_related("domain").filter(
                domain__name__in=names, local_part=local, enabled=True)
        }
        mailbox = next((found[name] for name in names if name in found), None)
    if not verify_password(password, mailbox.password_hash if mailbox else None) or mailbox is None:
        return None
    give_back_attempt(limits)
    if needs_upgrade(mailbox.password_hash):
        _upgrade_hash(mailbox, password)
    return mailbox


def check_current_password(request: HttpRequest, mailbox: Mailbox, password: str) -> bool:
    """Whether `password` is the current password of `mailbox` (a user's own pages ask it before
    a change: an open session is not enough). Throttled as a login, in the same slots (its
    address, the client IP) taken before the password is verified: raises TooManyAttempts past
    either limit; a right password gives its slot back."""
    limits = _attempt_limits(request, f"{mailbox.local_part}@{mailbox.domain.name}")
    if not take_attempt(limits):
        raise TooManyAttempts
    if not verify_password(password, mailbox.password_hash):
        return False
    give_back_attempt(limits)
    return True


def _upgrade_hash(mailbox: Mailbox, password: str) -> None:
    """Store a new-scheme hash of a password that just logged in: hashed before the
    transaction, so that no lock is held while it is computed."""
    new_hash = hash_password(password)
    with transaction.atomic():
        revision = domain_changed(mailbox.domain)
        Mailbox.objects.filter(pk=mailbox.pk, password_hash=mailbox.password_hash).update(
            password_hash=new_hash, revision=revision
        )
    mailbox.refresh_from_db(fields=["password_hash"])


def session_hash(mailbox: Mailbox) -> str:
    return salted_hmac("mail.auth.session", mailbox.password_hash).hexdigest()


def login_mailbox(request: PanelRequest, mailbox: Mailbox) -> None:
    """Open a mailbox session, ending any other login in this browser first."""
    request.session.flush()
    request.session[SESSION_ID] = mailbox.pk
    request.session[SESSION_HASH] = session_hash(mailbox)
    request.mailbox = mailbox


def logout_mailbox(request: PanelRequest) -> None:
    request.session.flush()
    request.mailbox = None


def mailbox_from_session(request: HttpRequest) -> Mailbox | None:
    mailbox_id = request.session.get(SESSION_ID)
    if mailbox_id is None:
        return None
    mailbox = (
        Mailbox.objects.select_related("domain", "domain__pack__plan", "domain__sync")
        .filter(pk=mailbox_id, enabled=True)
        .first()
    )
    if mailbox is None or not constant_time_compare(
        request.session.get(SESSION_HASH, ""), session_hash(mailbox)
    ):
        request.session.flush()
        return None
    return mailbox
