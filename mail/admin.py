"""The mailboxes' page of the scoped admin (see hosting/admin.py for the base)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from hosting.admin import VIEW, ServiceForm, TenantAdmin
from hosting.roles import Role
from mail.models import POSTMASTER, Mailbox
from mail.services import (
    mailbox_delete,
    mailbox_set_access,
    mailbox_set_admin,
    mailbox_set_quota,
    mailbox_set_real_name,
)
from provisioning.models import sync_state_label

MAILBOX_ACCESS = ["enabled", "allow_pop3", "allow_imap", "allow_smtp"]
MAILBOX_EDITABLE = ["real_name", "quota_mb", "is_admin", *MAILBOX_ACCESS]
MAILBOX_FIELDS = (
    "domain", "local_part", *MAILBOX_EDITABLE, "routing", "forward_to", "keep_copy",
    "vacation_enabled", "vacation_subject", "vacation_message", "vacation_start", "vacation_end",
    "vacation_days", "revision", "quota_used_bytes", "mail_host_state",
)


class MailboxForm(ServiceForm):
    class Meta:
        model = Mailbox
        fields = MAILBOX_EDITABLE


@admin.register(Mailbox)
class MailboxAdmin(TenantAdmin):
    """Only what a service function changes is edited here; the name, domain, routing and
    vacation are read-only (the domain's own screens change routing and vacation); the password
    hash is never shown."""

    role_perms = {Role.SUPPORT: VIEW, Role.RESELLER: VIEW}
    service_saves = True
    form = MailboxForm
    list_display = ["local_part", "domain", "real_name", "quota_mb", "is_admin", "enabled", "mail_host_state"]
    list_select_related = ["domain__sync"]
    search_fields = ["local_part", "domain__name", "real_name"]
    fields = MAILBOX_FIELDS
    readonly_fields = [name for name in MAILBOX_FIELDS if name not in MAILBOX_EDITABLE]

    def change_object(self, request: HttpRequest, obj: Mailbox, form: Any) -> None:
        """Each changed field through its service function (one audit row and revision each)."""
        data, changed, user = form.cleaned_data, set(form.changed_data), request.user
        if "real_name" in changed:
            mailbox_set_real_name(mailbox=obj, real_name=data["real_name"], acting_user=user)
        if "quota_mb" in changed:
            mailbox_set_quota(mailbox=obj, quota_mb=data["quota_mb"], acting_user=user)
        if "is_admin" in changed:
            mailbox_set_admin(mailbox=obj, is_admin=data["is_admin"], acting_user=user)
        access = {name: data[name] for name in MAILBOX_ACCESS if name in changed}
        if access:
            mailbox_set_access(mailbox=obj, acting_user=user, **access)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # mailboxes are created with their password in the domain's screens

    service_deletes = True

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.local_part == POSTMASTER:
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj: Mailbox) -> None:
        mailbox_delete(mailbox=obj, acting_user=request.user)  # the host removes it and its maildir

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for mailbox in queryset.select_related("domain"):
            try:
                mailbox_delete(mailbox=mailbox, acting_user=request.user)
            except ValidationError as error:
                self.message_user(request, f"{mailbox}: {' '.join(error.messages)}", level="error")

    @admin.display(description=_("on the mail host"))
    def mail_host_state(self, obj: Mailbox) -> str:
        return sync_state_label(getattr(obj.domain, "sync", None), obj.revision)
