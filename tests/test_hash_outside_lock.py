"""No password is hashed under a lock (issue 15, item 12).

argon2id takes about 0.2 s. It used to run inside the service's transaction, after the pack's
row lock (a create) or the domain's revision bump (a password change): creates in one pack
queued behind each other's hashing. Now every path hashes before its transaction
(`mail.services.prepare_password`) and keeps its checks under the lock.

The first tests run the real services, in threads with their own database connections, on the
configured database (SQLite's IMMEDIATE write lock, PostgreSQL's row locks): one thread's
hashing is held open (a test hook in the hash function) until another thread has made a whole
create in the same pack. Under a lock that other create could never finish (the hook times
out); outside, it does. The last tests call every page and service that sets a password and
check that no hash runs inside a transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import bcrypt
import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from hosting.models import Plan
from mail import auth as mail_auth
from mail import services
from mail.accounts import domain_create_with_accounts
from mail.models import Mailbox, Routing
from mailhost.passwords import hash_password
from tests.conftest import client_for, login_mailbox
from tests.factories import MAILBOX_PASSWORD

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)  # threads see committed rows

NEW_PASSWORD = "Purple-Otter-5150"
HOLD = 15.0  # seconds the held hash waits for the other create: far beyond any create's time


@pytest.fixture
def unlimited(cast: Any) -> None:
    Plan.objects.filter(pk=cast.a.pack.plan_id).update(max_mailboxes=-1)


def hold_hashing_until_another_create(monkeypatch: pytest.MonkeyPatch, other: Callable[[], Any]) -> dict[str, Any]:
    """The next hash (made in a thread of `run`) waits until `other` (run in a second thread,
    started once the hash has begun) has finished; returns what happened."""
    seen: dict[str, Any] = {"other_done": threading.Event(), "errors": []}
    hashing = threading.Event()

    def held_hash(password: str) -> str:
        if not hashing.is_set():
            hashing.set()
            seen["other_finished_meanwhile"] = seen["other_done"].wait(HOLD)
        return hash_password(password)

    def run_other() -> None:
        try:
            hashing.wait(HOLD)
            other()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            seen["errors"].append(error)
        finally:
            seen["other_done"].set()
            connection.close()

    monkeypatch.setattr(services, "hash_password", held_hash)
    monkeypatch.setattr(services, "HASHING", threading.BoundedSemaphore(2))  # both may hash (1-core machines)
    seen["thread"] = threading.Thread(target=run_other)
    seen["thread"].start()
    return seen


def in_thread(work: Callable[[], Any]) -> list[BaseException]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # noqa: BLE001
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(HOLD * 3)
    return errors


def test_a_create_hashing_does_not_hold_up_another_create_in_the_same_pack(cast, unlimited, monkeypatch):
    domain = cast.a.domain
    seen = hold_hashing_until_another_create(monkeypatch, lambda: services.mailbox_create(
        domain=domain, local_part="second", password=NEW_PASSWORD, acting_user=None))

    errors = in_thread(lambda: services.mailbox_create(domain=domain, local_part="first", password=NEW_PASSWORD,
                                                       acting_user=None))
    seen["thread"].join(HOLD * 3)

    assert errors == [] and seen["errors"] == []
    assert seen["other_finished_meanwhile"], "the other create waited for this one's hashing (a lock)"
    assert set(Mailbox.objects.filter(local_part__in=["first", "second"]).values_list("local_part", flat=True)) == {
        "first", "second"}


def test_a_password_change_hashing_does_not_hold_up_a_create_in_the_same_domain(cast, unlimited, monkeypatch):
    domain, mailbox = cast.a.domain, cast.mailbox_user
    seen = hold_hashing_until_another_create(monkeypatch, lambda: services.mailbox_create(
        domain=domain, local_part="second", password=NEW_PASSWORD, acting_user=None))

    errors = in_thread(lambda: services.mailbox_set_password(mailbox=mailbox, password=NEW_PASSWORD,
                                                             acting_user=None))
    seen["thread"].join(HOLD * 3)

    assert errors == [] and seen["errors"] == []
    assert seen["other_finished_meanwhile"], "the create waited for the password change's hashing (a lock)"


# --- every path that sets a password hashes outside any transaction ------------------------------


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Whether each hash made was inside a transaction (`connection.in_atomic_block`)."""
    made: list[bool] = []

    def spy(password: str) -> str:
        made.append(connection.in_atomic_block)
        return hash_password(password)

    monkeypatch.setattr(services, "hash_password", spy)
    monkeypatch.setattr(mail_auth, "hash_password", spy)
    yield made


