"""The tables of a domain's lists and of a list's members, paged by the database (see the views)."""

from __future__ import annotations

from typing import Any

import django_tables2 as tables
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from hosting.tables import PanelTable
from lists.models import ListMember, MailingList
from mail.tables import labelled, row_url


class ListTable(PanelTable):
    name = tables.Column(verbose_name=_("Mailing list name"), accessor="name")
    posting = tables.Column(verbose_name=_("Posting messages"), accessor="posting", orderable=False,
                            attrs=labelled(_("Posting messages")))
    subscribers = tables.Column(verbose_name=_("Show subscribers"), accessor="subscriber_count", orderable=False,
                                attrs=labelled(_("Subscribers")))
    moderators = tables.Column(verbose_name=_("Show moderators"), accessor="pk", orderable=False)
    digest = tables.Column(verbose_name=_("Show digest subscribers"), accessor="pk", orderable=False)
    modify = tables.Column(verbose_name=_("Modify"), accessor="pk", orderable=False)
    delete = tables.Column(verbose_name=_("Delete"), accessor="pk", orderable=False)

    class Meta(PanelTable.Meta):
        per_page = 25
        orderable = False

    def __init__(self, *args: Any, domain_pk: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.modify_url = row_url("lists:list_modify", domain_pk)
        self.delete_url = row_url("lists:list_delete", domain_pk)
        self.members_url = row_url("lists:members", domain_pk)

    def render_name(self, record: MailingList) -> str:
        return format_html('<a href="{}">{}</a>', self.modify_url.format(record.pk), record.name)

    def render_posting(self, record: MailingList) -> str:
        return record.get_posting_display()

    def render_subscribers(self, record: MailingList) -> str:
        return format_html('<a href="{}">{}</a>', self.members_url.format(record.pk), record.subscriber_count)

    def render_moderators(self, record: MailingList) -> str:
        return format_html('<a href="{}?kind=moderator">{}</a>', self.members_url.format(record.pk), _("Moderators"))

    def render_digest(self, record: MailingList) -> str:
        return format_html('<a href="{}?kind=digest">{}</a>', self.members_url.format(record.pk),
                           _("Digest subscribers"))

    def render_modify(self, record: MailingList) -> str:
        return format_html('<a href="{}">{}</a>', self.modify_url.format(record.pk), _("Modify"))

    def render_delete(self, record: MailingList) -> str:
        return format_html('<a href="{}">{}</a>', self.delete_url.format(record.pk), _("Delete"))


class MemberTable(PanelTable):
    address = tables.Column(verbose_name=_("E-mail address"), accessor="address")
    since = tables.Column(verbose_name=_("Since"), accessor="created_at", orderable=False,
                          attrs=labelled(_("Since")))
    remove = tables.Column(verbose_name=_("Delete"), accessor="pk", orderable=False, empty_values=())

    class Meta(PanelTable.Meta):
        per_page = 50
        orderable = False

    def __init__(self, *args: Any, remove_url: str, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.remove_url, self.kind = remove_url, kind

    def render_since(self, value: Any) -> str:
        return value.date().isoformat() if value else "—"

    def render_remove(self, record: ListMember) -> str:
        """A POST form of its own for each row (CSRF token from the page's form, see the template)."""
        return format_html(
            '<button type="submit" class="button small" form="remove-form" name="address" value="{}" '
            'aria-label="{} {}">{}</button>', record.address, _("Delete"), record.address, _("Delete"))
