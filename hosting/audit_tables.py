"""The table of a domain's audit page: one page of events at a time, newest first, each cell
read from the event's own row (no query per row)."""

from __future__ import annotations

from typing import Any

import django_tables2 as tables
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from hosting import audit_display
from hosting.models import AuditEvent
from hosting.tables import PanelTable

PER_PAGE = 50


class AuditTable(PanelTable):
    when = tables.DateTimeColumn(verbose_name=_("When"), accessor="created_at", short=False)
    who = tables.Column(verbose_name=_("Who"), accessor="actor_label", empty_values=())
    what = tables.Column(verbose_name=_("What"), accessor="action")
    target = tables.Column(verbose_name=_("Object"), accessor="target_repr", empty_values=())
    change = tables.Column(verbose_name=_("Before → after"), accessor="detail", empty_values=())

    class Meta(PanelTable.Meta):
        per_page = PER_PAGE
        orderable = False
        empty_text = _("Nothing has been done on this domain yet.")

    def __init__(self, *args: Any, caption: Any = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.caption = caption

    def render_who(self, record: AuditEvent) -> str:
        return audit_display.who(record)

    def render_what(self, value: str) -> str:
        return audit_display.action_label(value)

    def render_target(self, record: AuditEvent) -> SafeString | str:
        kind = audit_display.object_kind(record)
        name = record.target_repr or audit_display.EMPTY
        return format_html('<span class="kind">{}</span> {}', kind, name) if kind else name

    def render_change(self, record: AuditEvent) -> SafeString | str:
        return audit_display.changes_html(record)
