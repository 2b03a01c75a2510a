"""The packs' and domains' pages of the scoped admin (see hosting/admin.py for the base): the
pages whose acts reach the mail hosts (a pack's move, a domain's create with its postmaster,
its delete, its sync state and "send again")."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import NestedObjects
from django.db import models, router
from django.http import HttpRequest
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.functional import Promise
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from hosting import audit
from hosting.access import visible
from hosting.admin import ALL, VIEW, ReadOnlyAdmin, ServiceForm, TenantAdmin
from hosting.admin import CustomerAdmin as HostingCustomerAdmin
from hosting.audit import Action
from hosting.models import Customer, Domain, Pack
from hosting.roles import Role, role_of
from hosting.services import pack_create, pack_update
from hosting.validators import DOMAIN_TYPED_HELP, DOMAIN_TYPED_MAX, normalize_hosted_domain
from mail.accounts import domain_create_with_accounts
from mail.services import PreparedPassword, prepare_password
from mail.validators import check_new_password
from provisioning.customers import customer_set_language
from provisioning.domains import domain_delete, domain_verify, pack_move
from provisioning.models import DomainMove, DomainSync, HostHealth, MailImport, sync_state_label
from provisioning.revisions import retry

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations  # django-stubs' (a development requirement): types only


admin.site.unregister(Customer)


@admin.register(Customer)
class CustomerAdmin(HostingCustomerAdmin):
    """hosting's customer page, whose change of language reaches the hosts of the customer's
    domains (provisioning.customers, a floor above hosting)."""

    def change_object(self, request: HttpRequest, obj: Customer, form: Any) -> None:
        super().change_object(request, obj, form)
        language = form.cleaned_data.get("language")
        if language:  # not sent: kept
            customer_set_language(customer=obj, language=language, acting_user=request.user)


class PackForm(ServiceForm):
    class Meta:
        model = Pack
        fields = ["customer", "plan", "mail_host", "label"]


@admin.register(Pack)
class PackAdmin(TenantAdmin):
    role_perms = {Role.SUPPORT: frozenset({"view", "change"}), Role.RESELLER: ALL}
    service_saves = True
    form = PackForm
    list_display = ["__str__", "customer", "plan", "mail_host", "created_at"]
    list_select_related = ["customer", "plan", "mail_host"]
    search_fields = ["label", "customer__name", "domains__name"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["customer", "domain_moves"] if obj is not None else []

    @admin.display(description=_("moves to another mail host"))
    def domain_moves(self, obj: Pack) -> str:
        """The last move of each of the pack's domains: where to, its state, when it finished."""
        latest = [moves[0] for domain in obj.domains.all() if (moves := list(domain.moves.all()))]  # prefetched
        return "; ".join(move_label(move) for move in latest) or "-"

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return super().get_queryset(request).prefetch_related(
            models.Prefetch("domains", queryset=visible(Domain, request.user).order_by("name")),
            models.Prefetch("domains__moves", queryset=moves_shown(request)),
        )

    def create_object(self, request: HttpRequest, form: Any) -> Pack:
        data = form.cleaned_data
        return pack_create(customer=data["customer"], plan=data["plan"], mail_host=data["mail_host"],
                           label=data["label"], acting_user=request.user)

    def change_object(self, request: HttpRequest, obj: Pack, form: Any) -> None:
        """The plan is checked on every save; a new mail host moves the pack's domains there."""
        data = form.cleaned_data
        pack_update(pack=obj, plan=data["plan"], label=data["label"], acting_user=request.user)
        if data["mail_host"] != obj.mail_host:
            pack_move(pack=obj, mail_host=data["mail_host"], acting_user=request.user)


class DomainForm(ServiceForm):
    name = forms.CharField(label=_("Domain name"), max_length=DOMAIN_TYPED_MAX, help_text=DOMAIN_TYPED_HELP)
    postmaster_password = forms.CharField(
        label=_("Password of postmaster"), strip=False,  # check_new_password refuses end spaces
        widget=forms.PasswordInput(render_value=False),
        help_text=_("The domain is created with its postmaster account, the domain's admin (and, for a .fr "
                    "domain, its hostmaster account, with the same password)."),
    )

    class Meta:
        model = Domain
        fields = ["pack", "name"]

    def clean_name(self) -> str:
        return normalize_hosted_domain(self.cleaned_data["name"])

    def clean_postmaster_password(self) -> str:
        password = self.cleaned_data["postmaster_password"]
        check_new_password(password)
        return password


