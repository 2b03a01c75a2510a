"""The Django admin, scoped: resellers see and sell only within their own tree and pool,
support agents see everyone (every act audited), the operator sees everything.

This module holds the scoped base (TenantAdmin, ServiceForm) and the tenant tree's pages; the
pages that reach the mail hosts live in the apps above: mailboxes in mail/admin.py, packs and
domains (moves, sync state, the postmaster created with a domain) in provisioning/admin.py.

Every queryset and foreign-key choice comes from `visible_to(request.user)`; permissions come
from the seat's role, not from per-user permission rows.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import NON_FIELD_ERRORS, ImproperlyConfigured, PermissionDenied, ValidationError
from django.db import models, transaction
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from hosting import audit
from hosting.access import is_tenant_model, visible
from hosting.audit import Action
from hosting.models import AuditEvent, Customer, Language, MailHost, Plan, Reseller, User
from hosting.roles import Role, role_of
from hosting.services import (
    PLAN_LIMITS,
    customer_create,
    customer_update,
    plan_create,
    plan_update,
)

admin.site.site_header = _("Mail hosting administration")
admin.site.site_title = _("Mail hosting")
admin.site.index_title = _("Administration")

ALL = frozenset({"view", "add", "change", "delete"})
VIEW = frozenset({"view"})


def _form_error(form: forms.BaseForm, error: ValidationError) -> Any:
    """A service's error as the form can show it: on its fields when the form has them."""
    if hasattr(error, "error_dict") and set(error.error_dict) - {NON_FIELD_ERRORS} <= set(form.fields):
        return error
    return error.messages


class ServiceForm(forms.ModelForm):
    """An admin form whose last validation step is the service call that writes the change.

    The admin's changeform_view is atomic; the call runs in a savepoint inside it, so a
    ValidationError from any service becomes an error on the form, in the service's own words,
    and leaves nothing written. The admin then only takes the saved object (`form.instance`).
    Such an admin has no editable inline: its formsets would be validated after the write.
    """

    save_with: Callable[[ServiceForm], models.Model] | None = None  # set by TenantAdmin.get_form

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # BaseModelForm's, missing from django-stubs
        if self.save_with is None or self.errors:
            return
        try:
            with transaction.atomic():
                self.instance = self.save_with(self)
        except ValidationError as error:
            self.add_error(None, _form_error(self, error))


