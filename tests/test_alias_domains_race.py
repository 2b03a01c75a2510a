"""Alias domains under concurrency (PostgreSQL, real row locks): concurrent creations stop at the
plan's alias limit (counted under the pack's lock), and an alias created while its target is
deleted is either refused or deleted with it: never an alias left without its domain, never a
deadlock."""

from __future__ import annotations

import pytest
from django.db import connection

from hosting.models import Domain
from provisioning.domains import alias_domain_create, domain_delete
from tests.factories import DomainFactory, PackFactory, PlanFactory, ResellerFactory
from tests.test_race import limit_codes, race

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="the race needs PostgreSQL (set DATABASE_URL); SQLite serialises all writers"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_concurrent_alias_creations_stop_at_the_plan_limit():
    reseller = ResellerFactory()
    pack = PackFactory(customer__reseller=reseller, plan=PlanFactory(reseller=reseller, max_alias_domains=2))
    domain = DomainFactory(pack=pack, name="race-target.test")

    done, refused = race(6, lambda i: alias_domain_create(domain=domain, name=f"race-alias{i}.test", acting_user=None))

    assert len(done) == 2
    assert limit_codes(refused) == ["limit"] * 4
    assert Domain.objects.filter(alias_of=domain).count() == 2


@pytest.mark.parametrize("round_", range(3))
def test_an_alias_created_while_its_domain_is_deleted_goes_with_it_or_is_refused(round_):
    reseller = ResellerFactory()
    pack = PackFactory(customer__reseller=reseller, plan=PlanFactory(reseller=reseller, max_alias_domains=-1))
    domain = DomainFactory(pack=pack, name=f"race-doomed{round_}.test")

    def work(i: int) -> object:
        if i == 0:
            return domain_delete(domain=domain, acting_user=None)
        return alias_domain_create(domain=domain, name=f"race-orphan{round_}-{i}.test", acting_user=None)

    done, refused = race(4, work)

    assert limit_codes(refused) == ["gone"] * len(refused)
    assert not Domain.objects.filter(pk=domain.pk).exists()
    assert not Domain.objects.filter(name__startswith=f"race-orphan{round_}-").exists()
