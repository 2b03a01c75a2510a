"""Concurrent creations never overshoot a limit: the services lock the rows they count against.

Each thread has its own database connection, so these tests need real row locks (PostgreSQL)
and committed data (`transaction=True`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from hosting.models import Customer, Domain
from hosting.services import customer_create
from mail.models import Mailbox
from mail.services import mailbox_create
from provisioning.domains import domain_create
from tests.factories import DomainFactory, PackFactory, PlanFactory, ResellerFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the limits race needs PostgreSQL (set DATABASE_URL); SQLite serialises all writers",
    ),
    # Committed rows, visible to every thread; the rows of the data migrations (the support
    # group) are put back after the flush for the tests that follow.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def race(count: int, work: Callable[[int], Any]) -> tuple[list[Any], list[ValidationError]]:
    """Run `work(i)` in `count` threads released together; return the results and the refusals."""
    barrier = threading.Barrier(count)
    done: list[Any] = []
    refused: list[ValidationError] = []
    crashed: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            result = work(i)
        except ValidationError as error:
            with lock:
                refused.append(error)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            with lock:
                crashed.append(error)
        else:
            with lock:
                done.append(result)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck (deadlock?)"
    assert crashed == []
    return done, refused


def limit_codes(refused: list[ValidationError]) -> list[str]:
    return [error.code for error in refused]


def test_concurrent_mailbox_creations_stop_at_the_plan_limit():
    reseller = ResellerFactory()
    pack = PackFactory(customer__reseller=reseller, plan=PlanFactory(reseller=reseller, max_mailboxes=3))
    domain = DomainFactory(pack=pack, name="race-mailboxes.test")

    done, refused = race(
        8,
        lambda i: mailbox_create(
            domain=domain, local_part=f"racer{i}", password="Race-Password-9182", acting_user=None
        ),
    )

    assert len(done) == 3
    assert limit_codes(refused) == ["limit"] * 5
    assert Mailbox.objects.filter(domain__pack=pack).count() == 3


def test_concurrent_mailbox_creations_stop_at_the_reseller_pool():
    reseller = ResellerFactory(max_mailboxes=3)
    plan = PlanFactory(reseller=reseller, max_mailboxes=-1)
    domains = [
        DomainFactory(pack=PackFactory(customer__reseller=reseller, plan=plan), name=f"race-pool{i}.test")
        for i in range(2)
    ]

    done, refused = race(
        8,
        lambda i: mailbox_create(
            domain=domains[i % 2], local_part=f"racer{i}", password="Race-Password-9182", acting_user=None
        ),
    )

    assert len(done) == 3
    assert limit_codes(refused) == ["limit"] * 5
    assert Mailbox.objects.filter(domain__pack__customer__reseller=reseller).count() == 3


def test_concurrent_domain_creations_stop_at_the_plan_limit():
    reseller = ResellerFactory()
    pack = PackFactory(customer__reseller=reseller, plan=PlanFactory(reseller=reseller, max_domains=2))

    done, refused = race(6, lambda i: domain_create(pack=pack, name=f"race{i}.test", acting_user=None))

    assert len(done) == 2
    assert limit_codes(refused) == ["limit"] * 4
    assert Domain.objects.filter(pack=pack).count() == 2


def test_concurrent_customer_creations_stop_at_the_reseller_limit():
    reseller = ResellerFactory(max_customers=3)

    done, refused = race(
        8, lambda i: customer_create(reseller=reseller, name=f"Racer {i}", acting_user=None)
    )

    assert len(done) == 3
    assert limit_codes(refused) == ["limit"] * 5
    assert Customer.objects.filter(reseller=reseller).count() == 3
