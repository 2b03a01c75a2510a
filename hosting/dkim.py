"""DKIM keys: made here, kept sealed in `DkimKey`, published as TXT records.

- `new_key()` makes an RSA key (2048 bits by default: what Gmail and the RFC 8301 minimum ask;
  about 0.1–0.5 s of CPU, so callers make it outside any locked transaction).
- `seal()` / `unseal()`: the private key is stored encrypted (Fernet: AES-128-CBC + HMAC-SHA256)
  with a key derived from the setting `DKIM_SEAL_KEY`, else from SECRET_KEY. A database dump alone
  does not give the keys; the panel's settings are needed too.
- `selector_for(day)`: selectors are named after the day the key was made ("mp20261208"), so a
  rotation publishes a new name beside the old one.
- `txt_value()` and `record_name()`: the exact record a customer publishes, for the domain and
  (the same key's) for its alias domains.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import date

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings

DEFAULT_BITS = 2048
SELECTOR_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")  # one DNS label, lower-case


class SealBroken(Exception):  # noqa: N818 - what callers catch: "the seal is broken"
    """A sealed key that the current settings cannot open (the seal key changed)."""


@dataclass(frozen=True)
class NewKey:
    private_pem: str
    public_b64: str
    bits: int


@dataclass(frozen=True)
class DnsRecord:
    name: str  # fully qualified, IDNA, no final dot
    type: str
    value: str


def new_key(bits: int = DEFAULT_BITS) -> NewKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return NewKey(private_pem=pem, public_b64=base64.b64encode(der).decode("ascii"), bits=bits)


def _fernet() -> Fernet:
    secret = getattr(settings, "DKIM_SEAL_KEY", "") or settings.SECRET_KEY
    digest = hashlib.sha256(b"mailpanel dkim seal\0" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(private_pem: str) -> str:
    return _fernet().encrypt(private_pem.encode("ascii")).decode("ascii")


def unseal(sealed: str) -> str:
    try:
        return _fernet().decrypt(sealed.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise SealBroken("the DKIM key cannot be opened with this panel's DKIM_SEAL_KEY / SECRET_KEY") from None


def selector_for(day: date, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """"mp" and the day; "mp20261208b", "c", ... when that name is already the domain's."""
    base = f"mp{day:%Y%m%d}"
    for suffix in ["", *"bcdefghijklmnopqrstuvwxyz"]:
        if base + suffix not in taken:
            return base + suffix
    raise ValueError("more than 25 DKIM keys made for one domain in one day")


def txt_value(public_b64: str) -> str:
    return f"v=DKIM1; k=rsa; p={public_b64}"


def record_name(selector: str, domain_name: str) -> str:
    return f"{selector}._domainkey.{domain_name}"
