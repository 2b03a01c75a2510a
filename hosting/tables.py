"""Tables of the client area. Every table's rows come from `visible_to` (see the views)."""

from __future__ import annotations

from typing import Any

import django_tables2 as tables
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from hosting.models import Pack
from hosting.usage import usage_label


class PanelTable(tables.Table):
    """The base of every table: one template, one look, a caption read by screen readers."""

    caption: Any = ""

    class Meta:
        template_name = "tables/table.html"
        attrs = {"class": "table"}
        per_page = 25


class PackTable(PanelTable):
    pack = tables.Column(
        verbose_name=_("Pack"), accessor="pk", linkify=("hosting:pack", {"pk": tables.A("pk")})
    )
    plan = tables.Column(verbose_name=_("Plan"), accessor="plan__name")
    customer = tables.Column(verbose_name=_("Customer"), accessor="customer__name")
    mail_host = tables.Column(verbose_name=_("Mail host"), accessor="mail_host__name")
    domains = tables.Column(verbose_name=_("Domains"), accessor="used_domains", orderable=False)
    mailboxes = tables.Column(verbose_name=_("POP accounts"), accessor="used_mailboxes", orderable=False)

    caption = _("Your packs")

    class Meta(PanelTable.Meta):
        model = Pack
        fields: list[str] = []
        sequence = ["pack", "plan", "customer", "mail_host", "domains", "mailboxes"]

    def render_pack(self, record: Pack) -> str:
        return str(record)

    def render_domains(self, record: Pack) -> str:
        return usage_label(record.used_domains, record.plan.max_domains)

    def render_mailboxes(self, record: Pack) -> str:
        return format_html("{}", usage_label(record.used_mailboxes, record.plan.max_mailboxes))
