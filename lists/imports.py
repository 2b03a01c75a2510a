"""Bulk import of a list's members: pasted lines or an uploaded CSV, checked line by line,
written in batches, with one revision and one audit row per import.

A paste is one address per line, or `Name <address>`. A CSV upload may use `;`, `,` or tabs
(found from its first lines), quotes, a byte-order mark, a header row; its address column is the
one whose cells are addresses. Text that is not UTF-8 is read as Windows-1252 (what spreadsheets
save by default): its addresses still come through, the rest is only ever reported. Each
non-empty line is added, already present (or a repeat of an earlier line), or invalid (line
number and text kept for the report, the first SHOWN_INVALID of them).

Up to INLINE_LINES lines the import runs in the request, in one transaction. A longer one runs
in a Celery task (`lists.tasks`), batch after batch, each committed with the import's progress
(`MemberImport.done` of `total`), so the status page can show it; its revision and audit row
come at the end.
"""

from __future__ import annotations

import csv
import functools
import logging
import re
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from config.celery import app as panel_app
from hosting import audit
from hosting.audit import Action
from hosting.models import User
from hosting.validators import normalize_domain
from lists.models import ImportState, ListMember, MailingList, MemberImport, MemberKind
from mail.models import Mailbox
from mail.validators import normalize_local_part
from provisioning.revisions import domain_changed

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
INLINE_LINES = 2000
MAX_LINE = 1000  # characters: a longer line is invalid without being read further
SHOWN_INVALID = 200  # invalid lines kept for the report (all are counted)
SHOWN_TEXT = 200  # characters of an invalid line kept for the report
# Shown as U+FFFD in the report: control characters and lone surrogates (PostgreSQL's JSON refuses
# a NUL, and none of them is readable on the page anyway).
UNSHOWABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
BATCH = 2000
TASK = "lists.import_members"
SOURCES = ("paste", "csv")
DELIMITERS = (";", ",", "\t")
ANGLE = re.compile(r'^(?:"[^"]*"|[^"<>]*)\s*<([^<>]*)>$')  # Name <address>, "Name, Jr" <address>


def decode(data: bytes) -> str:
    """The text of an upload: UTF-8 (with or without BOM), UTF-16 with its BOM, else Windows-1252."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """Non-empty lines with their numbers; only \\n, \\r\\n and \\r end a line (what a text editor
    shows), so a form feed or U+2028 stays in its line, which is then invalid."""
    for number, line in enumerate(re.split(r"\r\n|\r|\n", text.removeprefix("\ufeff")), start=1):
        if line.strip():
            yield number, line


def _cells(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:  # a NUL, an unclosed quote in strict cases: the line is invalid
        return [line]


def _address_like(cell: str) -> bool:
    cell = cell.strip()
    match = ANGLE.match(cell)
    value = match.group(1) if match else cell
    return value.count("@") == 1 and not re.search(r"\s", value)


def _csv_layout(lines: list[tuple[int, str]]) -> tuple[str, int, bool]:
    """The delimiter, the address column and whether the first row is a header, from the first
    rows: the delimiter and column that hold the most address-like cells."""
    sample = [line for _n, line in lines[:50] if len(line) <= MAX_LINE]
    best = (-1, ",", 0)
    for delimiter in DELIMITERS:
        counts: dict[int, int] = {}
        for line in sample:
            for column, cell in enumerate(_cells(line, delimiter)):
                if _address_like(cell):
                    counts[column] = counts.get(column, 0) + 1
        if counts:
            column, score = max(counts.items(), key=lambda item: (item[1], -item[0]))
            if score > best[0]:
                best = (score, delimiter, column)
    _score, delimiter, column = best
    first = _cells(lines[0][1], delimiter) if lines else []
    header = bool(first) and (column >= len(first) or "@" not in first[column])
    return delimiter, column, header


def candidates(text: str, source: str) -> list[tuple[int, str]]:
    """(line number, the text that should be an address) for each non-empty line."""
    lines = list(_lines(text))
    if source != "csv":
        return lines
    delimiter, column, header = _csv_layout(lines)
    found = []
    for index, (number, line) in enumerate(lines):
        if index == 0 and header:
            continue
        cells = _cells(line, delimiter) if len(line) <= MAX_LINE else [line]
        found.append((number, cells[column] if column < len(cells) else line))
    return found


@functools.lru_cache(maxsize=4096)
def _domain(name: str) -> str:
    return normalize_domain(name)  # IDNA and the homograph check: 30 µs, once per domain


def normalize(text: str) -> str:
    """`normalize_address` (mail.validators) of what a line holds: a bare address or the one
    in `Name <address>`; the same result, with each domain checked once per process."""
    text = text.strip().rstrip(",;").strip()
    match = ANGLE.match(text)
    value = (match.group(1) if match else text).strip()
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

    def _refuse(self, number: int, line: str) -> None:
        self.invalid_count += 1
        if len(self.invalid) < SHOWN_INVALID:
            self.invalid.append([number, UNSHOWABLE.sub("\ufffd", line[:SHOWN_TEXT])])

    def batch(self, rows: list[tuple[int, str]]) -> None:
        """Check a batch of lines and insert its new members (two queries)."""
        valid = []
        for number, text in rows:
            try:
                address = normalize(text) if len(text) <= MAX_LINE else ""
            except ValidationError:
                address = ""
            if not address or address.startswith(self.own):
                self._refuse(number, text)
            elif address in self.seen:
                self.present += 1
            else:
                self.seen.add(address)
                valid.append(address)
        existing = set(ListMember.objects.filter(
            mailing_list=self.mailing_list, kind=self.kind, address__in=valid).values_list("address", flat=True))
        new = [address for address in valid if address not in existing]
        ListMember.objects.bulk_create(
            [ListMember(mailing_list=self.mailing_list, kind=self.kind, address=a) for a in new],
            ignore_conflicts=True, batch_size=1000)  # a member added meanwhile stays as it is
        self.added += len(new)
        self.present += len(existing)
        self.done += len(rows)

    def fields(self) -> dict[str, Any]:
        return {"done": self.done, "added": self.added, "present": self.present, "invalid": self.invalid}


def _finish(tally: _Tally, member_import: MemberImport, acting_user: Any) -> None:
    """The import's one revision (when it added someone) and its one audit row."""
    mailing_list = tally.mailing_list
    if tally.added:
        MailingList.objects.filter(pk=mailing_list.pk).update(revision=domain_changed(mailing_list.domain))
    audit.record(acting_user, Action.LIST_MEMBER_IMPORT, mailing_list, kind=tally.kind, lines=member_import.total,
                 added=tally.added, present=tally.present, invalid=tally.invalid_count)


