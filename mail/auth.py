"""The QmailAdmin-style login: a mailbox's address and password open a session for that mailbox.

The mailbox is kept in the session by id plus an HMAC of its password hash, so changing the
password ends every other session of that mailbox. Failed attempts are counted per address and
per client IP in the cache; past either limit, logins are refused for the rest of the window.
The per-IP limit is higher, so that one office behind one address is not locked out by one typo.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare, salted_hmac

from hosting.validators import normalize_domain
from mail.models import Mailbox
from mail.validators import normalize_local_part
from mailhost.passwords import hash_password, needs_upgrade, verify_password

SESSION_ID = "mailbox_id"
SESSION_HASH = "mailbox_auth"
DEFAULT_ACCOUNT = "postmaster"


def parse_login(account: str, domain: str) -> tuple[str, str] | None:
    """Accept `postmaster` + `example.test`, or `user@example.test` in the account field."""
    account = (account or "").strip() or DEFAULT_ACCOUNT
    if "@" in account:
        account, _sep, domain = account.rpartition("@")
    domain = (domain or "").strip()
    if domain.lower().startswith("www."):
        domain = domain[4:]
    try:
        return normalize_local_part(account), normalize_domain(domain)
    except Exception:  # noqa: BLE001 - any invalid input is simply a failed login
        return None


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "")


def _failure_keys(request: HttpRequest, address: str) -> list[str]:
    return [f"mbx-login-fail:ip:{_client_ip(request)}", f"mbx-login-fail:addr:{address}"]


def is_throttled(request: HttpRequest, account: str, domain: str) -> bool:
    address = "@".join(parse_login(account, domain) or (account, domain))
    ip_key, address_key = _failure_keys(request, address)
    counts = {key: count for key, (count, _ends) in cache.get_many([ip_key, address_key]).items()}
    return (
        counts.get(address_key, 0) >= settings.MAILBOX_LOGIN_MAX_FAILURES
        or counts.get(ip_key, 0) >= settings.MAILBOX_LOGIN_MAX_FAILURES_PER_IP
    )


def _count_failure(request: HttpRequest, address: str) -> None:
    """Count one failure; the window starts at the first failure and does not slide."""
    window = settings.MAILBOX_LOGIN_WINDOW_SECONDS
    now = time.time()
    for key in _failure_keys(request, address):
        count, ends = cache.get(key) or (0, now + window)
        cache.set(key, (count + 1, ends), max(int(ends - now), 1))


def authenticate_mailbox(request: HttpRequest, account: str, domain: str, password: str) -> Mailbox | None:
    """The enabled mailbox these credentials open, or None. Counts failures for throttling."""
    parsed = parse_login(account, domain)
    mailbox = None
    if parsed is not None:
        local, ascii_domain = parsed
        mailbox = (
            Mailbox.objects.select_related("domain")
            .filter(domain__name=ascii_domain, local_part=local, enabled=True)
            .first()
        )
    if not verify_password(password, mailbox.password_hash if mailbox else None):
        _count_failure(request, "@".join(parsed or (account, domain)))
        return None
    if needs_upgrade(mailbox.password_hash):
        _upgrade_hash(mailbox, password)
    return mailbox


def _upgrade_hash(mailbox: Mailbox, password: str) -> None:
    from hosting.services import domain_changed

    with transaction.atomic():
        revision = domain_changed(mailbox.domain)
        Mailbox.objects.filter(pk=mailbox.pk, password_hash=mailbox.password_hash).update(
            password_hash=hash_password(password), revision=revision
        )
    mailbox.refresh_from_db(fields=["password_hash"])


def session_hash(mailbox: Mailbox) -> str:
    return salted_hmac("mail.auth.session", mailbox.password_hash).hexdigest()


def login_mailbox(request: HttpRequest, mailbox: Mailbox) -> None:
    """Open a mailbox session, ending any other login in this browser first."""
    request.session.flush()
    request.session[SESSION_ID] = mailbox.pk
    request.session[SESSION_HASH] = session_hash(mailbox)
    request.mailbox = mailbox


def logout_mailbox(request: HttpRequest) -> None:
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