class DomainChangeForm(ServiceForm):
    class Meta:
        model = Domain
        fields = ["pack"]


def moves_shown(request: HttpRequest) -> models.QuerySet:
    """The domain moves the admin lists beside a pack or a domain (newest first), as the seat sees them."""
    return visible(DomainMove, request.user).select_related("domain", "from_host", "to_host")


def move_label(move: DomainMove | None) -> str:
    """"alpha.test: mx1 → mx2, copying mail" (the move's state, its error, when it finished)."""
    if move is None:
        return "-"
    return f"{move.domain.name}: {move.from_host} → {move.to_host}, {move.describe()}"


class IsAliasFilter(admin.SimpleListFilter):
    """Domains or alias domains (an alias domain is added from its domain's screens, through
    `provisioning.domains.alias_domain_create`: never here, where `alias_of` is read-only)."""

    title = _("alias domain")
    parameter_name = "alias"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("alias domains")), ("no", _("domains"))]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() in ("yes", "no"):
            return queryset.filter(alias_of__isnull=self.value() == "no")
        return queryset


@admin.register(Domain)
class DomainAdmin(TenantAdmin):
    role_perms = {Role.SUPPORT: frozenset({"view", "change"}), Role.RESELLER: frozenset({"view", "add"})}
    service_saves = True
    list_display = ["unicode_name", "name", "alias_of", "pack", "revision", "ownership", "mail_host_state",
                    "last_move", "created_at"]
    list_select_related = ["pack__plan", "pack__customer", "sync", "alias_of"]
    list_filter = [IsAliasFilter]
    search_fields = ["name", "alias_of__name"]
    actions = ["retry_provisioning", "mark_verified"]

    @admin.display(description=_("proven the customer's"))
    def ownership(self, obj: Domain) -> str:
        """How the domain was proven, or why not yet (its mail host does not serve it until then)."""
        if obj.verified_at is not None:
            return obj.get_verified_how_display()
        return _("not yet: %(found)s") % {"found": obj.verification_error or _("not checked yet")}

    @admin.display(description=_("on the mail host"))
    def mail_host_state(self, obj: Domain) -> str:
        return sync_state_label(getattr(obj, "sync", None), obj.revision)

    @admin.display(description=_("e-mail of the domain"))
    def panel_screens(self, obj: Domain) -> str:
        """The domain's main menu, where support and resellers act on the domain as its admin would
        (each act audited under their own name)."""
        return format_html('<a href="{}">{}</a>', reverse("screens:domain", args=[obj.pk]),
                           _("Open the main menu of %(name)s") % {"name": obj.unicode_name})

    @admin.display(description=_("move to another mail host"))
    def last_move(self, obj: Domain) -> str:
        moves = list(obj.moves.all())  # prefetched, newest first
        return move_label(moves[0]) if moves else "-"

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return super().get_queryset(request).prefetch_related(
            models.Prefetch("moves", queryset=moves_shown(request))
        )

    @admin.action(description=_("Send again to the mail host"))
    def retry_provisioning(self, request: HttpRequest, queryset: Any) -> None:
        for domain in queryset:
            retry(domain)
            audit.record(request.user, Action.DOMAIN_RETRY, domain)
        self.message_user(request, _("The selected domains will be sent again to their mail host."))

    @admin.action(description=_("Mark as proven the customer's (its mail host serves it)"))
    def mark_verified(self, request: HttpRequest, queryset: Any) -> None:
        """Operators and resellers (their own customers' domains: the queryset is scoped) vouch
        for domains no DNS record proves; each one audited."""
        done = sum(domain_verify(domain=domain, acting_user=request.user) for domain in queryset)
        self.message_user(request, _("Domains marked as proven: %(count)s.") % {"count": done})

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        if role_of(request.user) not in (Role.OPERATOR, Role.SUPPORT):
            actions.pop("retry_provisioning", None)
        if role_of(request.user) not in (Role.OPERATOR, Role.RESELLER):
            actions.pop("mark_verified", None)
        return actions

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        kwargs["form"] = DomainForm if obj is None else DomainChangeForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["name", "alias_of", "pack", "revision", "mail_host_state", "last_move", "panel_screens", "ownership",
                "verification_checked_at"] if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["pack", "name", "postmaster_password"]
        return ["name", "alias_of", "panel_screens", "pack", "revision", "ownership", "verification_checked_at",
                "mail_host_state", "last_move"]

    service_deletes = True

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        # The domain takes its mailboxes (postmaster too) with it: no per-mailbox permission. And
        # its alias domains (`domain_delete`), which protect it from a plain delete: listed with it.
        objs = list(objs)
        to_delete, model_count, _perms_needed, protected = super().get_deleted_objects(objs, request)
        aliases = list(visible(Domain, request.user).filter(alias_of__in=objs).exclude(pk__in=[o.pk for o in objs]))
        if aliases:
            collector = NestedObjects(using=router.db_for_write(Domain))
            collector.collect(objs)
            if all(isinstance(o, Domain) and o.alias_of_id is not None for o in collector.protected):
                alias_delete, alias_count, _perms, protected = super().get_deleted_objects(aliases, request)
                to_delete = [*to_delete, *alias_delete]
                model_count = {k: model_count.get(k, 0) + alias_count.get(k, 0) for k in {*model_count, *alias_count}}
        if protected and not aliases:  # every alias chosen with its domain: the domain's delete takes it
            collector = NestedObjects(using=router.db_for_write(Domain))
            collector.collect(objs)
            chosen = {o.pk for o in objs}
            if all(isinstance(o, Domain) and o.alias_of_id in chosen for o in collector.protected):
                protected = []
        return to_delete, model_count, set(), protected

    def delete_model(self, request: HttpRequest, obj: Domain) -> None:
        domain_delete(domain=obj, acting_user=request.user)  # its mail host removes it too

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        # Real domains first: each takes its aliases with it, so an alias of the selection is gone
        # by its turn (skipped, not a DoesNotExist).
        chosen = sorted(queryset, key=lambda domain: domain.alias_of_id is not None)
        deleted: set[int] = set()
        for domain in chosen:
            if domain.pk in deleted or domain.alias_of_id in deleted:
                continue
            deleted.add(domain.pk)
            domain_delete(domain=domain, acting_user=request.user)

    def changeform_view(self, request: HttpRequest, object_id: str | None = None, form_url: str = "",
                        extra_context: dict[str, Any] | None = None) -> Any:
        """The admin's form view is one transaction (on SQLite, the write lock from its start): a
        new domain's postmaster password is hashed before it begins, never inside."""
        if request.method == "POST" and object_id is None and self.has_add_permission(request):
            password = request.POST.get("postmaster_password", "")
            request.prepared_postmaster = (password, prepare_password(password))  # type: ignore[attr-defined]
        return super().changeform_view(request, object_id, form_url, extra_context)

    def create_object(self, request: HttpRequest, form: Any) -> Domain:
        """The domain and its required accounts, all or none (a full pack or pool refuses them)."""
        data = form.cleaned_data
        password: str | PreparedPassword = data["postmaster_password"]
        typed, prepared = getattr(request, "prepared_postmaster", ("", None))
        if prepared is not None and typed == password:
            password = prepared  # hashed before the admin's transaction
        return domain_create_with_accounts(pack=data["pack"], name=data["name"], password=password,
                                           acting_user=request.user)

    def change_object(self, request: HttpRequest, obj: Domain, form: Any) -> None:
        """Nothing of a domain is edited here (its name and pack are read-only)."""


