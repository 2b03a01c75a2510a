"""Alias domains (issue 17), the panel's side: created through `alias_domain_create` with a new
domain's name checks, counted apart from domains, proven like any domain, deleted alone or with
their target, moved with their pack; nothing is created in one; the routing rules read
name@alias as name@target; the mailbox login accepts name@alias with name@target's password.
All through the real services and the real database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import translation

from hosting.audit import Action
from hosting.models import AuditEvent, Domain, Pack, VerifiedHow
from lists.services import list_create
from mail import bulkimport
from mail.models import CatchAllMode, Forward, Routing
from mail.services import (
    catchall_set,
    forward_create,
    forward_set_destinations,
    mailbox_create,
    mailbox_rename,
    mailbox_set_routing,
    robot_create,
)
from provisioning.domains import (
    alias_domain_create,
    domain_check_ownership,
    domain_create,
    domain_delete,
    domain_verify,
    pack_move,
    proof_record,
)
from provisioning.models import DomainMove, RetiredDomain
from tests.conftest import Cast
from tests.dnsserver import DnsServer, dns_server  # noqa: F401 - the fixture
from tests.factories import (
    MAILBOX_PASSWORD,
    MAILBOX_PASSWORD_HASH,
    DomainFactory,
    MailboxFactory,
    MailHostFactory,
    PackFactory,
)

ALPHA = "alpha-domain.test"
ALIAS = "alpha-alias.test"
SECOND = "alpha-second.test"


@pytest.fixture(autouse=True)
def english() -> Any:
    with translation.override("en"):
        yield


def alias_of_a(cast: Cast, name: str = ALIAS, **kwargs: Any) -> Domain:
    return alias_domain_create(domain=cast.a.domain, name=name, acting_user=cast.a.customer_user, **kwargs)


def refused(call: Callable[[], Any], code: str) -> str:
    with pytest.raises(ValidationError) as caught, transaction.atomic():
        call()
    assert caught.value.code == code, caught.value
    return caught.value.messages[0]


def set_plan(pack: Pack, **limits: int) -> None:
    for name, value in limits.items():
        setattr(pack.plan, name, value)
    pack.plan.save()


# --- create -----------------------------------------------------------------------------------


def test_an_alias_lives_in_its_targets_pack_unproven_with_its_audit_row(cast):
    alias = alias_of_a(cast, "Alpha-Alias.TEST")

    assert (alias.name, alias.alias_of_id, alias.pack_id) == (ALIAS, cast.a.domain.pk, cast.a.pack.pk)
    assert alias.verified_at is None and alias.revision > 0
    event = AuditEvent.objects.get(action=Action.ALIAS_DOMAIN_CREATE)
    assert (event.domain_id, event.detail["alias_of"], event.customer_id) == (alias.pk, ALPHA, cast.a.customer.pk)


def test_an_alias_given_how_it_is_proven_is_proven_at_once(cast):
    alias = alias_of_a(cast, verified_how=VerifiedHow.IMPORT)

    assert alias.verified_at is not None and alias.verified_how == VerifiedHow.IMPORT
    assert Domain.objects.get(pk=alias.pk).verified_how == VerifiedHow.IMPORT


def test_an_alias_under_a_proven_domain_of_the_same_customer_is_proven(cast):
    alias = alias_of_a(cast, f"mail.{ALPHA}")

    assert alias.verified_how == VerifiedHow.PARENT


def test_an_alias_takes_a_name_only_once(cast):
    alias_of_a(cast)
    set_plan(cast.a.pack, max_domains=-1)

    assert refused(lambda: alias_of_a(cast), "unique") == "This domain is already hosted."
    assert refused(lambda: alias_of_a(cast, "bravo-domain.test"), "unique") == "This domain is already hosted."
    assert refused(lambda: domain_create(pack=cast.a.pack, name=ALIAS, acting_user=None), "unique")


def test_an_alias_under_another_customers_domain_is_refused(cast):
    message = refused(lambda: alias_of_a(cast, "mail.bravo-domain.test"), "parent")

    assert message == "This domain is under bravo-domain.test, which another customer holds."


def test_an_alias_of_an_alias_is_refused(cast):
    alias = alias_of_a(cast)

    message = refused(lambda: alias_domain_create(domain=alias, name="loop.test", acting_user=None), "alias")

    assert message == f"{ALIAS} is itself an alias domain: add the alias to the domain it is an alias of."
    assert not Domain.objects.filter(name="loop.test").exists()


def test_an_alias_name_is_read_as_a_new_domains(cast):
    assert alias_of_a(cast, "www.alpha-other.test").name == "alpha-other.test"  # www. dropped
    assert refused(lambda: alias_of_a(cast, "localhost"), "invalid")  # not a domain a customer can hold


def test_an_alias_starts_above_the_revisions_its_name_had_on_a_host(cast):
    RetiredDomain.objects.create(name=ALIAS, host=cast.host, revision=40)

    assert alias_of_a(cast).revision > 40


def test_the_plans_alias_limit_is_its_own(cast):
    set_plan(cast.a.pack, max_alias_domains=1, max_domains=1)
    alias_of_a(cast)  # the pack's one domain is there already: aliases do not count in max_domains

    message = refused(lambda: alias_of_a(cast, "alpha-alias2.test"), "limit")

    assert message == "Maximum number of alias domains of this pack reached (1)."
    set_plan(cast.a.pack, max_alias_domains=0)
    assert refused(lambda: alias_of_a(cast, "alpha-alias2.test"), "limit") == (
        "The plan of this pack has no alias domains.")
    set_plan(cast.a.pack, max_alias_domains=-1)
    assert alias_of_a(cast, "alpha-alias2.test").alias_of_id == cast.a.domain.pk


def test_aliases_do_not_count_in_the_domains_limit(cast):
    set_plan(cast.a.pack, max_domains=2, max_alias_domains=-1)
    alias_of_a(cast)
    alias_of_a(cast, "alpha-alias2.test")

    assert domain_create(pack=cast.a.pack, name=SECOND, acting_user=None).alias_of_id is None
    assert refused(lambda: domain_create(pack=cast.a.pack, name="alpha-third.test", acting_user=None), "limit")


def test_aliases_do_not_count_in_the_resellers_domains(cast):
    cast.a.reseller.max_domains = 1
    cast.a.reseller.save()
    alias_of_a(cast)

    set_plan(cast.a.pack, max_domains=-1)

    other_pack = PackFactory(customer=cast.a.customer, plan=cast.a.plan, mail_host=cast.host)
    message = refused(lambda: domain_create(pack=other_pack, name=SECOND, acting_user=None), "limit")

    assert message == "The reseller has reached its maximum number of domains (1)."
    cast.a.reseller.max_domains = 2
    cast.a.reseller.save()
    assert domain_create(pack=other_pack, name=SECOND, acting_user=None).pack_id == other_pack.pk


def test_the_pack_counts_its_aliases_apart(cast):
    alias_of_a(cast)

    pack = Pack.objects.with_usage().get(pk=cast.a.pack.pk)

    assert (pack.used_domains, pack.used_alias_domains) == (1, 1)


# --- delete and move --------------------------------------------------------------------------


def test_an_alias_is_deleted_alone_and_retired_from_its_host(cast):
    alias = alias_of_a(cast)

    domain_delete(domain=alias, acting_user=cast.a.customer_user)

    assert Domain.objects.filter(pk=cast.a.domain.pk).exists() and not Domain.objects.filter(pk=alias.pk).exists()
    retired = RetiredDomain.objects.get(name=ALIAS)
    assert retired.host_id == cast.host.pk and retired.revision == alias.revision + 1
    assert AuditEvent.objects.get(action=Action.ALIAS_DOMAIN_DELETE).detail == {"alias_of": ALPHA}


def test_a_domain_is_deleted_with_its_aliases_each_retired(cast):
    alias = alias_of_a(cast)
    other = alias_of_a(cast, "alpha-alias2.test")

    domain_delete(domain=cast.a.domain, acting_user=cast.operator)

    assert not Domain.objects.filter(pk__in=[cast.a.domain.pk, alias.pk, other.pk]).exists()
    assert set(RetiredDomain.objects.values_list("name", flat=True)) == {ALPHA, ALIAS, "alpha-alias2.test"}
    event = AuditEvent.objects.get(action=Action.DOMAIN_DELETE)
    assert event.detail == {"alias_domains": [ALIAS, "alpha-alias2.test"]}
    assert AuditEvent.objects.filter(action=Action.ALIAS_DOMAIN_DELETE).count() == 2


def test_a_pack_move_carries_its_aliases(cast):
    alias = alias_of_a(cast)
    new_host = MailHostFactory(name="mx2")

    pack_move(pack=cast.a.pack, mail_host=new_host, acting_user=cast.operator)

    moves = DomainMove.objects.filter(to_host=new_host)
    assert set(moves.values_list("domain__name", flat=True)) == {ALPHA, ALIAS}
    assert Domain.objects.get(pk=alias.pk).pack.mail_host_id == new_host.pk


# --- nothing in an alias domain ---------------------------------------------------------------


@pytest.mark.parametrize("create", [
    lambda d: mailbox_create(domain=d, local_part="ann", password=MAILBOX_PASSWORD, acting_user=None),
    lambda d: forward_create(domain=d, local_part="fwd", destinations=["x@example.org"], acting_user=None),
    lambda d: robot_create(domain=d, local_part="bot", subject="s", message="m", acting_user=None),
    lambda d: list_create(domain=d, name="news", owner="owner@example.org", acting_user=None),
    lambda d: catchall_set(domain=d, mode=CatchAllMode.REMOTE, target="x@example.org", acting_user=None),
    lambda d: bulkimport.mailboxes_import(domain=d, acting_user=None, mailboxes=[
        bulkimport.NewMailbox("ann", password_hash=MAILBOX_PASSWORD_HASH)]),
    lambda d: bulkimport.forwards_import(domain=d, acting_user=None, forwards=[("fwd", ["x@example.org"])]),
], ids=["mailbox", "forward", "robot", "list", "catchall", "bulk mailboxes", "bulk forwards"])
def test_nothing_is_created_in_an_alias_domain(cast, create):
    alias = alias_of_a(cast)

    message = refused(lambda: create(alias), "alias_domain")

    assert message == (f"{ALIAS} is an alias domain of {ALPHA}: every address of {ALPHA} is also valid at "
                       f"{ALIAS}. Create it in {ALPHA}.")
    assert alias.revision == Domain.objects.get(pk=alias.pk).revision


# --- the routing rules read name@alias as name@target ------------------------------------------


def test_an_address_cannot_forward_to_itself_through_an_alias(cast):
    ann = MailboxFactory(domain=cast.a.domain, local_part="ann")
    alias_of_a(cast)

    message = refused(lambda: mailbox_set_routing(mailbox=ann, routing=Routing.FORWARD, forward_to=[f"ann@{ALIAS}"],
                                                  acting_user=None), "loop")

    assert message == "An address cannot forward to itself."


def test_a_forward_to_a_forward_through_an_alias_is_a_chain(cast):
    forward_create(domain=cast.a.domain, local_part="fwd", destinations=["x@example.org"], acting_user=None)
    alias_of_a(cast)

    message = refused(lambda: forward_create(domain=cast.a.domain, local_part="other", destinations=[f"fwd@{ALIAS}"],
                                             acting_user=None), "chain")

    assert message == f"fwd@{ALIAS} is itself a forward: forward to the final address instead."


def test_a_loop_through_an_alias_is_refused(cast):
    second = DomainFactory(pack=cast.a.pack, name=SECOND)
    ann = MailboxFactory(domain=cast.a.domain, local_part="ann")
    bob = MailboxFactory(domain=second, local_part="bob")
    alias_of_a(cast)
    mailbox_set_routing(mailbox=ann, routing=Routing.FORWARD, forward_to=[f"bob@{SECOND}"], keep_copy=True,
                        acting_user=None)

    message = refused(lambda: mailbox_set_routing(mailbox=bob, routing=Routing.FORWARD, forward_to=[f"ann@{ALIAS}"],
                                                  keep_copy=True, acting_user=None), "loop")

    assert message == f"Mail forwarded to ann@{ALIAS} would come back to bob@{SECOND}: that would be a loop."


def test_a_forward_to_an_alias_address_pins_the_target_address(cast):
    ann = MailboxFactory(domain=cast.a.domain, local_part="ann")
    alias_of_a(cast)
    forward_create(domain=cast.a.domain, local_part="fwd", destinations=[f"ann@{ALIAS}"], acting_user=None)

    message = refused(lambda: mailbox_set_routing(mailbox=ann, routing=Routing.FORWARD, forward_to=["x@example.org"],
                                                  acting_user=None), "pointed_at")

    assert message.startswith(f"ann@{ALPHA} cannot forward its mail: it receives mail forwarded by fwd@{ALPHA}.")


def test_a_catchall_to_its_own_alias_domain_is_refused(cast):
    alias_of_a(cast)

    message = refused(lambda: catchall_set(domain=cast.a.domain, mode=CatchAllMode.DOMAIN, target=ALIAS,
                                           acting_user=None), "loop")

    assert message == f"{ALIAS} is an alias domain of this domain: its names are this domain's. Choose another domain."


def test_a_catchall_to_an_alias_whose_target_sends_mail_on_is_a_chain(cast):
    second = DomainFactory(pack=cast.a.pack, name=SECOND)
    alias_domain_create(domain=second, name="second-alias.test", acting_user=None)
    catchall_set(domain=second, mode=CatchAllMode.REMOTE, target="x@example.org", acting_user=None)

    message = refused(lambda: catchall_set(domain=cast.a.domain, mode=CatchAllMode.DOMAIN, target="second-alias.test",
                                           acting_user=None), "chain")

    assert message == (f"The catch-all of {SECOND} itself sends mail on: choose the final domain instead.")


def test_another_customers_alias_is_opaque(cast):
    alias_domain_create(domain=cast.b.domain, name="bravo-alias.test", acting_user=None)
    forward_create(domain=cast.b.domain, local_part="fwd", destinations=["x@example.org"], acting_user=None)

    forward = forward_create(domain=cast.a.domain, local_part="f", destinations=["fwd@bravo-alias.test"],
                             acting_user=None)

    forward_set_destinations(forward=forward, destinations=["fwd@bravo-alias.test", "y@example.org"], acting_user=None)
    assert Forward.objects.get(pk=forward.pk).destinations == ["fwd@bravo-alias.test", "y@example.org"]


def test_a_rename_repoints_the_domains_redirects_to_its_alias_address(cast):
    ann = MailboxFactory(domain=cast.a.domain, local_part="ann")
    alias_of_a(cast)
    forward = forward_create(domain=cast.a.domain, local_part="fwd", destinations=[f"ann@{ALIAS}", f"ann+news@{ALIAS}"],
                             acting_user=None)

    mailbox_rename(mailbox=ann, new_local_part="anne", acting_user=None)

    assert Forward.objects.get(pk=forward.pk).destinations == [f"anne@{ALIAS}", f"anne+news@{ALIAS}"]


def test_a_rename_is_refused_while_another_domain_forwards_to_its_alias_address(cast):
    ann = MailboxFactory(domain=cast.a.domain, local_part="ann")
    second = DomainFactory(pack=cast.a.pack, name=SECOND)
    alias_of_a(cast)
    forward_create(domain=second, local_part="fwd", destinations=[f"ann@{ALIAS}"], acting_user=None)

    message = refused(lambda: mailbox_rename(mailbox=ann, new_local_part="anne", acting_user=None), "pointed_at")

    assert message.startswith(f"ann@{ALPHA} cannot be renamed: it receives mail forwarded by fwd@{SECOND}")


# --- the mailbox login --------------------------------------------------------------------------


def post_login(account: str, password: str, ip: str) -> Any:
    return Client(HTTP_ACCEPT_LANGUAGE="en").post(
        reverse("screens:login"), {"account": account, "domain": "", "password": password}, REMOTE_ADDR=ip)


def test_a_mailbox_logs_in_by_its_alias_address_with_its_password(cast):
    alias_of_a(cast)

    response = post_login(f"alphauser@{ALIAS}", MAILBOX_PASSWORD, "10.9.0.1")

    assert response.status_code == 302
    assert response.wsgi_request.session["mailbox_id"] == cast.mailbox_user.pk


def test_a_wrong_password_at_the_alias_fails(cast):
    alias_of_a(cast)

    response = post_login(f"alphauser@{ALIAS}", "Wrong-Horse-43", "10.9.0.2")

    assert response.status_code == 400 and "mailbox_id" not in response.wsgi_request.session


def test_the_alias_and_the_target_share_one_count_of_failed_attempts(cast, settings):
    settings.MAILBOX_LOGIN_MAX_FAILURES = 2
    alias_of_a(cast)
    for ip, account in [("10.9.1.1", f"alphauser@{ALIAS}"), ("10.9.1.2", f"alphauser@{ALPHA}")]:
        post_login(account, "Wrong-Horse-43", ip)

    response = post_login(f"alphauser@{ALIAS}", MAILBOX_PASSWORD, "10.9.1.3")  # the right password, too late

    assert "mailbox_id" not in response.wsgi_request.session
    assert "Too many failed attempts" in response.content.decode()


# --- proof, as a domain's ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # the rows migrations made, kept for later tests
def test_an_alias_is_proven_by_its_own_txt_record_or_by_hand(cast, dns_server: DnsServer):  # noqa: F811
    alias = alias_of_a(cast)
    other = alias_of_a(cast, "alpha-alias2.test")
    name, text = proof_record(alias)
    assert name == f"_mailpanel-verify.{ALIAS}"

    dns_server.publish(txt={name: ["not-the-token"]})
    assert domain_check_ownership(domain=alias) is False
    dns_server.publish(txt={name: [text]})
    assert domain_check_ownership(domain=alias) is True
    assert domain_verify(domain=other, acting_user=cast.operator) is True

    assert dict(Domain.objects.filter(alias_of=cast.a.domain).values_list("name", "verified_how")) == {
        ALIAS: VerifiedHow.TXT, "alpha-alias2.test": VerifiedHow.HAND}