def _check(mailing_list: MailingList, kind: str, text: str, source: str) -> None:
    if kind not in MemberKind.values or source not in SOURCES:
        raise ValidationError(_("Choose one of the options."), code="invalid")
    if len(text) > MAX_UPLOAD_BYTES:  # characters: a file of at most that many bytes has no more
        raise ValidationError(_("The file is too large (at most %(max)d MB)."), code="too_large",
                              params={"max": MAX_UPLOAD_BYTES // (1024 * 1024)})
    if not text.strip():
        raise ValidationError(_("Paste some addresses or choose a file."), code="required")


def _actor_ref(actor: Any) -> list[Any]:
    return ["mailbox" if isinstance(actor, Mailbox) else "user", getattr(actor, "pk", None)]


def _actor(ref: list[Any]) -> Any:
    kind, pk = ref
    if pk is None:
        return None
    model = Mailbox if kind == "mailbox" else User
    return model._default_manager.filter(pk=pk).first()


def member_import(*, mailing_list: MailingList, kind: str, text: str, source: str = "paste",
                  acting_user: Any) -> MemberImport:
    """Import members of `kind` into a list (see the module). A short import is done when this
    returns; a long one is running: its task is queued when the transaction commits."""
    _check(mailing_list, kind, text, source)
    rows = candidates(text, source)
    created_by = str(getattr(acting_user, "email", None) or acting_user or "")[:320]
    if len(rows) > INLINE_LINES:
        with transaction.atomic():
            job = MemberImport.objects.create(mailing_list=mailing_list, kind=kind, total=len(rows),
                                              created_by=created_by)
            transaction.on_commit(lambda: panel_app.send_task(TASK, args=[job.pk, text, source, _actor_ref(
                acting_user)]))
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
        state, error = ImportState.DONE, ""
    except Exception as failure:  # noqa: BLE001 - the import's page says it stopped; what was added stays
        log.exception("import %s into %s stopped", job.pk, job.mailing_list)
        state, error = ImportState.FAILED, f"{type(failure).__name__}: {failure}"[:2000]  # for support
    with transaction.atomic():
        MemberImport.objects.filter(pk=job.pk).update(state=state, error=error, total=len(rows), **tally.fields())
        _finish(tally, job, _actor(actor))
