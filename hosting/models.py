"""Tenants: operator → resellers → customers → packs (a plan on a mail host) → domains.

Every tenant model's manager has `visible_to(seat)`: the one way to list what a seat may see.
Scoping follows foreign keys only; there are no per-object ACL rows.
"""

from __future__ import annotations

import secrets
from typing import Any, ClassVar, Self, TypedDict

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from hosting.roles import Role, Seat, is_mailbox, is_person, role_of
from hosting.validators import (
    MAX_QUOTA_MB,
    MAX_TOTAL_QUOTA_MB,
    QuotaFormField,
    domain_to_unicode,
    normalize_domain,
    parse_quota_mb,
)
from mailhost import contract

UNLIMITED = -1
COUNT_HELP = _("−1 means unlimited, 0 hides the feature.")


class ScopedQuerySet(models.QuerySet):
    """A queryset that knows the foreign-key path from its model up to a reseller and a customer.

    Subclasses set the paths; `None` means that role sees none of these rows.
    """

    reseller_path: str | None = None
    customer_path: str | None = None
    domain_path: str | None = None
    mailbox_path: str | None = None

    def visible_to(self, seat: Seat) -> Self:
        role = role_of(seat)
        if role in (Role.OPERATOR, Role.SUPPORT):
            return self.all()
        if role == Role.RESELLER and is_person(seat):
            return self._scoped(self.reseller_path, seat.reseller_id)
        if role == Role.CUSTOMER and is_person(seat):
            return self._scoped(self.customer_path, seat.customer_id)
        if role == Role.DOMAIN_ADMIN and is_mailbox(seat):
            return self._scoped(self.domain_path, seat.domain_id)
        if role == Role.MAILBOX:
            return self._scoped(self.mailbox_path, seat.pk)
        return self.none()

    def _scoped(self, path: str | None, value: Any) -> Self:
        if path is None or value is None:
            return self.none()
        return self.filter(**{path: value})


class DomainChildQuerySet(ScopedQuerySet):
    """Rows that belong to one domain (mailboxes, forwards, robots, lists, sync records)."""

    reseller_path = "domain__pack__customer__reseller"
    customer_path = "domain__pack__customer"
    domain_path = "domain"


class UserQuerySet(ScopedQuerySet):
    def visible_to(self, seat: Seat) -> Self:
        role = role_of(seat)
        if role in (Role.OPERATOR, Role.SUPPORT):
            return self.all()
        if role == Role.RESELLER and is_person(seat):
            return self.filter(
                Q(reseller_id=seat.reseller_id) | Q(customer__reseller_id=seat.reseller_id)
            )
        if role == Role.CUSTOMER:
            return self.filter(pk=seat.pk)
        return self.none()