class TenantAdmin(admin.ModelAdmin):
    """Base of every admin page of a tenant model.

    `role_perms` says what each non-operator role may do; the operator may do everything.
    With `service_saves`, adds and changes are service functions (`create_object`,
    `change_object`, called while the form is validated; the services write the audit rows);
    with `service_deletes`, deletes are (`delete_model`, `delete_queryset`).
    """

    role_perms: dict[Role, frozenset[str]] = {}
    service_saves = False
    service_deletes = False

    def _perms(self, request: HttpRequest) -> frozenset[str]:
        role = role_of(request.user)
        if role == Role.OPERATOR:
            return ALL
        return self.role_perms.get(role, frozenset())

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(self._perms(request))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(self._perms(request))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return "add" in self._perms(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return "change" in self._perms(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return "delete" in self._perms(request)

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        qs = visible(self.model, request.user)
        if self.list_select_related and isinstance(self.list_select_related, (list, tuple)):
            qs = qs.select_related(*self.list_select_related)
        return qs

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if is_tenant_model(db_field.related_model):
            kwargs["queryset"] = visible(db_field.related_model, request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if self.service_saves:
            if not issubclass(form, ServiceForm):
                raise ImproperlyConfigured(f"{type(self).__name__}: its forms must be ServiceForms")
            form.save_with = staticmethod(partial(self.save_with_services, request))
        return form

    def save_with_services(self, request: HttpRequest, form: ServiceForm) -> models.Model:
        """Called by the form as its last validation step, inside the admin's transaction."""
        if form.instance.pk is None:
            return self.create_object(request, form)
        current = self.get_object(request, str(form.instance.pk))  # as stored, not as posted
        if current is None:
            raise PermissionDenied
        self.change_object(request, current, form)
        current.refresh_from_db()
        return current

    def create_object(self, request: HttpRequest, form: Any) -> models.Model:
        """Create the object from `form.cleaned_data` through its service function."""
        raise NotImplementedError

    def change_object(self, request: HttpRequest, obj: Any, form: Any) -> None:
        """Apply `form.cleaned_data` to `obj` (as stored) through the service functions."""
        raise NotImplementedError

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if self.service_saves:
            return  # saved by the service functions while the form was validated
        obj._audit_fields = list(form.changed_data)
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        if not self.service_saves:
            super().save_related(request, form, formsets, change)

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if not self.service_saves:  # else the service function already wrote the audit row
            audit.record(request.user, Action.of(obj, "create"), obj, via="admin")
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if not self.service_saves:  # else the service functions already wrote the audit rows
            audit.record(request.user, Action.of(obj, "change"), obj, via="admin",
                         fields=getattr(obj, "_audit_fields", []))
        return super().log_change(request, obj, message)

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        if not self.service_deletes:  # the service function already wrote the audit row
            for obj in queryset:
                audit.record(request.user, Action.of(obj, "delete"), obj, via="admin")
        return super().log_deletions(request, queryset)


def _force_reseller(request: HttpRequest, form: Any) -> None:
    """Reseller staff always create in their own tree: the reseller field is theirs."""
    if role_of(request.user) == Role.RESELLER and "reseller" in form.base_fields:
        del form.base_fields["reseller"]


def _reseller_for(request: HttpRequest, form: Any) -> Reseller | None:
    """The reseller of a new customer or plan: the seat's own for reseller staff."""
    if role_of(request.user) == Role.RESELLER and isinstance(request.user, User):
        return request.user.reseller
    return form.cleaned_data.get("reseller")


@admin.register(MailHost)
class MailHostAdmin(TenantAdmin):
    role_perms = {Role.SUPPORT: VIEW}
    list_display = ["name", "fqdn", "queue", "doveadm_port", "active"]
    search_fields = ["name", "fqdn"]
    fieldsets = [
        (None, {"fields": ["name", "fqdn", "active", "doveadm_port"]}),
        (_("The users' mail client settings"), {
            "description": _("What the page “Mail client settings” shows the users of this host's domains."),
            "fields": [("imap_host", "imap_port", "imap_security"), ("pop3_host", "pop3_port", "pop3_security"),
                       ("smtp_host", "smtp_port", "smtp_security"), "webmail_url"],
        }),
    ]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["name"] if obj is not None else []  # the name is its agent's queue


@admin.register(Reseller)
class ResellerAdmin(TenantAdmin):
    role_perms = {Role.SUPPORT: VIEW, Role.RESELLER: VIEW}
    list_display = ["name", "max_customers", "max_domains", "max_mailboxes"]
    search_fields = ["name"]


class CustomerForm(ServiceForm):
    class Meta:
        model = Customer
        fields = ["reseller", "name", "email", "language"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "language" in self.fields:
            self.fields["language"].required = False  # not sent (an older form, a script): kept as it is


@admin.register(Customer)
class CustomerAdmin(TenantAdmin):
    role_perms = {Role.SUPPORT: frozenset({"view", "change"}), Role.RESELLER: ALL}
    service_saves = True
    form = CustomerForm
    list_display = ["name", "email", "reseller", "created_at"]
    list_select_related = ["reseller"]
    search_fields = ["name", "email"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        _force_reseller(request, form)
        return form

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["reseller"] if obj is not None else []

    def create_object(self, request: HttpRequest, form: Any) -> Customer:
        data = form.cleaned_data
        return customer_create(reseller=_reseller_for(request, form), name=data["name"],
                               email=data["email"], language=data.get("language") or Language.FRENCH,
                               acting_user=request.user)

    def change_object(self, request: HttpRequest, obj: Customer, form: Any) -> None:
        data = form.cleaned_data
        customer_update(customer=obj, name=data["name"], email=data["email"], acting_user=request.user)


class PlanForm(ServiceForm):
    class Meta:
        model = Plan
        fields = ["reseller", "name", *PLAN_LIMITS]


@admin.register(Plan)
class PlanAdmin(TenantAdmin):
    role_perms = {Role.SUPPORT: VIEW, Role.RESELLER: ALL}
    service_saves = True
    form = PlanForm
    list_display = ["name", "reseller", *PLAN_LIMITS]
    list_select_related = ["reseller"]
    search_fields = ["name"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        _force_reseller(request, form)
        return form

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["reseller"] if obj is not None else []

    def create_object(self, request: HttpRequest, form: Any) -> Plan:
        data = form.cleaned_data
        return plan_create(reseller=_reseller_for(request, form), name=data["name"], acting_user=request.user,
                           **{f: data[f] for f in PLAN_LIMITS if f in data})

    def change_object(self, request: HttpRequest, obj: Plan, form: Any) -> None:
        data = form.cleaned_data
        plan_update(plan=obj, name=data["name"], acting_user=request.user,
                    **{f: data[f] for f in PLAN_LIMITS if f in data})


class ReadOnlyAdmin(TenantAdmin):
    """A page of records written by the panel itself (the audit log, the hosts' health): looked
    at, never added, changed or deleted here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    role_perms = {Role.SUPPORT: VIEW}
    list_display = ["created_at", "actor_label", "actor_role", "action", "domain_name", "target_type", "target_repr"]
    list_filter = ["actor_role", "action"]
    search_fields = ["actor_label", "target_repr", "action", "domain_name"]
    date_hierarchy = "created_at"


class ResellerUserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ["email", "first_name", "last_name", "customer"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["customer"].required = True


class ResellerUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = ["email", "first_name", "last_name", "customer", "is_active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["customer"].required = True


@admin.register(User)
class UserAdmin(TenantAdmin, DjangoUserAdmin):
    """The operator manages everyone; a reseller manages its customers' users (never staff)."""

    role_perms = {
        Role.SUPPORT: VIEW,
        Role.RESELLER: frozenset({"view", "add", "change"}),
    }
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "reseller", "customer", "is_staff", "is_active"]
    list_select_related = ["reseller", "customer"]
    list_filter = ["is_staff", "is_superuser", "is_active"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Personal info"), {"fields": ["first_name", "last_name"]}),
        (_("Tenant"), {"fields": ["reseller", "customer"]}),
        (_("Permissions"), {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
        (_("Important dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]}),
        (_("Tenant"), {"fields": ["reseller", "customer", "is_staff"]}),
    ]
    reseller_fieldsets = [(None, {"fields": ["email", "first_name", "last_name", "customer", "is_active"]})]
    reseller_add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "first_name", "last_name", "customer",
                                                "password1", "password2"]})
    ]

    def _is_reseller(self, request: HttpRequest) -> bool:
        return role_of(request.user) == Role.RESELLER

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if self._is_reseller(request):
            return self.reseller_add_fieldsets if obj is None else self.reseller_fieldsets
        return super().get_fieldsets(request, obj)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if self._is_reseller(request):
            kwargs["form"] = ResellerUserCreationForm if obj is None else ResellerUserChangeForm
            kwargs["fields"] = None
        return super().get_form(request, obj, change, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and self._is_reseller(request) and (obj.is_staff or obj.reseller_id):
            return False  # a reseller never edits staff accounts, its own included
        return super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        if self._is_reseller(request) and isinstance(request.user, User):
            obj.is_staff = obj.is_superuser = False
            obj.reseller = None
            if obj.customer is None or obj.customer.reseller_id != request.user.reseller_id:
                raise ValidationError(_("Choose one of your customers."))
        super().save_model(request, obj, form, change)
