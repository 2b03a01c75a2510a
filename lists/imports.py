"""Bulk import of a list's members: pasted lines or an uploaded CSV, checked line by line,
written in batches, with one revision and one audit row per import.

A paste is one address per line, or `Name <address>`. A CSV upload may use `;`, `,` or tabs
(found from its first lines), quotes, a byte-order mark, a header row; its address column is the
one whose cells are addresses. Text that is not UTF-8 is read as Windows-1252 (what spreadsheets
save by default): its addresses still come through, the rest is only ever reported. Each
non-empty line is added, already present (or a repeat of an earlier line), or invalid (line
number and text kept for the report, the first SHOWN_INVALID of them).

Up to INLINE_LINES lines the import runs in the request, in one transaction. A longer one runs
in a Celery task (`lists.tasks`) on the bulk queue (contract.BULK_QUEUE: its own worker, so no
import delays a domain's push), batch after batch, each committed with the import's progress
(`MemberImport.done` of `total`), so the status page can show it; its revision and audit row
come at the end. A customer has at most settings.IMPORTS_IN_FLIGHT long imports (these and its domains'
POP accounts and forwards': mail.transfer) queued or running; a further one is refused until one ends.

No import grows a list past its plan's `max_list_members` (every kind counted, under the list's
lock: lists.services.lock_list_room): the import stops at the first line that would, and its
report says how many lines were not read (`total - done` of an import that is done).
"""

from __future__ import annotations

import functools
import logging
import re
import time
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils.translation import gettext as _

from config.celery import app as panel_app
from hosting import audit, csvfiles
from hosting.audit import Action
from hosting.roles import Seat
from hosting.validators import normalize_domain
from lists.models import ImportState, ListMember, MailingList, MemberImport, MemberKind
from lists.services import lock_list_room
from mail import transfer
from mail.validators import normalize_local_part
from provisioning.revisions import domain_changed

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = transfer.MAX_UPLOAD_BYTES  # 5 MB
INLINE_LINES = 2000
MAX_LINE = 1000  # characters: a longer line is invalid without being read further
SHOWN_INVALID = 200  # invalid lines kept for the report (all are counted)
SHOWN_TEXT = 200  # characters of an invalid line kept for the report
# Shown as U+FFFD in the report: control characters and lone surrogates (PostgreSQL's JSON refuses
# a NUL, and none of them is readable on the page anyway).
UNSHOWABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
BATCH = 2000
# SQLite only: the task's pause after each batch, so that the panel's other writers (a push, a
# page's change), whose wait for the write lock polls every 100 ms at most, get it between two
# batches instead of waiting for the whole import (a change waited 17.8 s behind a 150,000-line one).
SQLITE_YIELD_SECONDS = 0.15
STALE_AFTER = transfer.STALE_AFTER  # an import still running after this lost its task (_check_in_flight)
TASK = "lists.import_members"
SOURCES = ("paste", "csv")
DELIMITERS = (";", ",", "\t")


def angle_address(text: str) -> str | None:
    """The address of `Name <address>` or `"Name, Jr" <address>` (None when `text` is not of that
    form): a name without quotes or angle brackets, or one quoted string and spaces, then one
    `<...>` at the end. A few scans of the text, never a backtracking pattern (the regular
    expression it replaces took quadratic time on a line of spaces: 2.5 s for a pasted 2,000)."""
    if not text.endswith(">"):
        return None
    start = text.rfind("<")
    if start < 0 or ">" in text[start + 1:-1]:
        return None
    name = text[:start].rstrip()
    if name.startswith('"'):
        quoted = len(name) >= 2 and name.endswith('"') and '"' not in name[1:-1]
        return text[start + 1:-1] if quoted else None
    if '"' in name or "<" in name or ">" in name:
        return None
    return text[start + 1:-1]


def _address_like(cell: str) -> bool:
    cell = cell.strip()
    value = angle_address(cell)
    value = cell if value is None else value
    return value.count("@") == 1 and not any(char.isspace() for char in value)