def own_client(mailbox: Mailbox) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    login_mailbox(client, mailbox)
    return client


PATHS: dict[str, Callable[[Any], Any]] = {
    "the create page": lambda cast: client_for(cast, "domain_admin_a").post(
        reverse("screens:mailbox_create", args=[cast.a.domain.pk]),
        {"local_part": "newbie", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}),
    "the modify page": lambda cast: client_for(cast, "domain_admin_a").post(
        reverse("screens:mailbox_modify", args=[cast.a.domain.pk, cast.mailbox_user.pk]), {
            "real_name": "Alpha User", "quota_mb": str(cast.mailbox_user.quota_mb or ""), "enabled": "on",
            "allow_pop3": "on", "allow_imap": "on", "allow_smtp": "on", "routing": Routing.STANDARD,
            "forward_to": "", "vacation_subject": "", "vacation_message": "",
            "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}),
    "the own account page": lambda cast: own_client(cast.mailbox_user).post(reverse("screens:me"), {
        "real_name": "Alpha User", "routing": "standard", "forward_to": "", "vacation_subject": "",
        "vacation_message": "", "current_password": MAILBOX_PASSWORD, "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD}),
    "the own password page": lambda cast: own_client(cast.mailbox_user).post(reverse("screens:me_password"), {
        "current_password": MAILBOX_PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}),
    "the public password page": lambda cast: Client().post(reverse("screens:change_password"), {
        "address": "alphauser@alpha-domain.test", "old_password": MAILBOX_PASSWORD,
        "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}),
    "the Espace Client's new domain": lambda cast: client_for(cast, "customer_a").post(
        reverse("screens:domain_add", args=[cast.a.pack.pk]),
        {"name": "alpha-new.test", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}),
    "the Espace Client's postmaster password": lambda cast: client_for(cast, "customer_a").post(
        reverse("screens:postmaster_reset", args=[cast.a.domain.pk]), {"confirm": "yes"}),
    "the admin's new domain": lambda cast: client_for(cast, "reseller_a").post(
        reverse("admin:hosting_domain_add"),
        {"pack": cast.a.pack.pk, "name": "alpha-admin.test", "postmaster_password": NEW_PASSWORD}),
    "a new domain with its accounts": lambda cast: domain_create_with_accounts(
        pack=cast.a.pack, name="alpha-new.fr", password=NEW_PASSWORD, acting_user=cast.operator),
    "a login that upgrades an old hash": lambda cast: (
        Mailbox.objects.filter(pk=cast.mailbox_user.pk).update(
            password_hash="{BLF-CRYPT}" + bcrypt.hashpw(MAILBOX_PASSWORD.encode(), bcrypt.gensalt(4)).decode()),
        Client().post(reverse("screens:login"), {"account": "alphauser@alpha-domain.test",
                                              "password": MAILBOX_PASSWORD})),
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_no_hash_inside_a_transaction(cast, unlimited, hashes, path):
    Plan.objects.filter(pk=cast.a.pack.plan_id).update(max_domains=-1)

    response = PATHS[path](cast)

    assert hashes, f"{path}: no password hashed ({getattr(response, 'status_code', '')})"
    assert True not in hashes, f"{path}: hashed inside a transaction"


def test_a_process_hashes_no_more_passwords_at_once_than_it_has_cores(monkeypatch):
    """More parallel hashes than cores only make each one finish later (and take 64 MiB each):
    `prepare_password` lets `HASHING`'s bound (the cores) hash at once; the others wait, before
    any transaction."""
    running, peak, lock = [0], [0], threading.Lock()

    def spy(password: str) -> str:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            return hash_password(password)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(services, "hash_password", spy)
    monkeypatch.setattr(services, "HASHING", threading.BoundedSemaphore(2))
    barrier = threading.Barrier(6)

    def work() -> None:
        barrier.wait()
        services.prepare_password(NEW_PASSWORD)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert peak[0] == 2
