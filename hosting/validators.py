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