def _csv_layout(lines: list[tuple[int, str]]) -> tuple[str, int, bool]:
    """The delimiter, the address column and whether the first row is a header, from the first
    rows: the delimiter and column that hold the most address-like cells."""
    sample = [line for _n, line in lines[:50] if len(line) <= MAX_LINE]
    best = (-1, ",", 0)
    for delimiter in DELIMITERS:
        counts: dict[int, int] = {}
        for line in sample:
            for column, cell in enumerate(csvfiles.cells(line, delimiter)):
                if _address_like(cell):
                    counts[column] = counts.get(column, 0) + 1
        if counts:
            column, score = max(counts.items(), key=lambda item: (item[1], -item[0]))
            if score > best[0]:
                best = (score, delimiter, column)
    _score, delimiter, column = best
    first = csvfiles.cells(lines[0][1], delimiter) if lines else []
    header = bool(first) and (column >= len(first) or "@" not in first[column])
    return delimiter, column, header


def candidates(text: str, source: str) -> list[tuple[int, str]]:
    """(line number, the text that should be an address) for each non-empty line."""
    lines = list(csvfiles.lines(text))
    if source != "csv":
        return lines
    delimiter, column, header = _csv_layout(lines)
    found = []
    for index, (number, line) in enumerate(lines):
        if index == 0 and header:
            continue
        cells = csvfiles.cells(line, delimiter) if len(line) <= MAX_LINE else [line]
        found.append((number, cells[column] if column < len(cells) else line))
    return found


@functools.lru_cache(maxsize=4096)
def _domain(name: str) -> str:
    return normalize_domain(name)  # IDNA and the homograph check: 30 µs, once per domain


def normalize(text: str) -> str:
    """`normalize_address` (mail.validators) of what a line holds: a bare address or the one
    in `Name <address>`; the same result, with each domain checked once per process."""
    text = text.strip().rstrip(",;").strip()
    value = angle_address(text)
    value = (text if value is None else value).strip()
    if len(value) > 320 or value.count("@") != 1:
        raise ValidationError(_("Invalid e-mail address."), code="invalid")
    local, domain = value.split("@")
    try:
        return f"{normalize_local_part(local)}@{_domain(domain)}"
    except ValidationError:
        raise ValidationError(_("Invalid e-mail address."), code="invalid") from None


class _Tally:
    """The counts of one import as its batches go."""

    def __init__(self, mailing_list: MailingList, kind: str) -> None:
        self.mailing_list, self.kind = mailing_list, kind
        # mlmmj refuses any address that starts with the list's own (mailhost.list_members).
        self.own = f"{mailing_list.name}@{mailing_list.domain.name}"
        self.seen: set[str] = set()
        self.done = self.added = self.present = self.invalid_count = 0
        self.invalid: list[list[Any]] = []
        self.full = False  # the list reached its plan's max_list_members: the rest is not read

    def _refuse(self, number: int, line: str) -> None:
        self.invalid_count += 1
        if len(self.invalid) < SHOWN_INVALID:
            self.invalid.append([number, UNSHOWABLE.sub("\ufffd", line[:SHOWN_TEXT])])

    def batch(self, rows: list[tuple[int, str]]) -> None:
        """Check a batch of lines and insert its new members (a few queries), in a transaction:
        the list's row locked, no further than the room its plan leaves (then `full`)."""
        room = lock_list_room(self.mailing_list)
        checked = []
        for number, text in rows:
            try:
                address = normalize(text) if len(text) <= MAX_LINE else ""
            except ValidationError:
                address = ""
            checked.append((number, text, "" if address.startswith(self.own) else address))
        valid = [address for _n, _t, address in checked if address]
        existing = set(ListMember.objects.filter(
            mailing_list=self.mailing_list, kind=self.kind, address__in=valid).values_list("address", flat=True))
        new: list[str] = []
        for number, text, address in checked:
            if not address:
                self._refuse(number, text)
            elif address in self.seen or address in existing:
                self.present += 1
            elif room is not None and len(new) >= room:
                self.full = True
                break
            else:
                new.append(address)
            self.seen.add(address)
            self.done += 1
        ListMember.objects.bulk_create(
            [ListMember(mailing_list=self.mailing_list, kind=self.kind, address=a) for a in new],
            ignore_conflicts=True, batch_size=1000)  # a member added meanwhile stays as it is
        self.added += len(new)

    def fields(self) -> dict[str, Any]:
        return {"done": self.done, "added": self.added, "present": self.present, "invalid": self.invalid}


