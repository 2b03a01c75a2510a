"""Validation of local parts, addresses, texts and mailbox passwords, with messages that name
what is wrong."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django.contrib.auth.password_validation import (
    CommonPasswordValidator,
    MinimumLengthValidator,
    NumericPasswordValidator,
    validate_password,
)
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.contrib.auth.password_validation import PasswordValidator  # django-stubs' Protocol

from hosting.validators import normalize_domain
from mailhost.render import CONTROL_CHARS  # the agent's own check: one pattern for panel and agent

LOCAL_PART_RE = re.compile(r"^[a-z0-9._+-]+$")
MAX_LOCAL_PART = 64


def normalize_local_part(value: str) -> str:
    """Lower-case and check a local part: letters, digits and . - _ +; no dot at either end,
    no "..", at most 64 characters. Returns the normalised value or raises ValidationError."""
    local = (value or "").strip().lower()
    if not local:
        raise ValidationError(_("Enter an account name."), code="required")
    if len(local) > MAX_LOCAL_PART:
        raise ValidationError(
            _("The account name is too long (at most %(max)d characters)."),
            code="max_length",
            params={"max": MAX_LOCAL_PART},
        )
    if not LOCAL_PART_RE.match(local):
        raise ValidationError(
            _("The account name may only contain letters, digits and . - _ +"), code="invalid"
        )
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise ValidationError(
            _("The account name cannot start or end with a dot, nor contain two dots in a row."),
            code="invalid",
        )
    return local


def split_address(value: str) -> tuple[str, str]:
    """Split and normalise `local@domain` into (local part, IDNA domain)."""
    text = (value or "").strip()
    if text.count("@") != 1:
        raise ValidationError(_("Invalid e-mail address."), code="invalid")
    local, domain = text.split("@")
    try:
        return normalize_local_part(local), normalize_domain(domain)
    except ValidationError:
        raise ValidationError(_("Invalid e-mail address."), code="invalid") from None


def clean_text(value: str, *, max_length: int, single_line: bool = False) -> str:
    """Text that goes into a Sieve script or a mail header: no control characters; one line when
    it becomes a header (a subject)."""
    text = (value or "").replace("\r\n", "\n").strip()  # CRLF made LF; a lone CR is refused
    if len(text) > max_length:
        raise ValidationError(
            _("This text is too long (at most %(max)d characters)."), code="max_length",
            params={"max": max_length},
        )
    if CONTROL_CHARS.search(text) or (single_line and "\n" in text):
        raise ValidationError(_("This text contains characters that are not allowed."), code="invalid")
    return text


def normalize_address(value: str) -> str:
    """`local@domain` with both parts validated; the domain in its IDNA form."""
    local, domain = split_address(value)
    return f"{local}@{domain}"


MAX_PASSWORD_LENGTH = 128
PASSWORD_STRENGTH: list[PasswordValidator] = [
    MinimumLengthValidator(8), CommonPasswordValidator(), NumericPasswordValidator(),
]
# C0 controls (NUL, tab, line breaks...), DEL, C1 controls, Unicode line separators, and lone
# surrogates (they cannot be encoded, so never hashed).
PASSWORD_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def check_new_password(password: object) -> None:
    """The one rule for a mailbox password being set, by any form or service: not empty, at most
    MAX_PASSWORD_LENGTH characters, no control character, not only spaces, no space at either end
    (mail programs often drop them, so such a password could be set but not used), then the
    strength rules. Inner spaces are kept: a passphrase is welcome. Raises ValidationError."""
    if not isinstance(password, str) or not password:
        raise ValidationError(_("Enter a password."), code="required")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(
            _("The password is too long (at most %(max)d characters)."), code="max_length",
            params={"max": MAX_PASSWORD_LENGTH},
        )
    if PASSWORD_FORBIDDEN.search(password):
        raise ValidationError(
            _("The password contains characters that are not allowed (control characters)."),
            code="invalid",
        )
    if not password.strip():
        raise ValidationError(_("The password cannot consist of spaces only."), code="blank")
    if password != password.strip():
        raise ValidationError(
            _("The password cannot start or end with a space: mail programs often drop it."),
            code="spaces",
        )
    validate_password(password, password_validators=PASSWORD_STRENGTH)
