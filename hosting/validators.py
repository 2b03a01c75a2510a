"""Validation of domain names (Unicode in, IDNA (punycode) stored, Unicode shown) and of quotas."""

from __future__ import annotations

import re
import string
from typing import Any
from urllib.parse import urlsplit

import idna
from confusable_homoglyphs import categories, confusables
from django import forms
from django.apps import apps
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from mailhost.contract import reserved_suffix
from mailhost.stack.config import StackConfig

LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
WWW = "www"
# How long a domain's name may be as typed in a form: 253 once read (RFC 1035), plus what reading
# drops (a www. or two, a final dot) or shortens (Unicode letters that map to two).
DOMAIN_TYPED_MAX = 300
DOMAIN_TYPED_HELP = _("For example example.fr; a leading www. is dropped: www.example.fr is example.fr.")
# The name Postfix of a development or test stack (bin/mailstack, tests/e2e) calls itself; a real
# mail host's is its MailHost.fqdn (`python -m mailhost.stack configure --hostname`).
STACK_HOSTNAME = StackConfig.hostname


def normalize_domain(value: str) -> str:
    """Return the ASCII (IDNA) form of a domain name typed by a person, or raise ValidationError.
    Any well-formed name: an address's domain, a catch-all's target. The name of a domain to
    host (or to log in to) is read by `domain_as_typed` and `normalize_hosted_domain`."""
    return _normalize(value, drop_www=False)


def domain_as_typed(value: str) -> str:
    """The ASCII (IDNA) name of the domain a person means when typing `value` as their own
    domain: case, a final dot, Unicode and full-width forms as `normalize_domain`, and a leading
    `www.` dropped (`www.example.fr` is `example.fr`: people type their web address) as long as
    two labels remain (`www.fr` stays). Every entry of a domain of one's own reads it so: adding
    a domain (`normalize_hosted_domain`) and logging in (mail.auth.parse_login), so that the
    postmaster of any domain the panel accepts logs in with what was typed. Idempotent."""
    return _normalize(value, drop_www=True)


def _normalize(value: str, *, drop_www: bool) -> str:
    name = (value or "").strip().rstrip(".").lower()
    if not name:
        raise ValidationError(_("Enter a domain name."), code="required")
    try:
        # UTS 46 mapping first (full-width "ｗｗｗ．" is "www.", "。" a dot), then www. dropped
        # before the length check (a name of 253 typed with www. is a name of 253)
        labels = idna.uts46_remap(name, std3_rules=True, transitional=False).rstrip(".").split(".")
        while drop_www and len(labels) > 2 and labels[0] == WWW:
            labels.pop(0)
        ascii_name = idna.encode(".".join(labels), uts46=True).decode("ascii")
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
    check_not_homograph(value, domain_to_unicode(ascii_name))
    return ascii_name


def normalize_hosted_domain(value: str) -> str:
    """The ASCII name of a domain a customer, a reseller or an operator adds (`domain_as_typed`),
    or ValidationError (code "reserved") when the mail hosts use that name themselves: a
    special-use name (mailhost.contract.reserved_suffix: `.invalid`, where lists and catch-all
    "delete" are routed, `.localhost`, `.local`...) or the name of a mail host (MailHost.fqdn,
    the test stack's) or a name under it."""
    ascii_name = domain_as_typed(value)
    suffix = reserved_suffix(ascii_name)
    if suffix is not None:
        raise ValidationError(
            _("“%(value)s” ends in .%(suffix)s, a name reserved for special uses that no one can own "
              "(RFC 6761 and the like): it cannot be a hosted domain."),
            code="reserved", params={"value": value.strip(), "suffix": suffix},
        )
    if any(ascii_name == host or ascii_name.endswith("." + host) for host in mail_host_names()):
        raise ValidationError(
            _("“%(value)s” is the name of one of our mail servers: it cannot be a hosted domain."),
            code="reserved", params={"value": value.strip()},
        )
    return ascii_name