def _finish(tally: _Tally, member_import: MemberImport, acting_user: Seat | None) -> None:
    """The import's one revision (when it added someone) and its one audit row."""
    mailing_list = tally.mailing_list
    if tally.added:
        MailingList.objects.filter(pk=mailing_list.pk).update(revision=domain_changed(mailing_list.domain))
    full = {"not_read": member_import.total - tally.done} if tally.full else {}  # the list reached its limit
    audit.record(acting_user, Action.LIST_MEMBER_IMPORT, mailing_list, kind=tally.kind, lines=member_import.total,
                 added=tally.added, present=tally.present, invalid=tally.invalid_count, **full)


def _check(mailing_list: MailingList, kind: str, text: str, source: str) -> None:
    if kind not in MemberKind.values or source not in SOURCES:
        raise ValidationError(_("Choose one of the options."), code="invalid")
    transfer.check_text(text, _("Paste some addresses or choose a file."))


def _check_in_flight(mailing_list: MailingList) -> None:
    """Refuse a long import when IMPORTS_IN_FLIGHT of the customer's imports (these and its
    domains' POP accounts and forwards) are queued or running (mail.transfer.check_in_flight)."""
    transfer.check_in_flight(mailing_list.domain_id)


def _queue(job: MemberImport, text: str, source: str, acting_user: Seat | None) -> None:
    """Queue a long import's task (after its commit; the broker down: mail.transfer.send_or_fail)."""
    args = [job.pk, text, source, transfer.actor_ref(acting_user)]
    transfer.send_or_fail(job, lambda: panel_app.send_task(TASK, args=args),
                          what=f"import {job.pk} into list {job.mailing_list_id}", logger=log)


def member_import(*, mailing_list: MailingList, kind: str, text: str, source: str = "paste",
                  acting_user: Seat | None) -> MemberImport:
    """Import members of `kind` into a list (see the module). A short import is done when this
    returns; a long one is running: its task is queued when the transaction commits."""
    _check(mailing_list, kind, text, source)
    rows = candidates(text, source)
    created_by = str(getattr(acting_user, "email", None) or acting_user or "")[:320]
    if len(rows) > INLINE_LINES:
        with transaction.atomic():
            _check_in_flight(mailing_list)
            job = MemberImport.objects.create(mailing_list=mailing_list, kind=kind, total=len(rows),
                                              created_by=created_by)
            transaction.on_commit(lambda: _queue(job, text, source, acting_user))
        return job
    with transaction.atomic():
        tally = _Tally(mailing_list, kind)
        tally.batch(rows)
        job = MemberImport.objects.create(mailing_list=mailing_list, kind=kind, state=ImportState.DONE,
                                          total=len(rows), created_by=created_by, **tally.fields())
        _finish(tally, job, acting_user)
    return job


def run_import(import_id: int, text: str, source: str, actor: list[Any]) -> None:
    """The task's work for a long import: batch after batch, each committed with the progress;
    then the revision and the audit row. A failure is kept on the import (what was added stays)."""
    job = MemberImport.objects.select_related("mailing_list__domain").filter(
        pk=import_id, state=ImportState.RUNNING).first()
    if job is None:
        return  # done already (a redelivered message), or its list is gone
    rows = candidates(text, source)
    tally = _Tally(job.mailing_list, job.kind)
    try:
        for start in range(0, len(rows), BATCH):
            with transaction.atomic():
                tally.batch(rows[start:start + BATCH])
                MemberImport.objects.filter(pk=job.pk).update(**tally.fields())
            if tally.full:
                break
            if connection.vendor == "sqlite":
                time.sleep(SQLITE_YIELD_SECONDS)
        state, error = ImportState.DONE, ""
    except Exception as failure:  # noqa: BLE001 - the import's page says it stopped; what was added stays
        log.exception("import %s into %s stopped", job.pk, job.mailing_list)
        state, error = ImportState.FAILED, f"{type(failure).__name__}: {failure}"[:2000]  # for support
    with transaction.atomic():
        MemberImport.objects.filter(pk=job.pk).update(state=state, error=error, total=len(rows), **tally.fields())
        _finish(tally, job, transfer.actor_of(actor))
