"""Mailbox password hashes in Dovecot's `{SCHEME}hash` form, verified the same way by the panel.

New hashes are `{ARGON2ID}` (argon2-cffi, which Dovecot verifies through libsodium). Hashes
imported from other systems (`{BLF-CRYPT}`, `{SHA512-CRYPT}`, `{SHA256-CRYPT}`, `{MD5-CRYPT}`,
verified with libpass, the maintained passlib) are accepted and reported as needing an upgrade
at the next successful login. Plain Python, no Django.
"""

from __future__ import annotations

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from passlib.hash import md5_crypt, sha256_crypt, sha512_crypt
from passlib.utils.handlers import GenericHandler

SCHEME = "ARGON2ID"
# Dovecot verifies argon2 with libsodium; p=1 is what libsodium produces and accepts everywhere.
# t=2, 19 MiB: OWASP's minimum for argon2id. Dovecot verifies the hash at every POP3/IMAP/SMTP
# login (its auth cache verifies the cached hash again: no saving), so its cost is the mail host's:
# about 50 ms of a core a POP3 login here instead of 210 ms with t=3, 64 MiB (bench/logins_bench.py,
# BENCHMARKS.md, README "Logins the mail host can sustain"). Hashes made with other parameters
# verify as they are and are made again with these at the mailbox's next login to the panel.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
_DUMMY = "{ARGON2ID}" + _hasher.hash("timing-equaliser")
CRYPT_SCHEMES: dict[str, type[GenericHandler]] = {
    "SHA512-CRYPT": sha512_crypt, "SHA256-CRYPT": sha256_crypt, "MD5-CRYPT": md5_crypt,
}


def hash_password(password: str) -> str:
    if not password:
        raise ValueError("empty password")
    return "{" + SCHEME + "}" + _hasher.hash(password)


def split_scheme(stored: str) -> tuple[str, str]:
    if stored.startswith("{") and "}" in stored:
        scheme, _, rest = stored[1:].partition("}")
        return scheme.upper(), rest
    return "", stored


def verify_password(password: str, stored: str | None) -> bool:
    """True when `password` matches `stored`. Unknown schemes never match.

    With no stored hash, a dummy verification still runs so that timing does not reveal
    whether a mailbox exists.
    """
    if not stored:
        _verify_argon2(password, split_scheme(_DUMMY)[1])
        return False
    scheme, value = split_scheme(stored)
    if scheme == "ARGON2ID":
        return _verify_argon2(password, value)
    if scheme in CRYPT_SCHEMES:
        try:
            return CRYPT_SCHEMES[scheme].verify(password, value)
        except (ValueError, TypeError):
            return False
    if scheme == "BLF-CRYPT":
        try:
            # bcrypt reads at most 72 bytes, as Dovecot does; the library refuses longer input.
            return bcrypt.checkpw(password.encode()[:72], value.encode())
        except ValueError:
            return False
    return False


def needs_upgrade(stored: str) -> bool:
    scheme, value = split_scheme(stored)
    if scheme != SCHEME:
        return True
    try:
        return _hasher.check_needs_rehash(value)
    except InvalidHashError:
        return True


def _verify_argon2(password: str, value: str) -> bool:
    try:
        return _hasher.verify(value, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