# django-stubs' plugin does not follow from_queryset in a base class list (nor through a name).
class UserManager(BaseUserManager.from_queryset(UserQuerySet)):  # type: ignore[misc]
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An e-mail address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A person who signs in with e-mail + password: operator, support, reseller staff, customer.

    `reseller` set (with is_staff) makes reseller staff; `customer` set makes a customer user;
    support agents are staff in the "support" group; the operator is a superuser.
    """

    username = None  # type: ignore[assignment]  # Django's documented way to drop a field; the stubs say str
    email = models.EmailField(_("e-mail address"), unique=True)
    reseller = models.ForeignKey(
        "Reseller", null=True, blank=True, on_delete=models.PROTECT, related_name="staff",
        verbose_name=_("reseller"),
    )
    customer = models.ForeignKey(
        "Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="users",
        verbose_name=_("customer"),
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects: ClassVar[UserManager] = UserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.CheckConstraint(
                condition=Q(reseller__isnull=True) | Q(customer__isnull=True),
                name="user_reseller_or_customer",
            )
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def role(self) -> Role:
        return role_of(self)


class MailHostQuerySet(ScopedQuerySet):
    def visible_to(self, seat: Seat) -> Self:
        role = role_of(seat)
        if role in (Role.OPERATOR, Role.SUPPORT):
            return self.all()
        if role == Role.RESELLER:
            return self.filter(active=True)
        return self.none()


PORT_VALIDATORS = [MinValueValidator(1), MaxValueValidator(65535)]
CLIENT_NAME_HELP = _("The name mail clients connect to; empty: the host name.")


class ClientSecurity(models.TextChoices):
    """How a mail client secures its connection to a port."""

    TLS = "tls", "SSL/TLS"  # the names mail clients show, in every language
    STARTTLS = "starttls", "STARTTLS"


class MailHost(models.Model):
    """A mail server (Postfix + Dovecot + mlmmj) with its own agent consuming one queue."""

    name = models.SlugField(_("name"), max_length=63, unique=True)
    fqdn = models.CharField(_("host name"), max_length=253, blank=True)
    active = models.BooleanField(_("accepts new packs"), default=True)
    # Where this host's doveadm server listens (address: the host name): a moving pack's mail is
    # copied to it with `doveadm sync` from the old host.
    doveadm_port = models.PositiveIntegerField(
        _("doveadm port"), default=12424, validators=PORT_VALIDATORS,
        help_text=_("TCP port of the host's doveadm server, used to copy mail when a pack moves here."),
    )

    # What the users' mail clients are told (the page "Mail client settings"): the public names,
    # ports and security of the host's IMAP, POP3 and submission services, and its webmail.
    imap_host = models.CharField(_("IMAP server"), max_length=253, blank=True, help_text=CLIENT_NAME_HELP)
    imap_port = models.PositiveIntegerField(_("IMAP port"), default=993, validators=PORT_VALIDATORS)
    imap_security = models.CharField(
        _("IMAP security"), max_length=10, choices=ClientSecurity, default=ClientSecurity.TLS
    )
    pop3_host = models.CharField(_("POP3 server"), max_length=253, blank=True, help_text=CLIENT_NAME_HELP)
    pop3_port = models.PositiveIntegerField(_("POP3 port"), default=995, validators=PORT_VALIDATORS)
    pop3_security = models.CharField(
        _("POP3 security"), max_length=10, choices=ClientSecurity, default=ClientSecurity.TLS
    )
    smtp_host = models.CharField(_("SMTP server"), max_length=253, blank=True, help_text=CLIENT_NAME_HELP)
    smtp_port = models.PositiveIntegerField(
        _("SMTP port"), default=587, validators=PORT_VALIDATORS,
        help_text=_("The submission port: 587 with STARTTLS, or 465 with SSL/TLS."),
    )
    smtp_security = models.CharField(
        _("SMTP security"), max_length=10, choices=ClientSecurity, default=ClientSecurity.STARTTLS
    )
    webmail_url = models.URLField(
        _("webmail address"), blank=True, validators=[URLValidator(schemes=["https", "http"])],
        help_text=_("For example https://webmail.example.net/; empty: no webmail is shown."),
    )

    objects = MailHostQuerySet.as_manager()

    class Meta:
        verbose_name = _("mail host")
        verbose_name_plural = _("mail hosts")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The clients' server names read as domain names (stored in their ASCII form)."""
        errors = {}
        for field in ("imap_host", "pop3_host", "smtp_host"):
            value = getattr(self, field)
            if value:
                try:
                    setattr(self, field, normalize_domain(value))
                except ValidationError as error:
                    errors[field] = error
        if errors:
            raise ValidationError(errors)

    def client_host(self, service: str) -> str:
        """The name mail clients use for `service` ("imap", "pop3", "smtp"): its own, else the host's."""
        return getattr(self, f"{service}_host") or self.fqdn

    @property
    def queue(self) -> str:
        """The queue its agent consumes (the panel–agent contract's name for it)."""
        return contract.host_queue(self.name)

    @property
    def doveadm_target(self) -> str:
        """The `doveadm sync` destination of this host's doveadm server."""
        return f"tcp:{self.fqdn or self.name}:{self.doveadm_port}"


class ResellerQuerySet(ScopedQuerySet):
    reseller_path = "pk"