def _when(moment: Any) -> str:
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT") if moment else "-"


class HealthCounts(TypedDict):
    """What HostHealthAdmin.get_queryset annotates each row with (None: no domain waits)."""

    pending: int | None
    failed: int | None
    oldest: datetime | None


@admin.register(HostHealth)
class HostHealthAdmin(ReadOnlyAdmin):
    """Each mail host's health, for the operators (and support, to look): whether its agent speaks
    (its last report, its heartbeat and the contract version it reads), the domains whose changes
    it lacks or refused, and since when the oldest change waits. A host silent for longer than
    services.HOST_SILENT_AFTER is flagged here (and in the log, once per silence): its agent is
    down, or cannot reach the broker. The rows are the reconcile's (services.check_hosts) and the
    agents' (services.heard_from): nothing here is typed in."""

    role_perms = {Role.SUPPORT: VIEW}
    list_display = COLUMNS = ("host", "state", "last_report", "contract_version", "pending_domains",
                              "failed_domains", "oldest_change")
    list_select_related = ["host"]
    fields = COLUMNS
    readonly_fields = COLUMNS

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        lagging = visible(DomainSync, request.user).filter(host_id=models.OuterRef("host_id"),
                                                          applied_revision__lt=models.F("domain__revision"))

        def one(query: models.QuerySet, value: Any) -> models.Subquery:
            return models.Subquery(query.order_by().values("host_id").annotate(v=value).values("v"))

        return super().get_queryset(request).annotate(
            pending=one(lagging, models.Count("pk")),
            failed=one(lagging.filter(error_revision__gt=0), models.Count("pk")),
            oldest=one(lagging, models.Min("pending_since")),
        )

    @admin.display(description=_("state"))
    def state(self, obj: HostHealth) -> str | Promise:
        if obj.silent_since is not None:
            return _("SILENT since %(when)s: its agent does not report") % {"when": _when(obj.silent_since)}
        if obj.last_report_at is None:
            return _("never heard from yet")
        return _("reporting")

    @admin.display(description=_("last report"), ordering="last_report_at")
    def last_report(self, obj: HostHealth) -> str:
        return _when(obj.last_report_at)

    @admin.display(description=_("domains waiting for a change"))
    def pending_domains(self, obj: WithAnnotations[HostHealth, HealthCounts]) -> int:
        return obj.pending or 0

    @admin.display(description=_("domains failed"))
    def failed_domains(self, obj: WithAnnotations[HostHealth, HealthCounts]) -> int:
        return obj.failed or 0

    @admin.display(description=_("oldest change not applied, since"))
    def oldest_change(self, obj: WithAnnotations[HostHealth, HealthCounts]) -> str:
        return _when(obj.oldest)