def mail_host_names() -> set[str]:
    """The names the mail hosts answer to as themselves: every MailHost's fqdn (Postfix's
    myhostname), the IMAP, POP3 and SMTP server names its users' mail clients are given, the host
    of its webmail (an IP address can name no domain), and the test stack's hostname. MailHost is
    read through the app registry: hosting.models imports this module."""
    mail_host = apps.get_model("hosting", "MailHost")
    names = {STACK_HOSTNAME}
    for row in mail_host.objects.values_list("fqdn", "imap_host", "pop3_host", "smtp_host", "webmail_url"):
        *hosts, webmail = row
        names.update(host.strip().rstrip(".").lower() for host in hosts if host)
        if webmail:
            names.add((urlsplit(webmail).hostname or "").rstrip("."))
    return names - {""}


# Scripts a label may mix (UTS #39 "highly restrictive"): Japanese, Chinese and Korean writing
# mix their scripts, and Latin, in ordinary names. Any other mix is how look-alikes are made.
MIXABLE_SCRIPTS = (
    {"LATIN", "HAN", "HIRAGANA", "KATAKANA"}, {"LATIN", "HAN", "BOPOMOFO"}, {"LATIN", "HAN", "HANGUL"},
)
LATIN_LOOKALIKES = set(string.ascii_lowercase + string.digits)


def _scripts(label: str) -> set[str]:
    """The scripts of a label's characters; digits, hyphens and accents (COMMON, INHERITED) aside."""
    return {categories.alias(c) for c in label} - {"COMMON", "INHERITED"}


def _latin_lookalike(char: str) -> str:
    """The ASCII letter or digit `char` can be taken for (Unicode's confusables), or ""."""
    found = confusables.is_confusable(char, greedy=True, preferred_aliases=["latin", "common"]) or []
    return next((h["c"] for entry in found for h in entry["homoglyphs"] if h["c"] in LATIN_LOOKALIKES), "")


def check_not_homograph(value: str, unicode_name: str) -> None:
    """Refuse a name that passes for another: a label mixing scripts ("аpple" with a Cyrillic
    "а"), or a label of another script made only of letters that read as Latin (Cyrillic "рау"
    reads "pay"), unless the top-level domain is of that script too (.рф)."""
    labels = unicode_name.split(".")
    tld_scripts = _scripts(labels[-1])
    for label in labels:
        scripts = _scripts(label)
        if len(scripts) > 1 and not any(scripts <= allowed for allowed in MIXABLE_SCRIPTS):
            raise ValidationError(
                _("“%(value)s” mixes letters of different alphabets in “%(label)s”, as look-alike "
                  "domain names do: type it in one alphabet."),
                code="homograph", params={"value": value, "label": label},
            )
        if scripts and scripts != {"LATIN"} and scripts != tld_scripts:
            lookalike = "".join(_latin_lookalike(c) if _scripts(c) else c for c in label)
            if all(_latin_lookalike(c) for c in label if _scripts(c)):
                raise ValidationError(
                    _("“%(value)s” is written in letters of another alphabet that look like Latin "
                      "ones (it reads as “%(lookalike)s”): type the Latin name instead."),
                    code="homograph", params={"value": value, "lookalike": lookalike},
                )


def domain_to_unicode(ascii_name: str) -> str:
    """The name as people write it; a name with no "xn--" label is that already (no idna call)."""
    if "xn--" not in ascii_name:
        return ascii_name
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
    NaN, infinity, a unit ("10 GB"), a negative number, more than `maximum` — is refused with
    code "quota", as every quota refusal of the services, and a message that says which."""
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
            code="quota",
        )
    if number < 0:
        raise ValidationError(_("The quota cannot be negative."), code="quota")
    if number > maximum:
        raise ValidationError(
            _("The quota cannot exceed %(max)d MB."), code="quota", params={"max": maximum}
        )
    return number


class QuotaFormField(forms.IntegerField):
    """A quota typed in a form, read by `parse_quota_mb`: the quota rule's messages."""

    def __init__(self, *, maximum: int = MAX_QUOTA_MB, **kwargs: Any) -> None:
        self.maximum = maximum
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> int | None:
        return parse_quota_mb(value, maximum=self.maximum)