class Reseller(models.Model):
    """A company that resells mail hosting; its pool caps what it may sell (−1 = unlimited)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    max_customers = models.IntegerField(
        _("maximum number of customers"), default=UNLIMITED, help_text=_("−1 means unlimited.")
    )
    max_domains = models.IntegerField(
        _("maximum number of domains"), default=UNLIMITED, help_text=_("−1 means unlimited.")
    )
    max_mailboxes = models.IntegerField(
        _("maximum number of POP accounts"), default=UNLIMITED, help_text=_("−1 means unlimited.")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = ResellerQuerySet.as_manager()

    class Meta:
        verbose_name = _("reseller")
        verbose_name_plural = _("resellers")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CustomerQuerySet(ScopedQuerySet):
    reseller_path = "reseller"
    customer_path = "pk"


class Language(models.TextChoices):
    """A language the mail hosts write their own mail in (quota warnings: mailhost.quota_warning)."""

    FRENCH = "fr", _("French")
    ENGLISH = "en", _("English")


class Customer(models.Model):
    """Someone who buys packs; belongs to a reseller, or to the operator when reseller is empty."""

    reseller = models.ForeignKey(
        Reseller, null=True, blank=True, on_delete=models.PROTECT, related_name="customers",
        verbose_name=_("reseller"),
    )
    name = models.CharField(_("name"), max_length=200)
    email = models.EmailField(_("contact e-mail"), blank=True)
    # Sent to the mail host with each of its domains (the document's `language`).
    language = models.CharField(
        _("language of the mail server's messages"), max_length=2, choices=Language, default=Language.FRENCH,
        help_text=_("The mail servers write their warnings to the customer's mailboxes (mailbox nearly "
                    "full) in this language."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["name"]
        indexes = [models.Index(fields=["reseller", "name"])]

    def __str__(self) -> str:
        return self.name


class QuotaField(models.PositiveIntegerField):
    """A quota in whole MB, read by `parse_quota_mb` (digits only, at most `maximum`), in the
    admin's form and in `full_clean` alike: 1.9, NaN, 1e99 or "10 GB" are refused, never cut."""

    def __init__(self, *args: Any, maximum: int = MAX_QUOTA_MB, **kwargs: Any) -> None:
        self.maximum = maximum
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        return name, path, args, {**kwargs, "maximum": self.maximum}

    def to_python(self, value: Any) -> int | None:
        return parse_quota_mb(value, maximum=self.maximum)

    def formfield(self, **kwargs: Any) -> Any:
        return super().formfield(**{"form_class": QuotaFormField, "maximum": self.maximum, **kwargs})


class PlanQuerySet(ScopedQuerySet):
    reseller_path = "reseller"


class Plan(models.Model):
    """What a pack offers. Counts: −1 unlimited, 0 the feature is hidden. Quotas: 0 unlimited."""

    reseller = models.ForeignKey(
        Reseller, null=True, blank=True, on_delete=models.PROTECT, related_name="plans",
        verbose_name=_("reseller"),
    )
    name = models.CharField(_("name"), max_length=100)
    max_domains = models.IntegerField(_("domains"), default=1, help_text=COUNT_HELP)
    # Alias domains have their own count: an alias holds no mailbox and costs the host a name, not
    # space; a one-domain pack commonly wants its .com beside its .fr without buying a second domain.
    max_alias_domains = models.IntegerField(_("alias domains"), default=2, help_text=COUNT_HELP)
    max_mailboxes = models.IntegerField(_("POP accounts"), default=5, help_text=COUNT_HELP)
    max_forwards = models.IntegerField(_("forwards"), default=10, help_text=COUNT_HELP)
    max_robots = models.IntegerField(_("robots"), default=5, help_text=COUNT_HELP)
    max_lists = models.IntegerField(_("mailing lists"), default=10, help_text=COUNT_HELP)
    # Members of one list (every kind): a tenant's import cannot grow a list without end.
    max_list_members = models.IntegerField(
        _("members per mailing list"), default=10_000, help_text=_("−1 means unlimited.")
    )
    default_quota_mb = QuotaField(
        _("default mailbox quota (MB)"), default=1024, help_text=_("0 means unlimited.")
    )
    total_quota_mb = QuotaField(
        _("total quota of the pack (MB)"), default=0, help_text=_("0 means unlimited."),
        maximum=MAX_TOTAL_QUOTA_MB,
    )

    objects = PlanQuerySet.as_manager()

    class Meta:
        verbose_name = _("plan")
        verbose_name_plural = _("plans")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["reseller", "name"], name="plan_name_per_reseller"),
            *[
                models.CheckConstraint(condition=Q(**{f"{f}__gte": UNLIMITED}), name=f"plan_{f}_valid")
                for f in ("max_domains", "max_alias_domains", "max_mailboxes", "max_forwards", "max_robots",
                          "max_lists", "max_list_members")
            ],
        ]

    def __str__(self) -> str:
        return self.name


class PackUsage(TypedDict):
    """What `PackQuerySet.with_usage` annotates each pack with: its rows of each kind."""

    used_domains: int
    used_alias_domains: int
    used_mailboxes: int
    used_forwards: int
    used_robots: int
    used_lists: int