@admin.register(MailImport)
class MailImportAdmin(ReadOnlyAdmin):
    """Mail brought from an old server into a domain's mailboxes (hostlink.mailimport): its
    state, what each mailbox received and its error, as the mail host reported them."""

    role_perms = {Role.SUPPORT: VIEW}
    list_display = ["domain", "state", "mailbox_count", "copied", "attempts", "created_at", "finished_at"]
    list_filter = ["state"]
    list_select_related = ["domain"]
    search_fields = ["domain__name"]
    fields = readonly_fields = FIELDS = ("domain", "state", "host", "revision", "mailbox_count", "copied",
                                         "per_mailbox", "error", "attempts", "seconds", "created_at", "sent_at",
                                         "finished_at")

    @admin.display(description=_("mailboxes"))
    def mailbox_count(self, obj: MailImport) -> int:
        return len(obj.mailboxes)

    @admin.display(description=_("per mailbox"))
    def per_mailbox(self, obj: MailImport) -> str:
        """One line a mailbox: its messages copied, already there, its folders, its error."""
        lines = []
        for result in obj.results:
            if not isinstance(result, dict):
                continue
            line = _("%(address)s: %(copied)s copied, %(present)s already there, folders: %(folders)s") % {
                "address": result.get("address", ""), "copied": result.get("copied", 0),
                "present": result.get("present", 0), "folders": ", ".join(map(str, result.get("folders", [])))}
            if result.get("error"):
                line += " — " + _("error: %(error)s") % {"error": result["error"]}
            lines.append(line)
        return "\n".join(lines)
