"""The tables of a domain's screens. Their rows come from `visible_to` (see the views), one page
at a time: the database pages them (django-tables2's paginator), whatever the domain holds."""

from __future__ import annotations

from typing import Any

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from hosting.tables import PanelTable
from mail.models import Forward, Mailbox, Robot

MB = 1024 * 1024
_PK = 987654321  # stands for a row's pk in a reversed URL (see row_url)


def row_url(name: str, domain_pk: int) -> str:
    """The URL of `name` for the rows of one domain, with "{}" where the row's pk goes: reversed
    once per table, not once per cell (a page of 50 rows has 200 links)."""
    return reverse(name, args=[domain_pk, _PK]).replace(str(_PK), "{}")


def quota_label(used_bytes: int, quota_mb: int) -> str:
    """QmailAdmin's "Utilisé / Quota (Mo)": "0.05 / 100", or "0.05 / illimité"."""
    used = f"{used_bytes / MB:.2f}"
    return f"{used} / {quota_mb}" if quota_mb else f"{used} / {_('unlimited')}"


def labelled(title: Any) -> dict[str, dict[str, Any]]:
    """A cell that names its column (shown before it on a phone, where the header is hidden)."""
    return {"td": {"data-label": title}}


class MailboxTable(PanelTable):
    account = tables.Column(verbose_name=_("POP account"), accessor="local_part", order_by=("local_part",))
    real_name = tables.Column(verbose_name=_("Comment"), accessor="real_name", orderable=False,
                              attrs=labelled(_("Comment")))
    quota = tables.Column(verbose_name=_("Used / Quota (MB)"), accessor="quota_mb", orderable=False,
                          attrs=labelled(_("Used / Quota (MB)")))
    modify = tables.Column(verbose_name=_("Modify user"), accessor="pk", orderable=False)
    delete = tables.Column(verbose_name=_("Delete account"), accessor="pk", orderable=False)
    catchall = tables.Column(verbose_name=_("Catch-all: deliver unknown e-mail to this account"),
                             accessor="local_part", orderable=False, attrs=labelled(_("Catch-all")))

    class Meta(PanelTable.Meta):
        per_page = 50
        orderable = False

    def __init__(self, *args: Any, domain_pk: int, catchall_local: str | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.catchall_local = catchall_local
        self.modify_url = row_url("mail:mailbox_modify", domain_pk)
        self.delete_url = row_url("mail:mailbox_delete", domain_pk)

    def render_account(self, record: Mailbox) -> str:
        url = self.modify_url.format(record.pk)
        disabled = format_html(' <span class="badge">{}</span>', _("disabled")) if not record.enabled else ""
        return format_html('<a href="{}">{}</a>{}', url, record.local_part, disabled)

    def render_real_name(self, value: str) -> str:
        return value or "—"

    def render_quota(self, record: Mailbox) -> str:
        label = quota_label(record.quota_used_bytes, record.quota_mb)
        if not record.quota_mb:
            return label
        percent = min(100, round(100 * record.quota_used_bytes / (record.quota_mb * MB)))
        return format_html('{} <meter min="0" max="100" value="{}" aria-label="{}">{} %</meter>', label,
                           percent, _("space used"), percent)

    def render_modify(self, record: Mailbox) -> str:
        url = self.modify_url.format(record.pk)
        return format_html('<a href="{}">{}</a>', url, _("Modify"))

    def render_delete(self, record: Mailbox) -> str:
        if record.local_part == "postmaster":
            return "—"
        url = self.delete_url.format(record.pk)
        return format_html('<a href="{}">{}</a>', url, _("Delete"))

    def render_catchall(self, record: Mailbox) -> str:
        checked = " checked" if record.local_part == self.catchall_local else ""
        return format_html(
            '<input type="radio" name="mailbox" value="{}" form="catchall-form" aria-label="{}"{}>',
            record.local_part, record.local_part, checked)


class ForwardTable(PanelTable):
    delete = tables.Column(verbose_name=_("Delete"), accessor="pk", orderable=False)
    modify = tables.Column(verbose_name=_("Modify"), accessor="pk", orderable=False)
    name = tables.Column(verbose_name=_("Name"), accessor="local_part")
    destinations = tables.Column(verbose_name=_("Destination"), accessor="destinations", orderable=False)

    class Meta(PanelTable.Meta):
        per_page = 25
        orderable = False

    def __init__(self, *args: Any, domain_pk: int, domain_name: str, mailboxes: set[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.domain_name, self.mailboxes = domain_name, mailboxes
        self.modify_url = row_url("mail:forward_modify", domain_pk)
        self.delete_url = row_url("mail:forward_delete", domain_pk)

    def render_delete(self, record: Forward) -> str:
        url = self.delete_url.format(record.pk)
        return format_html('<a href="{}">{}</a>', url, _("Delete"))

    def render_modify(self, record: Forward) -> str:
        url = self.modify_url.format(record.pk)
        return format_html('<a href="{}">{}</a>', url, _("Modify"))

    def render_destinations(self, record: Forward) -> str:
        return format_html_join(", ", "{}{}", ((d, self.broken(d)) for d in record.destinations))

    def broken(self, destination: str) -> str:
        """A local destination whose mailbox no longer exists is flagged."""
        local, _at, host = destination.rpartition("@")
        if host == self.domain_name and local not in self.mailboxes:
            return format_html(' <strong class="error">({})</strong>', _("no such account"))
        return ""


class RobotTable(PanelTable):
    name = tables.Column(verbose_name=_("Mail robot name"), accessor="local_part")
    copy_to = tables.Column(verbose_name=_("Send copy to"), accessor="copy_to")
    subject = tables.Column(verbose_name=_("Subject"), accessor="subject")
    modify = tables.Column(verbose_name=_("Modify"), accessor="pk", orderable=False)
    delete = tables.Column(verbose_name=_("Delete"), accessor="pk", orderable=False)

    class Meta(PanelTable.Meta):
        per_page = 25
        orderable = False

    def __init__(self, *args: Any, domain_pk: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.modify_url = row_url("mail:robot_modify", domain_pk)
        self.delete_url = row_url("mail:robot_delete", domain_pk)

    def render_copy_to(self, value: str) -> str:
        return value or "—"

    def render_modify(self, record: Robot) -> str:
        url = self.modify_url.format(record.pk)
        return format_html('<a href="{}">{}</a>', url, _("Modify"))

    def render_delete(self, record: Robot) -> str:
        url = self.delete_url.format(record.pk)
        return format_html('<a href="{}">{}</a>', url, _("Delete"))
