"""Validation of domain names: Unicode in, IDNA (punycode) stored, Unicode shown."""

from __future__ import annotations

import re

import idna
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize_domain(value: str) -> str:
    """Return the ASCII (IDNA) form of a domain name typed by a person, or raise ValidationError."""
    name = (value or "").strip().rstrip(".").lower()
    if not name:
        raise ValidationError(_("Enter a domain name."), code="required")
    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise ValidationError(
            _("“%(value)s” is not a valid domain name."), code="invalid", params={"value": value}
        ) from None
    labels = ascii_name.split(".")
    if len(labels) < 2 or len(ascii_name) > 253 or not all(LABEL_RE.match(lb) for lb in labels):
        raise ValidationError(
            _("“%(value)s” is not a valid domain name."), code="invalid", params={"value": value}
        )
    if labels[-1].isdigit():
        raise ValidationError(
            _("“%(value)s” is not a valid domain name."), code="invalid", params={"value": value}
        )
    return ascii_name


def domain_to_unicode(ascii_name: str) -> str:
    try:
        return idna.decode(ascii_name)
    except (idna.IDNAError, UnicodeError):
        return ascii_name


# Quotas, in MB. Dovecot's quota_rule and the agent's SQLite store bytes in a signed 64-bit
# integer; 1 TiB per mailbox is far below that and above any real mailbox. A pack's total stays
# within a PositiveIntegerField on every database (PostgreSQL's integer).
MAX_QUOTA_MB = 1_048_576
MAX_TOTAL_QUOTA_MB = 2_147_483_647
QUOTA_DIGITS_RE = re.compile(r"-?[0-9]+")


def parse_quota_mb(value: object, *, maximum: int = MAX_QUOTA_MB) -> int | None:
    """A quota typed by a person or passed by code: an int, or a string of digits; blank
    (None or "") is None, the caller's default. 0 means unlimited. Anything else — a fraction,
    NaN, infinity, a unit ("10 GB"), a negative number, more than `maximum` — is refused."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():  # 2.0 from JSON; not 1.9, NaN, inf
        number = int(value)
    elif isinstance(value, str) and QUOTA_DIGITS_RE.fullmatch(value.strip()):
        text = value.strip()
        digits = text.lstrip("-").lstrip("0")
        number = int(text) if len(digits) <= 20 else maximum + 1  # int() refuses > 4,300 digits
        number = -abs(number) if text.startswith("-") else number
    else:
        number = None
    if number is None:
        raise ValidationError(
            _("The quota must be a whole number of MB (digits only, for example 1024)."),
            code="invalid",
        )
    if number < 0:
        raise ValidationError(_("The quota cannot be negative."), code="min_value")
    if number > maximum:
        raise ValidationError(
            _("The quota cannot exceed %(max)d MB."), code="max_value", params={"max": maximum}
        )
    return number


def validate_quota_mb(value: object) -> None:
    """Model validator: a mailbox quota (a plan's default) within what the mail server stores."""
    parse_quota_mb(value, maximum=MAX_QUOTA_MB)


def validate_total_quota_mb(value: object) -> None:
    """Model validator: a pack's total quota."""
    parse_quota_mb(value, maximum=MAX_TOTAL_QUOTA_MB)