class PackQuerySet(ScopedQuerySet):
    reseller_path = "customer__reseller"
    customer_path = "customer"
    domain_path = "domains"  # a domain admin reads its domain's pack (limits and usage)

    def with_usage(self, pack_id: int | None = None) -> models.QuerySet:
        """Annotate the counters shown as `Utilisé : n/max`, one subquery each (no row explosion).

        Rows of the apps above (mailboxes, forwards, robots, lists) are counted through the
        domain's reverse relations (`Domain.mailboxes`...), so this ground floor imports none of them.
        With `pack_id` (one pack's page) the subqueries name the pack itself: PostgreSQL then plans
        them for that pack's own rows, not for an average pack (one domain of 100,000 mailboxes
        among small ones made it read every mailbox for a pack of ten: 160 ms → 0.1 ms)."""
        pack = models.OuterRef("pk") if pack_id is None else models.Value(pack_id)

        def count(relation: str) -> models.Subquery:
            """How many `relation` rows the pack's domains hold ("pk": the domains themselves),
            counted from the rows' own table joined to their domain: the pack's few domains lead,
            and each one's rows are read from the index on `domain` (a LEFT JOIN from the domains
            made PostgreSQL read every mailbox of every domain: 195 ms → 0.1 ms)."""
            rows: models.QuerySet[Any]
            if relation in ("pk", "alias_domains"):  # the pack's domains, its alias domains apart
                rows, key = Domain.objects.filter(pack=pack, alias_of__isnull=relation == "pk"), "pack"
            else:
                model = Domain._meta.get_field(relation).related_model  # a model of an app above
                assert isinstance(model, type)  # a reverse relation's: the model class itself
                rows, key = model._base_manager.filter(domain__pack=pack), "domain__pack"
            return models.Subquery(
                rows.order_by().values(key).annotate(n=models.Count("*")).values("n"),  # COUNT(*): the index alone
                output_field=models.IntegerField(),
            )

        return self.annotate(
            used_domains=Coalesce(count("pk"), 0),
            used_alias_domains=Coalesce(count("alias_domains"), 0),
            used_mailboxes=Coalesce(count("mailboxes"), 0),
            used_forwards=Coalesce(count("forwards"), 0),
            used_robots=Coalesce(count("robots"), 0),
            used_lists=Coalesce(count("lists"), 0),
        )


class Pack(models.Model):
    """A customer's subscription to a plan, placed on one mail host."""

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="packs", verbose_name=_("customer")
    )
    plan = models.ForeignKey(
        Plan, on_delete=models.PROTECT, related_name="packs", verbose_name=_("plan")
    )
    mail_host = models.ForeignKey(
        MailHost, on_delete=models.PROTECT, related_name="packs", verbose_name=_("mail host")
    )
    label = models.CharField(_("label"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = PackQuerySet.as_manager()

    class Meta:
        verbose_name = _("pack")
        verbose_name_plural = _("packs")
        ordering = ["customer__name", "pk"]

    def __str__(self) -> str:
        return self.label or f"{self.plan.name} #{self.pk}"


def new_verification_token() -> str:
    """The token a customer publishes in DNS to prove a domain is his."""
    return secrets.token_hex(16)


class VerifiedHow(models.TextChoices):
    """How a domain was proven the customer's (until then its mail host does not serve it)."""

    TXT = "txt", _("TXT record")
    MX = "mx", _("MX record")
    HAND = "hand", _("by hand")
    PARENT = "parent", _("its parent domain, proven by the same customer")
    EXISTING = "existing", _("hosted before verification existed")
    IMPORT = "import", _("moved in from the host's own server (vpopmail import)")


class DomainQuerySet(ScopedQuerySet):
    reseller_path = "pack__customer__reseller"
    customer_path = "pack__customer"
    domain_path = "pk"


class Domain(models.Model):
    """A mail domain, globally unique, stored in its IDNA (punycode) form."""

    pack = models.ForeignKey(
        Pack, on_delete=models.PROTECT, related_name="domains", verbose_name=_("pack")
    )
    name = models.CharField(_("domain name"), max_length=253, unique=True)
    # An alias domain (vpopmail's `vaddaliasdomain`): every address of `alias_of` is also valid at
    # this name; it holds no object of its own, lives in its target's pack and is proven like any
    # domain before its host serves it. Never an alias of an alias.
    alias_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="alias_domains",
        verbose_name=_("alias of"),
    )
    revision = models.PositiveBigIntegerField(_("revision"), default=0, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    # Ownership: the mail host serves the domain locally only once it is verified.
    verification_token = models.CharField(
        _("verification token"), max_length=64, default=new_verification_token, editable=False
    )
    verified_at = models.DateTimeField(_("verified"), null=True, blank=True, editable=False)
    verified_how = models.CharField(
        _("verified by"), max_length=10, choices=VerifiedHow, blank=True, editable=False
    )
    verification_checked_at = models.DateTimeField(_("last DNS check"), null=True, blank=True, editable=False)
    verification_error = models.CharField(_("last DNS check's result"), max_length=300, blank=True, editable=False)

    objects = DomainQuerySet.as_manager()

    class Meta:
        verbose_name = _("domain")
        verbose_name_plural = _("domains")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.unicode_name

    @property
    def unicode_name(self) -> str:
        return domain_to_unicode(self.name)

    unicode_name.fget.short_description = _("name (Unicode)")  # type: ignore[attr-defined]  # the admin's column

    def clean(self) -> None:
        if self.name:
            self.name = normalize_domain(self.name)


class DkimKeyState(models.TextChoices):
    NEXT = "next", _("published, waiting for its DNS record")
    ACTIVE = "active", _("signing")
    RETIRED = "retired", _("retired")


class DkimKey(models.Model):
    """A domain's DKIM key (`hosting.dkim` makes, seals and reads them). The private key is kept
    here sealed (Fernet, key derived from `DKIM_SEAL_KEY`, else SECRET_KEY) and leaves the panel
    only in the domain's document for its mail host, which signs with it. One ACTIVE key per
    domain signs; a NEXT key is published beside it and becomes ACTIVE once its DNS record is
    seen (rotation). An alias domain has no key of its own: it publishes its target's."""

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="dkim_keys", verbose_name=_("domain"))
    selector = models.CharField(_("selector"), max_length=63)
    bits = models.PositiveSmallIntegerField(_("key size"), default=2048)
    public_key = models.TextField(_("public key"), editable=False)  # base64 DER SubjectPublicKeyInfo: the p= tag
    sealed_private_key = models.TextField(editable=False)  # hosting.dkim.seal(PEM)
    state = models.CharField(_("state"), max_length=10, choices=DkimKeyState, default=DkimKeyState.NEXT)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    dns_seen_at = models.DateTimeField(_("DNS record seen"), null=True, blank=True, editable=False)
    activated_at = models.DateTimeField(_("signing since"), null=True, blank=True, editable=False)

    objects = DomainChildQuerySet.as_manager()

    class Meta:
        verbose_name = _("DKIM key")
        verbose_name_plural = _("DKIM keys")
        ordering = ["domain", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "selector"], name="dkim_selector_unique"),
            models.UniqueConstraint(fields=["domain"], condition=Q(state="active"), name="dkim_one_active"),
        ]

    def __str__(self) -> str:
        return f"{self.selector}._domainkey.{self.domain.name}"


