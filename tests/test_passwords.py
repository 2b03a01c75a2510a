"""mailhost/passwords.py: Dovecot-style `{SCHEME}hash` strings, and the upgrade at login."""

from __future__ import annotations

import bcrypt
import pytest
from argon2 import PasswordHasher
from django.test import Client
from django.urls import reverse

from mail.models import Mailbox
from mailhost.passwords import hash_password, needs_upgrade, verify_password
from tests.factories import MailboxFactory

SECRET = "Tr0ubadour-and-more"


def blf_crypt(password: str) -> str:
    return "{BLF-CRYPT}" + bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


def test_hash_then_verify_round_trip():
    assert verify_password(SECRET, hash_password(SECRET))


def test_wrong_password_does_not_verify():
    assert not verify_password(SECRET + "x", hash_password(SECRET))


@pytest.mark.parametrize("stored", ["", None])
def test_empty_stored_hash_never_verifies(stored):
    assert not verify_password(SECRET, stored)
    assert not verify_password("", stored)


@pytest.mark.parametrize(
    "stored",
    [f"{{PLAIN}}{SECRET}", f"{{CLEARTEXT}}{SECRET}", SECRET],
    ids=["plain", "cleartext", "no-scheme"],
)
def test_unknown_scheme_never_verifies(stored):
    assert not verify_password(SECRET, stored)


def test_argon2id_scheme_without_a_hash_does_not_verify():
    assert not verify_password(SECRET, "{ARGON2ID}")


def test_fresh_hash_has_the_argon2id_scheme_and_no_clear_password():
    stored = hash_password(SECRET)

    assert stored.startswith("{ARGON2ID}$argon2id$")
    assert SECRET not in stored


def test_two_hashes_of_one_password_differ():
    assert hash_password(SECRET) != hash_password(SECRET)


def test_empty_password_cannot_be_hashed():
    with pytest.raises(ValueError):
        hash_password("")


def test_blf_crypt_hash_made_by_bcrypt_verifies():
    stored = blf_crypt(SECRET)

    assert verify_password(SECRET, stored)
    assert not verify_password(SECRET + "x", stored)


def test_blf_crypt_hash_in_dovecot_2y_form_verifies():
    stored = blf_crypt(SECRET).replace("$2b$", "$2y$", 1)

    assert stored.startswith("{BLF-CRYPT}$2y$")
    assert verify_password(SECRET, stored)


def test_corrupt_blf_crypt_hash_does_not_verify():
    assert not verify_password(SECRET, "{BLF-CRYPT}$2b$not-a-bcrypt-hash")


def test_blf_crypt_hash_needs_upgrade():
    assert needs_upgrade(blf_crypt(SECRET))


def test_fresh_hash_does_not_need_upgrade():
    assert not needs_upgrade(hash_password(SECRET))


def test_argon2id_hash_with_weaker_parameters_needs_upgrade():
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(SECRET)
    stored = "{ARGON2ID}" + weak

    assert verify_password(SECRET, stored)
    assert needs_upgrade(stored)


def test_an_argon2id_hash_of_the_former_parameters_verifies_and_is_made_again():
    """t=3, 64 MiB (before issue 18's login measurements): still a valid password, made again
    with the current parameters at the next login to the panel."""
    former = "{ARGON2ID}" + PasswordHasher(time_cost=3, memory_cost=65536, parallelism=1).hash(SECRET)

    assert verify_password(SECRET, former)
    assert needs_upgrade(former)
    assert "m=19456,t=2,p=1" in hash_password(SECRET)


def test_mailbox_with_a_blf_crypt_hash_logs_in_and_is_upgraded_to_argon2id(cast):
    mailbox = MailboxFactory(domain=cast.a.domain, local_part="imported", password_hash=blf_crypt(SECRET))
    client = Client(HTTP_ACCEPT_LANGUAGE="en")

    response = client.post(
        reverse("screens:login"), {"account": "imported@alpha-domain.test", "domain": "", "password": SECRET}
    )

    assert response.status_code == 302
    assert response.url == reverse("screens:me")
    stored = Mailbox.objects.get(pk=mailbox.pk).password_hash
    assert stored.startswith("{ARGON2ID}")
    assert verify_password(SECRET, stored)


def test_session_opened_with_an_upgraded_hash_stays_valid(cast):
    MailboxFactory(domain=cast.a.domain, local_part="imported", password_hash=blf_crypt(SECRET))
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.post(reverse("screens:login"), {"account": "imported@alpha-domain.test", "password": SECRET})

    response = client.get(reverse("screens:me"))

    assert response.status_code == 200
    assert "imported@alpha-domain.test" in response.content.decode()


@pytest.mark.parametrize("scheme, hasher", [
    ("SHA512-CRYPT", "sha512_crypt"), ("SHA256-CRYPT", "sha256_crypt"), ("MD5-CRYPT", "md5_crypt"),
])
def test_imported_crypt_hashes_verify_and_need_upgrade(scheme: str, hasher: str) -> None:
    from passlib import hash as passlib_hash

    stored = "{" + scheme + "}" + getattr(passlib_hash, hasher).hash("imported secret")
    assert verify_password("imported secret", stored)
    assert not verify_password("imported secreT", stored)
    assert needs_upgrade(stored)
