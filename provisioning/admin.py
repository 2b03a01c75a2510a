"""The packs' and domains' pages of the scoped admin (see hosting/admin.py for the base): the
pages whose acts reach the mail hosts (a pack's move, a domain's create with its postmaster,
its delete, its sync state and "send again")."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from hosting import audit
from hosting.access import visible
from hosting.admin import ALL, ServiceForm, TenantAdmin
from hosting.audit import Action
from hosting.models import Domain, Pack
from hosting.roles import Role, role_of
from hosting.services import pack_create, pack_update
from hosting.validators import normalize_domain
from mail.accounts import domain_create_with_accounts
from mail.validators import check_new_password
from provisioning.domains import domain_delete, pack_move
from provisioning.models import DomainMove, sync_state_label
from provisioning.services import retry


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
        return normalize_domain(self.cleaned_data["name"])

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


@admin.register(Domain)
class DomainAdmin(TenantAdmin):
    role_perms = {Role.SUPPORT: frozenset({"view", "change"}), Role.RESELLER: frozenset({"view", "add"})}
    service_saves = True
    list_display = ["unicode_name", "name", "pack", "revision", "mail_host_state", "last_move", "created_at"]
    list_select_related = ["pack__plan", "pack__customer", "sync"]
    search_fields = ["name"]
    actions = ["retry_provisioning"]

    @admin.display(description=_("on the mail host"))
    def mail_host_state(self, obj: Domain) -> str:
        return sync_state_label(getattr(obj, "sync", None), obj.revision)

    @admin.display(description=_("e-mail of the domain"))
    def panel_screens(self, obj: Domain) -> str:
        """The domain's main menu, where support and resellers act on the domain as its admin would
        (each act audited under their own name)."""
        return format_html('<a href="{}">{}</a>', reverse("mail:domain", args=[obj.pk]),
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

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        if role_of(request.user) not in (Role.OPERATOR, Role.SUPPORT):
            actions.pop("retry_provisioning", None)
        return actions

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        kwargs["form"] = DomainForm if obj is None else DomainChangeForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["name", "pack", "revision", "mail_host_state", "last_move", "panel_screens"] if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["pack", "name", "postmaster_password"]
        return ["name", "panel_screens", "pack", "revision", "mail_host_state", "last_move"]

    service_deletes = True

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        # The domain takes its mailboxes (postmaster too) with it: no per-mailbox permission.
        to_delete, model_count, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return to_delete, model_count, set(), protected

    def delete_model(self, request: HttpRequest, obj: Domain) -> None:
        domain_delete(domain=obj, acting_user=request.user)  # its mail host removes it too

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for domain in queryset:
            domain_delete(domain=domain, acting_user=request.user)

    def create_object(self, request: HttpRequest, form: Any) -> Domain:
        """The domain and its required accounts, all or none (a full pack or pool refuses them)."""
        data = form.cleaned_data
        return domain_create_with_accounts(pack=data["pack"], name=data["name"],
                                           password=data["postmaster_password"], acting_user=request.user)

    def change_object(self, request: HttpRequest, obj: Domain, form: Any) -> None:
        """Nothing of a domain is edited here (its name and pack are read-only)."""