class AuditEventQuerySet(ScopedQuerySet):
    """Who reads which events, by the ids `audit.record` stored on each row (plain columns, so an
    event outlives its domain): operators and support agents everything; a reseller the events of
    its customers' domains and packs; a customer its own domains' events; a domain admin its
    domain's; a plain mailbox user nothing."""

    def visible_to(self, seat: Seat) -> Self:
        role = role_of(seat)
        if role in (Role.OPERATOR, Role.SUPPORT):
            return self.all()
        if role == Role.RESELLER and is_person(seat) and seat.reseller_id is not None:
            return self.filter(reseller_id=seat.reseller_id)  # set on events of domains and packs only
        if role == Role.CUSTOMER and is_person(seat) and seat.customer_id is not None:
            return self.filter(domain_id__isnull=False, customer_id=seat.customer_id)
        if role == Role.DOMAIN_ADMIN and is_mailbox(seat) and seat.domain_id is not None:
            return self.filter(domain_id=seat.domain_id)
        return self.none()


class AuditEvent(models.Model):
    """Who did what to which object, and when. Support agents' acts are flagged."""

    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("user"),
    )
    actor_label = models.CharField(_("who"), max_length=320)
    actor_role = models.CharField(_("role"), max_length=20)
    action = models.CharField(_("action"), max_length=64)
    target_type = models.CharField(_("object type"), max_length=64)
    target_id = models.CharField(_("object id"), max_length=64, blank=True)
    target_repr = models.CharField(_("object"), max_length=320, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    # Where the event belongs, copied from its target when it is written: plain ids, not foreign
    # keys, so that the row survives the deletion of its domain, pack or customer.
    domain_id = models.BigIntegerField(_("domain id"), null=True, blank=True, editable=False)
    domain_name = models.CharField(_("domain name"), max_length=253, blank=True, editable=False)
    pack_id = models.BigIntegerField(_("pack id"), null=True, blank=True, editable=False)
    customer_id = models.BigIntegerField(_("customer id"), null=True, blank=True, editable=False)
    reseller_id = models.BigIntegerField(_("reseller id"), null=True, blank=True, editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["actor_role", "-created_at"]),
            # A domain's audit page: its events, newest first.
            models.Index(fields=["domain_id", "-created_at", "-id"], name="audit_domain_newest"),
            models.Index(fields=["customer_id", "-created_at"], name="audit_customer_newest"),
            models.Index(fields=["reseller_id", "-created_at"], name="audit_reseller_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.target_repr}"
