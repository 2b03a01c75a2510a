"""Every table of the front: the base (one template, one look, capped page sizes), the client
area's packs, a domain's POP accounts, forwards, robots, lists and list members, its audit log.
Every table's rows come from `visible_to` (see the views), one page at a time: the database pages
them (django-tables2's paginator), whatever the domain holds; each cell is read from its row (no
query per row)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import datetime
from html import escape as escape_html
from typing import TYPE_CHECKING, Any, TypedDict

import django_tables2 as tables
from django.core.exceptions import FieldDoesNotExist
from django.core.paginator import Paginator
from django.db.models import QuerySet, Subquery
from django.urls import reverse
from django.utils import formats
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import SafeData, SafeString, mark_safe
from django.utils.timezone import template_localtime  # type: ignore[attr-defined]  # Django's; not in the stubs
from django.utils.translation import gettext_lazy as _
from django_tables2.columns.base import BoundColumn
from django_tables2.rows import BoundRow, BoundRows

from hosting import audit_display
from hosting.models import AuditEvent, Pack, PackUsage
from hosting.usage import usage_label
from lists.models import ListMember, MailingList
from mail.models import Forward, Mailbox, Robot
from mailhost import quota_warning
from screens.forms.lists import TEXT_LABELS

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations  # django-stubs' (a development requirement): types only

# The page sizes a table accepts from `?per_page=`; any other value gives the table's own default.
PAGE_SIZES = (25, 50, 100, 200)
SEEK_FROM = 1000  # rows before a page from which it is found by its first value (`PanelTable.seek_by`)


def shown(cell: Any, localize: bool | None = None) -> str:
    """A cell's content as the template's `{{ cell }}` writes it (`|localize` / `|unlocalize`
    when the column asks): in the current time zone and language, escaped unless safe."""
    if isinstance(cell, SafeData):
        return str(cell)  # a SafeString stays one
    if not isinstance(cell, str):
        cell = str(formats.localize(template_localtime(cell), use_l10n=localize))
    return escape_html(cell)  # what Django's escape does, without its check for lazy strings


class PanelTable(tables.Table):
    """The base of every table: one template, one look, a caption read by screen readers, and
    pages of a size from PAGE_SIZES whatever the URL asks.

    The rows are written by `rows_html`, not by django-tables2's template: that one renders each
    cell through the template engine (its loop, its tags, a bound column's attributes computed
    again for every cell), which made most of a page's CPU (a page of 50 accounts has 300 cells).
    The HTML is the same (tests/test_table_rows.py compares both): each cell is what the table's
    `render_<column>` or the column makes of the row's value, or the column's default for an
    empty one; django-tables2 still gives the columns, the headers and the pagination."""

    caption: Any = ""
    seek_by = ""  # the column the rows are ordered by, unique among them (see `seek`)

    class Meta:
        template_name = "tables/table.html"
        attrs = {"class": "table"}
        per_page = 25

    def __init__(self, *args: Any, count: int | None = None, **kwargs: Any) -> None:
        """`count`: how many rows there are, when the view knows it already (not counted again)."""
        super().__init__(*args, **kwargs)
        self.known_count = count

    def paginate(self, paginator_class: type[Paginator] = Paginator, per_page: int | None = None,
                 page: Any = 1, *args: Any, **kwargs: Any) -> PanelTable:
        """django-tables2's paginate (which RequestConfig calls with `?per_page=` and `?page=` as
        given) held to PAGE_SIZES (else the table's default size) and to the pages there are: a
        page below 1 or not a number is the first, one beyond the last is the last. Never raises."""
        size = per_page if per_page in PAGE_SIZES else self._meta.per_page
        self.paginator = paginator_class(self.rows, size, *args, **kwargs)
        if self.known_count is not None:
            self.paginator.count = self.known_count
        try:
            number = int(page)
        except (TypeError, ValueError):
            number = 1
        self.page = self.paginator.page(max(1, min(number, self.paginator.num_pages)))
        self.seek()
        return self

    def seek(self) -> None:
        """A page far down the rows (SEEK_FROM rows or more before it), when they are ordered by
        `seek_by` alone, is read from its first value (`seek_by >= (... OFFSET n LIMIT 1)`, which
        PostgreSQL reads from the index alone) instead of an OFFSET that reads every row it skips:
        the last page of 100,000 accounts 12 ms → 5 ms. The same rows (tests/test_list_counts.py)."""
        rows, skipped = getattr(self.data, "data", None), self.page.start_index() - 1
        if (not self.seek_by or skipped < SEEK_FROM or not isinstance(rows, QuerySet)
                or tuple(rows.query.order_by) != (self.seek_by,)):
            return
        first = rows.values_list(self.seek_by, flat=True)[skipped:skipped + 1]
        page = rows.filter(**{f"{self.seek_by}__gte": Subquery(first)})[:self.paginator.per_page]
        self.page.object_list = BoundRows(data=page, table=self, pinned_data=self.rows.pinned_data)

    def rows_html(self) -> SafeString:
        """The body's rows of this page (see the class): `<tr>` with its "even" / "odd" class, a
        `<td>` with the column's attributes for each cell, or the empty text in one cell."""
        columns = [(column, self.cell_writer(column)) for column in self.columns]
        static = {column.name: column.attrs["td"].as_html() for column, _write in columns
                  if not any(callable(v) for v in column.column.attrs.get("td", {}).values())}
        lines = []
        for row in self.paginated_rows:
            cells = []
            for column, write in columns:
                cell = write(row)
                if column.name in static:
                    attrs = static[column.name]
                else:  # attributes computed from the row (django-tables2's current_record)
                    column.current_record, column.current_value = row.record, cell
                    attrs = column.attrs["td"].as_html()
                cells.append(f"<td {attrs}>{cell}</td>")
            attrs = row.attrs.as_html() if self.row_attrs else f'class="{row.get_even_odd_css_class()}"'
            lines.append(f"<tr {attrs}>{''.join(cells)}</tr>")
        if not lines and self.empty_text:
            lines.append(f'<tr><td colspan="{len(self.columns)}">{conditional_escape(self.empty_text)}</td></tr>')
        return mark_safe("\n".join(lines))  # noqa: S308 - every cell escaped by `shown`

    def cell_writer(self, column: BoundColumn) -> Callable[[BoundRow], str]:
        """How a cell of `column` is written. The usual column (rows from a queryset; one plain
        field of the row, without choices; a plain `Column` or a `render_<name>` taking `value`
        and/or `record`; no link) is written here; any other through django-tables2's own
        `BoundRow.get_cell`, as its template does."""
        render, localize = column.render, column.localize
        wanted = inspect.signature(render).parameters
        name, model = str(column.accessor), getattr(self.data, "model", None)
        try:
            plain_field = model is not None and not model._meta.get_field(name).choices
        except (AttributeError, FieldDoesNotExist):  # no model, or not a field (a property, an annotation...)
            plain_field = model is not None and "__" not in name and "." not in name
        if (column.link or not plain_field or not set(wanted) <= {"value", "record"}
                or (type(column.column) is not tables.Column and render == column.column.render)):
            return lambda row: shown(row.get_cell(column.name), localize)
        empty, default = column.column.empty_values, column.default

        def write(row: BoundRow) -> str:
            value = getattr(row.record, name, None)
            if callable(value):
                value = value()
            if value in empty:
                return shown(default, localize)
            arguments = {"value": value, "record": row.record}
            return shown(render(**{key: arguments[key] for key in wanted}), localize)

        return write


class PackTable(PanelTable):
    pack = tables.Column(
        verbose_name=_("Pack"), accessor="pk", linkify=("screens:pack", {"pk": tables.A("pk")})
    )
    plan = tables.Column(verbose_name=_("Plan"), accessor="plan__name")
    customer = tables.Column(verbose_name=_("Customer"), accessor="customer__name")
    mail_host = tables.Column(verbose_name=_("Mail host"), accessor="mail_host__name")
    domains = tables.Column(verbose_name=_("Domains"), accessor="used_domains", orderable=False)
    alias_domains = tables.Column(verbose_name=_("Alias domains"), accessor="used_alias_domains", orderable=False)
    mailboxes = tables.Column(verbose_name=_("POP accounts"), accessor="used_mailboxes", orderable=False)

    caption = _("Your packs")

    class Meta(PanelTable.Meta):
        model = Pack
        fields: list[str] = []
        sequence = ["pack", "plan", "customer", "mail_host", "domains", "alias_domains", "mailboxes"]

    def render_pack(self, record: Pack) -> str:
        return str(record)

    def render_domains(self, record: WithAnnotations[Pack, PackUsage]) -> str:
        return usage_label(record.used_domains, record.plan.max_domains)

    def render_alias_domains(self, record: WithAnnotations[Pack, PackUsage]) -> str:
        return usage_label(record.used_alias_domains, record.plan.max_alias_domains)

    def render_mailboxes(self, record: WithAnnotations[Pack, PackUsage]) -> str:
        return format_html("{}", usage_label(record.used_mailboxes, record.plan.max_mailboxes))


AUDIT_PER_PAGE = 50


def list_text_names(event: AuditEvent) -> dict[str, str]:
    """A list event's changed texts ("text:help") by the names its text page gives them."""
    if event.target_type != MailingList._meta.label_lower:
        return {}
    name = event.target_repr.partition("@")[0]
    return {f"{audit_display.LIST_TEXT}{key}": str(label) % {"name": name} for key, label in TEXT_LABELS.items()}


class AuditTable(PanelTable):
    when = tables.DateTimeColumn(verbose_name=_("When"), accessor="created_at", short=False)
    who = tables.Column(verbose_name=_("Who"), accessor="actor_label", empty_values=())
    what = tables.Column(verbose_name=_("What"), accessor="action")
    target = tables.Column(verbose_name=_("Object"), accessor="target_repr", empty_values=())
    change = tables.Column(verbose_name=_("Before → after"), accessor="detail", empty_values=())

    class Meta(PanelTable.Meta):
        per_page = AUDIT_PER_PAGE
        orderable = False
        empty_text = _("Nothing has been done on this domain yet.")

    def __init__(self, *args: Any, caption: Any = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.caption = caption

    def render_when(self, value: datetime) -> str:
        """What DateTimeColumn's template writes (`{{ value|date:"DATETIME_FORMAT" }}`), without
        compiling that template again for each cell."""
        return formats.date_format(template_localtime(value), "DATETIME_FORMAT")

    def render_who(self, record: AuditEvent) -> str:
        return audit_display.who(record)

    def render_what(self, value: str) -> str:
        return audit_display.action_label(value)

    def render_target(self, record: AuditEvent) -> SafeString | str:
        kind = audit_display.object_kind(record)
        name = audit_display.object_name(record)
        return format_html('<span class="kind">{}</span> {}', kind, name) if kind else name

    def render_change(self, record: AuditEvent) -> SafeString | str:
        return audit_display.changes_html(record, list_text_names(record))


MB = 1024 * 1024
_PK = 987654321  # stands for a row's pk in a reversed URL (see row_url)


def row_url(name: str, domain_pk: int) -> str:
    """The URL of `name` for the rows of one domain, with "{}" where the row's pk goes: reversed
    once per table, not once per cell (a page of 50 rows has 200 links)."""
    return reverse(name, args=[domain_pk, _PK]).replace(str(_PK), "{}")


# A mailbox "near full" on the list of POP accounts: from the host's first quota warning on.
NEAR_FULL_PERCENT = min(quota_warning.WARN_PERCENTS)


def quota_label(used_bytes: int, quota_mb: int) -> str:
    """QmailAdmin's "Utilisé / Quota (Mo)": "0.05 / 100", or "0.05 / illimité"."""
    used = f"{used_bytes / MB:.2f}"
    return f"{used} / {quota_mb}" if quota_mb else f"{used} / {_('unlimited')}"


def labelled(title: Any) -> dict[str, dict[str, Any]]:
    """A cell that names its column (shown before it on a phone, where the header is hidden)."""
    return {"td": {"data-label": title}}


class MailboxTable(PanelTable):
    seek_by = "local_part"  # a domain's names, in order
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
        self.modify_url = escape_html(row_url("screens:mailbox_modify", domain_pk))
        self.delete_url = escape_html(row_url("screens:mailbox_delete", domain_pk))
        # Its words translated and escaped once, not in each of the 50 rows (the cells are
        # written with f-strings and `escape_html`, as `format_html` would, at a fraction of its cost).
        self.words = {key: escape_html(str(word)) for key, word in (
            ("disabled", _("disabled")), ("space used", _("space used")), ("Modify", _("Modify")),
            ("Delete", _("Delete")), ("near full", _("near full")))}

    def render_account(self, record: Mailbox) -> SafeString:
        disabled = f' <span class="badge">{self.words["disabled"]}</span>' if not record.enabled else ""
        return SafeString(f'<a href="{self.modify_url.format(record.pk)}">{escape_html(record.local_part)}</a>'
                          f"{disabled}")

    def render_real_name(self, value: str) -> str:
        return value or "—"

    def render_quota(self, record: Mailbox) -> SafeString:
        label = escape_html(quota_label(record.quota_used_bytes, record.quota_mb))
        if not record.quota_mb:
            return SafeString(label)
        percent = min(100, round(100 * record.quota_used_bytes / (record.quota_mb * MB)))
        # The same test as the "near full" filter (views.mailboxes.only_near_full), in integers.
        near_full = record.quota_used_bytes * 100 >= record.quota_mb * MB * NEAR_FULL_PERCENT
        badge = f' <span class="badge near-full">{self.words["near full"]}</span>' if near_full else ""
        return SafeString(f'{label} <meter min="0" max="100" value="{percent}" '
                          f'aria-label="{self.words["space used"]}">{percent} %</meter>{badge}')

    def render_modify(self, record: Mailbox) -> SafeString:
        return SafeString(f'<a href="{self.modify_url.format(record.pk)}">{self.words["Modify"]}</a>')

    def render_delete(self, record: Mailbox) -> str:
        if record.local_part == "postmaster":
            return "—"
        return SafeString(f'<a href="{self.delete_url.format(record.pk)}">{self.words["Delete"]}</a>')

    def render_catchall(self, record: Mailbox) -> SafeString:
        checked = " checked" if record.local_part == self.catchall_local else ""
        local = escape_html(record.local_part)
        return SafeString(f'<input type="radio" name="mailbox" value="{local}" form="catchall-form" '
                          f'aria-label="{local}"{checked}>')


class RowActions:
    """The "Modify" and "Delete" cells of a table whose rows have those pages: `modify_url` and
    `delete_url` are `row_url`s set by the table ("{}" where the row's pk goes)."""

    modify_url = delete_url = ""

    def render_modify(self, record: Forward | Robot | MailingList) -> str:
        return format_html('<a href="{}">{}</a>', self.modify_url.format(record.pk), _("Modify"))

    def render_delete(self, record: Forward | Robot | MailingList) -> str:
        return format_html('<a href="{}">{}</a>', self.delete_url.format(record.pk), _("Delete"))


class ForwardTable(RowActions, PanelTable):
    seek_by = "local_part"
    delete = tables.Column(verbose_name=_("Delete"), accessor="pk", orderable=False)
    modify = tables.Column(verbose_name=_("Modify"), accessor="pk", orderable=False)
    name = tables.Column(verbose_name=_("Name"), accessor="local_part")
    destinations = tables.Column(verbose_name=_("Destination"), accessor="destinations", orderable=False)

    class Meta(PanelTable.Meta):
        per_page = 25
        orderable = False

    def __init__(self, *args: Any, domain_pk: int, domain_name: str, known: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.domain_name, self.known = domain_name, known
        self.modify_url = row_url("screens:forward_modify", domain_pk)
        self.delete_url = row_url("screens:forward_delete", domain_pk)

    def render_destinations(self, record: Forward) -> str:
        if not record.destinations:  # a forward that drops its mail (vpopmail's .qmail of comments only)
            return format_html('<span class="muted">{}</span>', _("Accepted and deleted"))
        return format_html_join(", ", "{}{}", ((d, self.broken(d)) for d in record.destinations))

    def broken(self, destination: str) -> str:
        """A local destination says what it is (`known`: nothing for a POP account); one that
        does not exist is flagged."""
        local, _at, host = destination.rpartition("@")
        if host != self.domain_name:
            return ""
        if local not in self.known:
            return format_html(' <strong class="error">({})</strong>', _("no such account"))
        return format_html(' <span class="kind">({})</span>', self.known[local]) if self.known[local] else ""


class RobotTable(RowActions, PanelTable):
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
        self.modify_url = row_url("screens:robot_modify", domain_pk)
        self.delete_url = row_url("screens:robot_delete", domain_pk)

    def render_copy_to(self, value: str) -> str:
        return value or "—"


class ListCounts(TypedDict):
    """What the lists' page annotates each list with (screens.views.lists)."""

    subscriber_count: int


class ListTable(RowActions, PanelTable):
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
        self.modify_url = row_url("screens:list_modify", domain_pk)
        self.delete_url = row_url("screens:list_delete", domain_pk)
        self.members_url = row_url("screens:members", domain_pk)

    def render_name(self, record: MailingList) -> str:
        return format_html('<a href="{}">{}</a>', self.modify_url.format(record.pk), record.name)

    def render_posting(self, record: MailingList) -> str:
        return record.get_posting_display()

    def render_subscribers(self, record: WithAnnotations[MailingList, ListCounts]) -> str:
        return format_html('<a href="{}">{}</a>', self.members_url.format(record.pk), record.subscriber_count)

    def render_moderators(self, record: MailingList) -> str:
        return format_html('<a href="{}?kind=moderator">{}</a>', self.members_url.format(record.pk), _("Moderators"))

    def render_digest(self, record: MailingList) -> str:
        return format_html('<a href="{}?kind=digest">{}</a>', self.members_url.format(record.pk),
                           _("Digest subscribers"))


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
