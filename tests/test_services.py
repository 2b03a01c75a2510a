"""Limits, validation, audit and scoping through the real service functions (no mocks)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError

from hosting.models import UNLIMITED, AuditEvent, Customer, Domain, Pack, Plan
from hosting.services import customer_create, pack_create
from mail.models import Mailbox
from mail.services import mailbox_create, mailbox_set_password
from mailhost.passwords import verify_password
from provisioning.domains import domain_create
from tests.conftest import ROLES
from tests.factories import (
    MAILBOX_PASSWORD,
    CustomerFactory,
    DomainFactory,
    MailboxFactory,
    MailHostFactory,
    PackFactory,
    PlanFactory,
)

GOOD_PASSWORD = "Blue-Lantern-731"


def codes(excinfo: pytest.ExceptionInfo) -> set[str]:
    return {error.code for error in excinfo.value.error_list}


def set_plan(plan: Plan, **fields) -> None:
    Plan.objects.filter(pk=plan.pk).update(**fields)


def create_mailbox(domain: Domain, local_part: str = "newbox", password: str = GOOD_PASSWORD, **kwargs):
    kwargs.setdefault("acting_user", None)
    return mailbox_create(domain=domain, local_part=local_part, password=password, **kwargs)


# --- mailbox_create: limits -------------------------------------------------------------------


def test_mailbox_create_allows_up_to_the_plan_limit(cast):
    set_plan(cast.a.plan, max_mailboxes=3)  # postmaster + alphauser already there

    mailbox = create_mailbox(cast.a.domain, "third")

    assert Mailbox.objects.filter(domain__pack=cast.a.pack).count() == 3
    assert mailbox.address == "third@alpha-domain.test"


def test_mailbox_create_refuses_past_the_plan_limit(cast):
    set_plan(cast.a.plan, max_mailboxes=2)
    before = Mailbox.objects.count()

    with pytest.raises(ValidationError) as excinfo:
        create_mailbox(cast.a.domain, "third")

    assert codes(excinfo) == {"limit"}
    assert Mailbox.objects.count() == before


def test_mailbox_limit_counts_every_domain_of_the_pack(cast):
    set_plan(cast.a.plan, max_domains=2, max_mailboxes=2)
    second = DomainFactory(pack=cast.a.pack, name="alpha-second.test")
    before = Mailbox.objects.count()

    with pytest.raises(ValidationError) as excinfo:
        create_mailbox(second, "first-here")

    assert codes(excinfo) == {"limit"}
    assert Mailbox.objects.count() == before


def test_mailbox_limit_counts_the_postmaster(cast):
    pack = PackFactory(customer=cast.a.customer, plan=PlanFactory(reseller=cast.a.reseller, max_mailboxes=1))
    domain = DomainFactory(pack=pack, name="alpha-solo.test")
    MailboxFactory(domain=domain, local_part="postmaster")

    with pytest.raises(ValidationError) as excinfo:
        create_mailbox(domain, "second")

    assert codes(excinfo) == {"limit"}
    assert Mailbox.objects.filter(domain=domain).count() == 1


def test_mailbox_limit_minus_one_is_unlimited(cast):
    set_plan(cast.a.plan, max_mailboxes=UNLIMITED)
    MailboxFactory.create_batch(20, domain=cast.a.domain)

    create_mailbox(cast.a.domain, "one-more")

    assert Mailbox.objects.filter(domain=cast.a.domain).count() == 23


def test_mailbox_create_refuses_when_the_reseller_pool_is_used_up(cast):
    set_plan(cast.a.plan, max_mailboxes=UNLIMITED)
    cast.a.reseller.max_mailboxes = 2  # postmaster + alphauser
    cast.a.reseller.save()
    before = Mailbox.objects.count()

    with pytest.raises(ValidationError) as excinfo:
        create_mailbox(cast.a.domain, "third")

    assert codes(excinfo) == {"limit"}
    assert Mailbox.objects.count() == before


def test_reseller_mailbox_pool_counts_all_its_customers(cast):
    cast.a.reseller.max_mailboxes = 2
    cast.a.reseller.save()
    other_pack = PackFactory(customer=CustomerFactory(reseller=cast.a.reseller))
    other_domain = DomainFactory(pack=other_pack, name="alpha-other-customer.test")

    with pytest.raises(ValidationError) as excinfo:
        create_mailbox(other_domain, "first")

    assert codes(excinfo) == {"limit"}
    assert not Mailbox.objects.filter(domain=other_domain).exists()


def test_reseller_mailbox_pool_ignores_other_resellers(cast):
    cast.b.reseller.max_mailboxes = 1  # bravo is full, alpha is not concerned
    cast.b.reseller.save()

    create_mailbox(cast.a.domain, "third")

    assert Mailbox.objects.filter(domain=cast.a.domain, local_part="third").exists()


# --- mailbox_create: order of the checks ------------------------------------------------------


def test_limit_is_checked_before_the_name_syntax(cast):
    set_plan(cast.a.plan, max_mailboxes=2)

    with pytest.raises(ValidationError) as excinfo:
        create_mailbox(cast.a.domain, "not valid", password="123")

    assert codes(excinfo) == {"limit"}


def test_name_syntax_is_checked_before_the_name_is_free(cast):
    with pytest.raises(ValidationError) as excinfo:
        create_mailbox(cast.a.domain, "postmaster!", password="123")

    assert codes(excinfo) == {"invalid"}


def test_name_free_is_checked_before_the_password(cast):
    with pytest.raises(ValidationError) as excinfo:
        create_mailbox(cast.a.domain, "PostMaster", password="123")

    assert codes(excinfo) == {"unique"}


def test_weak_password_is_refused_with_a_free_name(cast):
    before = Mailbox.objects.count()

    with pytest.raises(ValidationError) as excinfo:
        create_mailbox(cast.a.domain, "free-name", password="123")

    assert "password_too_short" in codes(excinfo)
    assert Mailbox.objects.count() == before


def test_empty_password_is_refused(cast):
    with pytest.raises(ValidationError) as excinfo:
        create_mailbox(cast.a.domain, "free-name", password="")

    assert codes(excinfo) == {"required"}


# --- mailbox_create: local parts --------------------------------------------------------------


def test_local_part_is_lower_cased(cast):
    mailbox = create_mailbox(cast.a.domain, "John.Smith")

    assert mailbox.local_part == "john.smith"


def test_local_part_accepts_every_allowed_character(cast):
    mailbox = create_mailbox(cast.a.domain, "a-z.0_9+tag")

    assert Mailbox.objects.get(pk=mailbox.pk).local_part == "a-z.0_9+tag"


def test_local_part_of_64_characters_is_accepted(cast):
    mailbox = create_mailbox(cast.a.domain, "a" * 64)

    assert len(mailbox.local_part) == 64


@pytest.mark.parametrize(
    "local_part", ["", ".", "..", ".a", "a.", "a..b", "a" * 65, "a/b", "a b", "é"],
    ids=["empty", "dot", "two-dots", "leading-dot", "trailing-dot", "double-dot", "65-chars",
         "slash", "space", "accent"],
)
def test_local_part_is_refused(cast, local_part):
    before = Mailbox.objects.count()

    with pytest.raises(ValidationError) as excinfo:
        create_mailbox(cast.a.domain, local_part)

    assert codes(excinfo) & {"required", "invalid", "max_length"}
    assert Mailbox.objects.count() == before


# --- mailbox_create: quota --------------------------------------------------------------------


def test_blank_quota_takes_the_plan_default(cast):
    set_plan(cast.a.plan, default_quota_mb=250)

    mailbox = create_mailbox(cast.a.domain, quota_mb=None)

    assert mailbox.quota_mb == 250


def test_explicit_quota_is_kept(cast):
    set_plan(cast.a.plan, default_quota_mb=250)

    mailbox = create_mailbox(cast.a.domain, quota_mb=700)

    assert mailbox.quota_mb == 700


def test_total_quota_refuses_an_unlimited_mailbox(cast):
    set_plan(cast.a.plan, total_quota_mb=1000)

    with pytest.raises(ValidationError) as excinfo:
        create_mailbox(cast.a.domain, quota_mb=0)

    assert codes(excinfo) == {"quota"}
    assert not Mailbox.objects.filter(local_part="newbox").exists()


def test_total_quota_refuses_a_quota_that_would_exceed_it(cast):
    set_plan(cast.a.plan, total_quota_mb=1000)
    MailboxFactory(domain=cast.a.domain, local_part="big", quota_mb=600)

    with pytest.raises(ValidationError) as excinfo:
        create_mailbox(cast.a.domain, quota_mb=401)

    assert codes(excinfo) == {"quota"}
    assert not Mailbox.objects.filter(local_part="newbox").exists()


def test_total_quota_may_be_filled_exactly(cast):
    set_plan(cast.a.plan, total_quota_mb=1000)
    MailboxFactory(domain=cast.a.domain, local_part="big", quota_mb=600)

    mailbox = create_mailbox(cast.a.domain, quota_mb=400)

    assert mailbox.quota_mb == 400


def test_changing_a_quota_counts_the_mailbox_once(cast):
    from mail.services import mailbox_set_quota

    set_plan(cast.a.plan, total_quota_mb=1000)
    Mailbox.objects.filter(domain=cast.a.domain).update(quota_mb=100)  # postmaster, alphauser: 200
    big = MailboxFactory(domain=cast.a.domain, local_part="big", quota_mb=600)
    revision = Domain.objects.get(pk=cast.a.domain.pk).revision

    mailbox_set_quota(mailbox=big, quota_mb=800, acting_user=cast.operator)  # 200 + 800: exactly full

    big.refresh_from_db()
    assert big.quota_mb == 800 and big.revision == revision + 1
    for refused in (801, 0, -1):
        with pytest.raises(ValidationError) as excinfo:
            mailbox_set_quota(mailbox=big, quota_mb=refused, acting_user=cast.operator)
        assert codes(excinfo) == {"quota"}
    big.refresh_from_db()
    assert big.quota_mb == 800


# --- domain_create ----------------------------------------------------------------------------


def test_domain_is_stored_as_punycode_and_shown_in_unicode(cast):
    set_plan(cast.a.plan, max_domains=5)

    domain = domain_create(pack=cast.a.pack, name="Exemple-Éé.FR", acting_user=cast.operator)

    stored = Domain.objects.get(pk=domain.pk)
    assert stored.name.startswith("xn--")
    assert stored.name.isascii()
    assert stored.name.endswith(".fr")
    assert stored.unicode_name == "exemple-éé.fr"


@pytest.mark.parametrize("name", ["", "localhost", "a..b", "-a.fr", "a_b.fr", "1.2.3.4"])
def test_invalid_domain_name_is_refused(cast, name):
    set_plan(cast.a.plan, max_domains=5)
    before = Domain.objects.count()

    with pytest.raises(ValidationError) as excinfo:
        domain_create(pack=cast.a.pack, name=name, acting_user=cast.operator)

    assert codes(excinfo) & {"required", "invalid"}
    assert Domain.objects.count() == before


@pytest.mark.parametrize("name", ["alpha-domain.test", "ALPHA-Domain.Test."])
def test_domain_hosted_by_another_tenant_is_refused(cast, name):
    set_plan(cast.b.plan, max_domains=5)

    with pytest.raises(ValidationError) as excinfo:
        domain_create(pack=cast.b.pack, name=name, acting_user=cast.operator)

    assert codes(excinfo) == {"unique"}
    assert Domain.objects.get(name="alpha-domain.test").pack == cast.a.pack


def test_domain_create_refuses_past_the_plan_limit(cast):
    before = Domain.objects.count()  # alpha's plan allows one domain, alpha-domain.test

    with pytest.raises(ValidationError) as excinfo:
        domain_create(pack=cast.a.pack, name="alpha-two.test", acting_user=cast.operator)

    assert codes(excinfo) == {"limit"}
    assert Domain.objects.count() == before


def test_domain_create_allows_up_to_the_plan_limit(cast):
    set_plan(cast.a.plan, max_domains=2)

    domain_create(pack=cast.a.pack, name="alpha-two.test", acting_user=cast.operator)

    assert Domain.objects.filter(pack=cast.a.pack).count() == 2


def test_domain_create_refuses_when_the_reseller_pool_is_used_up(cast):
    set_plan(cast.a.plan, max_domains=UNLIMITED)
    cast.a.reseller.max_domains = 1
    cast.a.reseller.save()
    before = Domain.objects.count()

    with pytest.raises(ValidationError) as excinfo:
        domain_create(pack=cast.a.pack, name="alpha-two.test", acting_user=cast.operator)

    assert codes(excinfo) == {"limit"}
    assert Domain.objects.count() == before


def test_reseller_domain_pool_counts_all_its_customers(cast):
    cast.a.reseller.max_domains = 1
    cast.a.reseller.save()
    other_pack = PackFactory(customer=CustomerFactory(reseller=cast.a.reseller))

    with pytest.raises(ValidationError) as excinfo:
        domain_create(pack=other_pack, name="alpha-other.test", acting_user=cast.operator)

    assert codes(excinfo) == {"limit"}
    assert not Domain.objects.filter(pack=other_pack).exists()


# --- customer_create and pack_create ----------------------------------------------------------


def test_customer_create_refuses_past_the_reseller_limit(cast):
    cast.a.reseller.max_customers = 1  # alpha-customer
    cast.a.reseller.save()
    before = Customer.objects.count()

    with pytest.raises(ValidationError) as excinfo:
        customer_create(reseller=cast.a.reseller, name="Second", acting_user=cast.a.reseller_staff)

    assert codes(excinfo) == {"limit"}
    assert Customer.objects.count() == before


def test_customer_create_allows_up_to_the_reseller_limit(cast):
    cast.a.reseller.max_customers = 2
    cast.a.reseller.save()

    customer = customer_create(
        reseller=cast.a.reseller, name="  Second  ", email=" c@x.test ", acting_user=cast.a.reseller_staff
    )

    assert (customer.name, customer.email) == ("Second", "c@x.test")
    assert Customer.objects.filter(reseller=cast.a.reseller).count() == 2


def test_pack_create_refuses_a_plan_of_another_reseller(cast):
    before = Pack.objects.count()

    with pytest.raises(ValidationError) as excinfo:
        pack_create(customer=cast.a.customer, plan=cast.b.plan, mail_host=cast.host, acting_user=cast.operator)

    assert codes(excinfo) == {"plan"}
    assert Pack.objects.count() == before


def test_pack_create_refuses_an_inactive_mail_host(cast):
    retired = MailHostFactory(name="mx-retired", active=False)
    before = Pack.objects.count()

    with pytest.raises(ValidationError) as excinfo:
        pack_create(customer=cast.a.customer, plan=cast.a.plan, mail_host=retired, acting_user=cast.operator)

    assert codes(excinfo) == {"host"}
    assert Pack.objects.count() == before


# --- audit events and revisions ---------------------------------------------------------------


def only_new_event(before: int) -> AuditEvent:
    assert AuditEvent.objects.count() == before + 1
    return AuditEvent.objects.order_by("-pk").first()


def test_customer_create_writes_one_audit_event(cast):
    before = AuditEvent.objects.count()

    customer = customer_create(reseller=cast.a.reseller, name="Audited", acting_user=cast.support)

    event = only_new_event(before)
    assert (event.action, event.actor_role, event.actor) == ("customer.create", "support", cast.support)
    assert (event.target_type, event.target_id) == ("hosting.customer", str(customer.pk))


def test_pack_create_writes_one_audit_event(cast):
    before = AuditEvent.objects.count()

    pack = pack_create(customer=cast.a.customer, plan=cast.a.plan, mail_host=cast.host, acting_user=cast.operator)

    event = only_new_event(before)
    assert (event.action, event.actor_role, event.actor) == ("pack.create", "operator", cast.operator)
    assert (event.target_type, event.target_id) == ("hosting.pack", str(pack.pk))


def test_domain_create_writes_one_audit_event(cast):
    set_plan(cast.a.plan, max_domains=2)
    before = AuditEvent.objects.count()

    domain = domain_create(pack=cast.a.pack, name="alpha-two.test", acting_user=cast.support)

    event = only_new_event(before)
    assert (event.action, event.actor_role) == ("domain.create", "support")
    assert (event.target_type, event.target_id) == ("hosting.domain", str(domain.pk))


@pytest.mark.parametrize(
    ("actor_name", "role"),
    [("support", "support"), ("operator", "operator"), ("postmaster", "domain_admin")],
)
def test_mailbox_create_audit_names_the_role_of_the_actor(cast, actor_name, role):
    actor = cast.a.postmaster if actor_name == "postmaster" else getattr(cast, actor_name)
    before = AuditEvent.objects.count()

    mailbox = create_mailbox(cast.a.domain, acting_user=actor)

    event = only_new_event(before)
    assert (event.action, event.actor_role) == ("mailbox.create", role)
    assert (event.target_type, event.target_id) == ("mail.mailbox", str(mailbox.pk))


def test_mailbox_audit_by_a_mailbox_has_no_user_but_names_the_address(cast):
    before = AuditEvent.objects.count()

    create_mailbox(cast.a.domain, acting_user=cast.a.postmaster)

    event = only_new_event(before)
    assert event.actor is None
    assert event.actor_label == "postmaster@alpha-domain.test"


def test_mailbox_set_password_writes_one_audit_event(cast):
    before = AuditEvent.objects.count()

    mailbox_set_password(mailbox=cast.mailbox_user, password=GOOD_PASSWORD, acting_user=cast.a.postmaster)

    event = only_new_event(before)
    assert (event.action, event.actor_role) == ("mailbox.set_password", "domain_admin")
    assert event.target_id == str(cast.mailbox_user.pk)


def test_refused_mailbox_create_writes_no_audit_event(cast):
    set_plan(cast.a.plan, max_mailboxes=2)
    before = AuditEvent.objects.count()

    with pytest.raises(ValidationError):
        create_mailbox(cast.a.domain, acting_user=cast.operator)

    assert AuditEvent.objects.count() == before


def test_mailbox_create_bumps_the_domain_revision_by_one(cast):
    before = Domain.objects.get(pk=cast.a.domain.pk).revision

    create_mailbox(cast.a.domain)

    assert Domain.objects.get(pk=cast.a.domain.pk).revision == before + 1


def test_mailbox_set_password_bumps_the_domain_revision_by_one(cast):
    before = Domain.objects.get(pk=cast.a.domain.pk).revision

    mailbox_set_password(mailbox=cast.mailbox_user, password=GOOD_PASSWORD, acting_user=cast.operator)

    assert Domain.objects.get(pk=cast.a.domain.pk).revision == before + 1


# --- passwords --------------------------------------------------------------------------------


@pytest.mark.parametrize("weak", ["123", "password"])
def test_mailbox_set_password_refuses_a_weak_password_and_keeps_the_old_hash(cast, weak):
    old_hash = Mailbox.objects.get(pk=cast.mailbox_user.pk).password_hash

    with pytest.raises(ValidationError):
        mailbox_set_password(mailbox=cast.mailbox_user, password=weak, acting_user=cast.operator)

    stored = Mailbox.objects.get(pk=cast.mailbox_user.pk).password_hash
    assert stored == old_hash
    assert verify_password(MAILBOX_PASSWORD, stored)


def test_mailbox_set_password_stores_a_hash_of_the_new_password(cast):
    mailbox_set_password(mailbox=cast.mailbox_user, password=GOOD_PASSWORD, acting_user=cast.operator)

    stored = Mailbox.objects.get(pk=cast.mailbox_user.pk).password_hash
    assert verify_password(GOOD_PASSWORD, stored)
    assert not verify_password(MAILBOX_PASSWORD, stored)


def test_created_mailbox_stores_only_an_argon2id_hash(cast):
    mailbox = create_mailbox(cast.a.domain, password=GOOD_PASSWORD)

    stored = Mailbox.objects.get(pk=mailbox.pk).password_hash
    assert stored.startswith("{ARGON2ID}$argon2id$")
    assert GOOD_PASSWORD not in stored


def test_new_password_is_stored_only_as_an_argon2id_hash(cast):
    mailbox_set_password(mailbox=cast.mailbox_user, password=GOOD_PASSWORD, acting_user=cast.operator)

    stored = Mailbox.objects.get(pk=cast.mailbox_user.pk).password_hash
    assert stored.startswith("{ARGON2ID}$argon2id$")
    assert GOOD_PASSWORD not in stored


# --- visible_to -------------------------------------------------------------------------------

MODELS = [Domain, Pack, Customer, Mailbox, Plan]


def expected_visible(cast, role: str) -> dict[type, set]:
    """What each role of the cast sees, model by model, as sets of objects."""
    a, b = cast.a, cast.b
    everything = {
        Domain: {a.domain, b.domain},
        Pack: {a.pack, b.pack},
        Customer: {a.customer, b.customer},
        Mailbox: {a.postmaster, cast.mailbox_user, b.postmaster},
        Plan: {a.plan, b.plan},
    }
    nothing = {model: set() for model in MODELS}

    def tree(t, mailboxes):
        return {Domain: {t.domain}, Pack: {t.pack}, Customer: {t.customer}, Mailbox: mailboxes, Plan: {t.plan}}

    def domain_only(t, mailboxes):
        # A domain admin reads its domain's pack too (limits and usage of the main menu).
        return {**nothing, Domain: {t.domain}, Pack: {t.pack}, Mailbox: mailboxes}

    return {
        "anonymous": nothing,
        "operator": everything,
        "support": everything,
        "reseller_a": tree(a, {a.postmaster, cast.mailbox_user}),
        "reseller_b": tree(b, {b.postmaster}),
        # Plans are the reseller's catalogue: a customer reaches its plan through its packs only.
        "customer_a": {**tree(a, {a.postmaster, cast.mailbox_user}), Plan: set()},
        "customer_b": {**tree(b, {b.postmaster}), Plan: set()},
        "domain_admin_a": domain_only(a, {a.postmaster, cast.mailbox_user}),
        "domain_admin_b": domain_only(b, {b.postmaster}),
        "mailbox_a": {**nothing, Mailbox: {cast.mailbox_user}},
    }[role]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("role", ROLES)
def test_visible_to_shows_exactly_the_seats_tree(cast, role, model):
    seen = set(model.objects.visible_to(cast.seat(role)))

    assert seen == expected_visible(cast, role)[model]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_visible_to_shows_nothing_to_an_anonymous_user(cast, model):
    assert model.objects.count() > 0
    assert not model.objects.visible_to(AnonymousUser()).exists()


def test_visible_to_hides_everything_from_a_disabled_user(cast):
    cast.a.customer_user.is_active = False
    cast.a.customer_user.save()

    assert not Domain.objects.visible_to(cast.a.customer_user).exists()


def test_visible_to_of_a_reseller_ignores_operator_plans(cast):
    operator_plan = PlanFactory(reseller=None, name="operator-plan")

    assert operator_plan not in Plan.objects.visible_to(cast.a.reseller_staff)
    assert operator_plan in Plan.objects.visible_to(cast.support)

