"""A domain's POP accounts and forwards as CSV: the export, streamed, and the import, line by line,
with its report (the peers' CSV export and import; issue 16).

Export: one row per mailbox (address, real name, quota, switches, routing, vacation, space used:
never a password or its hash) or per forward (address, destinations), read from the database in
chunks (the same memory for 100 rows or 100,000), cells a spreadsheet would run as a formula
neutralised (hosting.csvfiles), UTF-8 with a byte-order mark so that Excel reads accents right,
comma-separated (RFC 4180); one audit row says who exported what.

Import: pasted text or an uploaded CSV (`;`, `,` or tab, found from the first line; a BOM; text
that is not UTF-8 is read as Windows-1252 and the report says so). A first line that names the
columns (`address`, `real_name`, `quota_mb`, `password`, `destinations`, or their French names)
says where each one is; without one the columns are, for POP accounts, address, real name, quota,
password, and for forwards the address then its destinations. The address is `name` or
`name@domain` of this domain. Each line is created, already there (left as it is), or refused with
its reason in the importer's language (a refused line keeps its number, its address and the
reason: never a password). A line beyond the pack's limits is refused and the others go on.
A new POP account needs its password: it is checked and hashed before any transaction
(`services.prepare_password`), for no more accounts than the pack has room for (a full pack's
import hashes nothing), and only its hash is stored.

Lines are written in batches: each batch one transaction that locks the pack once and bumps the
domain's revision once when it created something, each line in its own savepoint (all of it or
none). Up to INLINE lines the import runs in the request; a longer one runs on the bulk queue
(contract.BULK_QUEUE: its own worker) with its progress shown, at most settings.IMPORTS_IN_FLIGHT
of a customer's imports (these and the lists' members') queued or running at once. The text
travels to the worker encrypted with a key derived from SECRET_KEY (it may hold passwords) and is
kept nowhere.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from config.celery import app as panel_app
from hosting import audit, csvfiles
from hosting.audit import Action
from hosting.models import UNLIMITED, Customer, Domain, Pack, User
from hosting.roles import Seat
from hosting.services import lock_pack
from hosting.validators import normalize_domain
from mail import services
from mail.models import AccountImport, Forward, ImportKind, ImportState, Mailbox, folded
from mail.services import PreparedPassword
from mail.validators import clean_text, normalize_local_part
from provisioning.revisions import domain_changed

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_LINES = 10_000  # a longer file is refused whole: split it
MAX_LINE = 2000  # characters: a longer line is refused without being read
INLINE = {ImportKind.MAILBOXES: 10, ImportKind.FORWARDS: 500}  # lines run in the request (hashing: 0.2 s each)
BATCH = {ImportKind.MAILBOXES: 50, ImportKind.FORWARDS: 500}
SHOWN_REFUSED = 200  # refused lines kept for the report (all are counted)
SHOWN_TEXT = 100
UNSHOWABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
STALE_AFTER = timedelta(hours=1)  # an import still running after this lost its task: it holds no slot
CHUNK = 2000
ROUNDS = 3  # a batch's rounds of hashing then writing (see _Tally.batch)
TASK = "mail.import_accounts"
DELIMITERS = (";", ",", "\t")
EXPORTED = {ImportKind.MAILBOXES: Action.MAILBOX_EXPORT, ImportKind.FORWARDS: Action.FORWARD_EXPORT}
IMPORTED = {ImportKind.MAILBOXES: Action.MAILBOX_IMPORT, ImportKind.FORWARDS: Action.FORWARD_IMPORT}

MAILBOX_HEADER = ["address", "real_name", "quota_mb", "enabled", "pop3", "imap", "smtp", "routing", "forward_to",
                  "keep_copy", "vacation", "vacation_from", "vacation_until", "used_bytes"]
FORWARD_HEADER = ["address", "destinations"]
COLUMNS = {ImportKind.MAILBOXES: ["address", "real_name", "quota", "password"],
           ImportKind.FORWARDS: ["address", "destinations"]}
# A header cell (folded: lower case, no accents, "_" as a space) and the column it names.
HEADER_NAMES = {
    "address": "address", "adresse": "address", "e-mail": "address", "email": "address", "account": "address",
    "compte": "address", "name": "address", "nom": "address",
    "real name": "real_name", "nom reel": "real_name", "nom complet": "real_name",
    "quota": "quota", "quota mb": "quota", "quota (mb)": "quota", "quota (mo)": "quota", "quota mo": "quota",
    "password": "password", "mot de passe": "password",
    "destinations": "destinations", "destination": "destinations", "forward to": "destinations",
}


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def mailbox_rows(seat: Seat, domain: Domain) -> Iterator[list[Any]]:
    rows = Mailbox.objects.visible_to(seat).filter(domain=domain).order_by("local_part").values_list(
        "local_part", "real_name", "quota_mb", "enabled", "allow_pop3", "allow_imap", "allow_smtp", "routing",
        "forward_to", "keep_copy", "vacation_enabled", "vacation_start", "vacation_end", "quota_used_bytes")
    for (local, real_name, quota, enabled, pop3, imap, smtp, routing, forward_to, keep_copy, vacation, start, end,
         used) in rows.iterator(chunk_size=CHUNK):
        yield [f"{local}@{domain.unicode_name}", real_name, quota, _yes(enabled), _yes(pop3), _yes(imap), _yes(smtp),
               routing, " ".join(forward_to), _yes(keep_copy), _yes(vacation), start.isoformat() if start else "",
               end.isoformat() if end else "", used]


def forward_rows(seat: Seat, domain: Domain) -> Iterator[list[Any]]:
    rows = Forward.objects.visible_to(seat).filter(domain=domain).order_by("local_part").values_list(
        "local_part", "destinations")
    for local, destinations in rows.iterator(chunk_size=CHUNK):
        yield [f"{local}@{domain.unicode_name}", " ".join(destinations)]


def export(seat: Seat, domain: Domain, kind: str) -> Iterator[str]:
    """The CSV's lines (for a StreamingHttpResponse), after the audit row of the export."""
    kind = ImportKind(kind)
    audit.record(seat, EXPORTED[kind], domain)
    if kind == ImportKind.MAILBOXES:
        return csvfiles.stream(MAILBOX_HEADER, mailbox_rows(seat, domain), bom=True)
    return csvfiles.stream(FORWARD_HEADER, forward_rows(seat, domain), bom=True)


def file_name(domain: Domain, kind: str) -> str:
    """`example.org-mailboxes.csv`: an IDNA domain is plain ASCII."""
    return f"{domain.name}-{ImportKind(kind).value}.csv"


# The import.

def _header(cells: list[str]) -> dict[str, int] | None:
    """The columns a first line names (None when it names none)."""
    found: dict[str, int] = {}
    for index, cell in enumerate(cells):
        name = HEADER_NAMES.get(folded(cell.strip()).replace("_", " "))
        if name and name not in found:
            found[name] = index
    return found or None


def parse(text: str, kind: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, the line's fields) of each non-empty line; a line that cannot be read gets
    `{"refused": reason}`."""
    numbered = list(csvfiles.lines(text))
    if not numbered:
        return []
    first = numbered[0][1]
    delimiter = max(DELIMITERS, key=lambda d: (first.count(d), d == ","))
    columns = _header(csvfiles.cells(first, delimiter)) if len(first) <= MAX_LINE else None
    if columns is None:
        columns = {name: index for index, name in enumerate(COLUMNS[ImportKind(kind)])}
    else:
        numbered = numbered[1:]
    rows = []
    for number, line in numbered:
        if len(line) > MAX_LINE:
            rows.append((number, {"refused": _("This line is too long (at most %(max)d characters).")
                                  % {"max": MAX_LINE}}))
            continue
        if "\x00" in line:
            rows.append((number, {"refused": _("This line contains characters that are not allowed.")}))
            continue
        cells = [csvfiles.plain_cell(cell.strip()) for cell in csvfiles.cells(line, delimiter)]
        fields = {name: cells[index] if index < len(cells) else "" for name, index in columns.items()}
        if columns.get("destinations") == max(columns.values()):  # the last column: any cell after it too
            fields["destinations"] = " ".join(cells[columns["destinations"]:])
        rows.append((number, fields))
    return rows


def local_part_of(domain: Domain, address: str) -> str:
    """The local part of `name` or `name@domain` (this domain only), normalised."""
    name, at, other = address.strip().rpartition("@") if "@" in address else (address.strip(), "", "")
    if at:
        try:
            same = normalize_domain(other) == domain.name
        except ValidationError:
            same = False
        if not same:
            raise ValidationError(_("This address is not of the domain %(domain)s.") % {
                "domain": domain.unicode_name}, code="domain")
    return normalize_local_part(name)


def mailbox_room(domain: Domain) -> int | None:
    """How many more POP accounts the domain's pack and its reseller's pool take now (None: no
    limit). Read without a lock, to bound the hashing: each line's own check is under the lock."""
    pack = Pack.objects.select_related("plan", "customer__reseller").get(pk=domain.pack_id)
    limits = [(pack.plan.max_mailboxes, Mailbox.objects.filter(domain__pack=pack))]
    reseller = pack.customer.reseller
    if reseller is not None:
        limits.append((reseller.max_mailboxes, Mailbox.objects.filter(domain__pack__customer__reseller=reseller)))
    rooms = [max(limit - rows.count(), 0) for limit, rows in limits if limit != UNLIMITED]
    return min(rooms) if rooms else None


class _Tally:
    """The counts and the report of one import as its batches go."""

    def __init__(self, job: AccountImport) -> None:
        self.job, self.domain = job, job.domain
        self.seen: set[str] = set()
        self.done = self.created = self.present = self.refused_count = 0
        self.refused: list[list[Any]] = []

    def refuse(self, number: int, address: str, reason: Any) -> None:
        if isinstance(reason, ValidationError):
            reason = " ".join(reason.messages)
        self.refused_count += 1
        if len(self.refused) < SHOWN_REFUSED:
            self.refused.append([number, UNSHOWABLE.sub("\ufffd", address[:SHOWN_TEXT]), str(reason)])

    def fields(self) -> dict[str, Any]:
        return {"done": self.done, "created": self.created, "present": self.present, "refused": self.refused,
                "refused_count": self.refused_count}

    def _names(self, rows: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any], str]]:
        """The lines to try: each readable line's local part; the others refused, the repeats and
        the names already there counted (one query)."""
        named = []
        for number, fields in rows:
            address = fields.get("address", "")
            try:
                if "refused" in fields:
                    raise ValidationError(fields["refused"])
                named.append((number, fields, local_part_of(self.domain, address)))
            except ValidationError as error:
                self.refuse(number, address, error)
        model = Mailbox if self.job.kind == ImportKind.MAILBOXES else Forward
        there = set(model.objects.filter(domain=self.domain, local_part__in=[n for _n, _f, n in named]).values_list(
            "local_part", flat=True))
        fresh = []
        for number, fields, local in named:
            if local in there or local in self.seen:
                self.present += 1
            else:
                fresh.append((number, fields, local))
            self.seen.add(local)
        return fresh

    def batch(self, rows: list[tuple[int, dict[str, Any]]]) -> None:
        """One batch: its new rows in one transaction (`_write`), each POP account's password
        hashed before it (`_hashes`: no more than the pack has room for, so that the import of a
        full pack hashes nothing). A line left unhashed is refused when the pack is still full at
        its turn, else hashed and written in a further round (room was made meanwhile)."""
        fresh = self._names(rows)
        for _round in range(ROUNDS):
            if not fresh:
                break
            fresh = self._write(fresh, *self._hashes(fresh))
        for number, fields, _local in fresh:  # room made and taken again, round after round
            self.refuse(number, fields["address"], _("Maximum number of POP accounts reached."))
        self.done += len(rows)
        self.refused.sort(key=lambda refused: refused[0])  # by line: the checks before the transaction came first
        AccountImport.objects.filter(pk=self.job.pk).update(**self.fields())

    def _hashes(self, fresh: list[tuple[int, dict[str, Any], str]]) -> tuple[dict[int, PreparedPassword], set[int]]:
        """The new POP accounts' passwords checked and hashed (outside any transaction), for as
        many accounts as the pack has room for now; the lines left unhashed."""
        if self.job.kind != ImportKind.MAILBOXES:
            return {}, set()
        room = mailbox_room(self.domain)
        prepared: dict[int, PreparedPassword] = {}
        unhashed: set[int] = set()
        for number, fields, _local in fresh:
            if not fields.get("password"):
                continue
            if room is not None and room <= 0:
                unhashed.add(number)
                continue
            prepared[number] = services.prepare_password(fields["password"])
            if room is not None and prepared[number].error is None:
                room -= 1
        return prepared, unhashed

    def _write(self, fresh: list[tuple[int, dict[str, Any], str]], prepared: dict[int, PreparedPassword],
               unhashed: set[int]) -> list[tuple[int, dict[str, Any], str]]:
        """One transaction: the pack locked, each line in its savepoint, one revision for the rows
        created. Returns the unhashed lines that found room (for a further round)."""
        created: list[int] = []
        retry = []
        mailboxes = self.job.kind == ImportKind.MAILBOXES
        with transaction.atomic():
            pack = lock_pack(self.domain.pack_id)
            for number, fields, local in fresh:
                if number in unhashed:
                    try:
                        services.check_mailbox_limits(pack)
                    except ValidationError as error:
                        self.refuse(number, fields["address"], error)
                    else:
                        retry.append((number, fields, local))
                    continue
                try:
                    with transaction.atomic():
                        row: Mailbox | Forward
                        if mailboxes:
                            row = self._mailbox(pack, local, fields, prepared.get(number))
                        else:
                            row = self._forward(pack, local, fields)
                except IntegrityError:
                    self.refuse(number, fields["address"], _("Name already used."))
                except ValidationError as error:
                    self.refuse(number, fields["address"], error)
                else:
                    created.append(row.pk)
            if created:
                model = Mailbox if mailboxes else Forward
                model.objects.filter(pk__in=created).update(revision=domain_changed(self.domain))
        self.created += len(created)
        return retry

    def _mailbox(self, pack: Pack, local: str, fields: dict[str, Any], prepared: PreparedPassword | None) -> Mailbox:
        """`services.mailbox_create`'s checks, in its order, without its revision and audit row."""
        services.check_mailbox_limits(pack)
        services.check_name_free(self.domain, local, home=True)
        if prepared is None:
            raise ValidationError(_("A password is needed to create a POP account."), code="password")
        password_hash = prepared.checked_hash()
        quota = services.resolve_quota(pack, fields.get("quota") or None)
        real_name = clean_text(fields.get("real_name", ""), max_length=200, single_line=True)
        return Mailbox.objects.create(domain=self.domain, local_part=local, password_hash=password_hash,
                                      real_name=real_name, search_name=folded(f"{local} {real_name}"), quota_mb=quota)

    def _forward(self, pack: Pack, local: str, fields: dict[str, Any]) -> Forward:
        """`services.forward_create`'s checks (its `claim_name` with the batch's pack locked
        already), without its revision and audit row."""
        services.check_forward_limits(pack)
        services.check_name_free(self.domain, local)
        destinations = re.split(r"[\s,;]+", fields.get("destinations", "").strip())
        targets = services.check_destinations(self.domain, destinations, local=local)
        return Forward.objects.create(domain=self.domain, local_part=local, destinations=targets)


def _finish(tally: _Tally, acting_user: Seat | None) -> None:
    job = tally.job
    audit.record(acting_user, IMPORTED[ImportKind(job.kind)], job.domain, lines=job.total, created=tally.created,
                 present=tally.present, refused=tally.refused_count)


def check_text(text: str, empty: str) -> None:
    """Refuse an import's text longer than MAX_UPLOAD_BYTES characters (a file of at most that
    many bytes has no more), or one with nothing in it (`empty`: what to say then)."""
    if len(text) > MAX_UPLOAD_BYTES:
        raise ValidationError(_("The file is too large (at most %(max)d MB)."), code="too_large",
                              params={"max": MAX_UPLOAD_BYTES // (1024 * 1024)})
    if not text.strip():
        raise ValidationError(empty, code="required")


def imports_in_flight(customer_id: int) -> int:
    """The customer's long imports queued or running: these and its lists' member imports (reached
    through the domain's relation `lists`: the lists app is above mail). One still "running"
    after STALE_AFTER has lost its task and holds no slot."""
    since = timezone.now() - STALE_AFTER
    mine = AccountImport.objects.filter(state=ImportState.RUNNING, created_at__gte=since,
                                        domain__pack__customer_id=customer_id).count()
    lists = Domain.objects.filter(pack__customer_id=customer_id, lists__imports__state=ImportState.RUNNING,
                                  lists__imports__created_at__gte=since).values("lists__imports").count()
    return mine + lists


def check_in_flight(domain_id: int) -> None:
    """Lock the domain's customer and refuse a long import when IMPORTS_IN_FLIGHT of its imports
    are queued or running (in a transaction)."""
    customer_id = Customer.objects.select_for_update().filter(packs__domains=domain_id).values_list(
        "pk", flat=True).first()
    limit = settings.IMPORTS_IN_FLIGHT
    if customer_id is not None and imports_in_flight(customer_id) >= limit:
        raise ValidationError(
            _("%(count)d imports are already running for your domains and lists, the most at once: wait until one "
              "of them is finished.") % {"count": limit}, code="busy")


def _fernet() -> Fernet:
    return Fernet(base64.urlsafe_b64encode(salted_hmac("mail.transfer", "import", algorithm="sha256").digest()))


def actor_ref(actor: Seat | None) -> list[Any]:
    """Who asked a long import, as a task's argument (a logged-in mailbox or a user); `actor_of` reads it back."""
    return ["mailbox" if isinstance(actor, Mailbox) else "user", getattr(actor, "pk", None)]


def actor_of(ref: list[Any]) -> Seat | None:
    kind, pk = ref
    model = Mailbox if kind == "mailbox" else User
    return None if pk is None else model._default_manager.filter(pk=pk).first()


def send_or_fail(job: Any, send: Callable[[], Any], *, what: str, logger: logging.Logger = log) -> None:
    """Queue a long import's task (after its commit: this one's, a list's). With the broker down
    the import is marked failed with nothing read (its page says it could not start; the cause is
    logged as `what` and kept on the row for support): never a 500, and no slot of
    IMPORTS_IN_FLIGHT held by a task never sent."""
    try:
        send()
    except Exception as error:  # noqa: BLE001 - the broker's failure, whatever its transport raises
        cause = f"{type(error).__name__}: {error}"
        logger.error("%s could not be queued (%s): marked failed", what, cause)
        type(job)._default_manager.filter(pk=job.pk).update(state=ImportState.FAILED,
                                                             error=f"not queued: {cause}"[:2000])
        job.state = ImportState.FAILED


def _queue(job: AccountImport, text: str, acting_user: Any) -> None:
    token = _fernet().encrypt(text.encode()).decode()  # the lines may hold passwords
    args = [job.pk, token, translation.get_language(), actor_ref(acting_user)]
    send_or_fail(job, lambda: panel_app.send_task(TASK, args=args), what=f"account import {job.pk} of domain "
                 f"{job.domain_id}")


def account_import(*, domain: Domain, kind: str, data: bytes | str, acting_user: Seat | None) -> AccountImport:
    """Import POP accounts or forwards into a domain (see the module): `data` is an upload's
    bytes or pasted text. A short import is done when this returns; a long one is queued."""
    kind = ImportKind(kind)
    windows_1252 = isinstance(data, bytes) and not csvfiles.is_utf8(data)
    text = csvfiles.decode(data) if isinstance(data, bytes) else data
    check_text(text, _("Paste some lines or choose a file."))
    rows = parse(text, kind)
    if len(rows) > MAX_LINES:
        raise ValidationError(_("Too many lines (%(count)d): at most %(max)d at once, split the file."),
                              code="too_large", params={"count": len(rows), "max": MAX_LINES})
    created_by = str(getattr(acting_user, "email", None) or acting_user or "")[:320]
    job = AccountImport(domain=domain, kind=kind, total=len(rows), created_by=created_by, windows_1252=windows_1252)
    if len(rows) > INLINE[kind]:
        with transaction.atomic():
            check_in_flight(domain.pk)
            job.save()
            transaction.on_commit(lambda: _queue(job, text, acting_user))
        return job
    job.save()
    tally = _Tally(job)
    try:
        tally.batch(rows)
    except Exception:
        AccountImport.objects.filter(pk=job.pk).update(state=ImportState.FAILED, **tally.fields())  # no slot held
        raise
    with transaction.atomic():
        AccountImport.objects.filter(pk=job.pk).update(state=ImportState.DONE, **tally.fields())
        _finish(tally, acting_user)
    job.refresh_from_db()
    return job


def run_import(import_id: int, token: str, language: str, actor: list[Any]) -> None:
    """The task's work for a long import: batch after batch, each committed with the progress,
    the refusals in the importer's language; then the audit row. A failure is kept on the import
    (what was created stays)."""
    job = AccountImport.objects.select_related("domain").filter(pk=import_id, state=ImportState.RUNNING).first()
    if job is None:
        return  # done already (a redelivered message), or its domain is gone
    with translation.override(language):
        tally = _Tally(job)
        try:
            rows = parse(_fernet().decrypt(token.encode()).decode(), job.kind)
            size = BATCH[ImportKind(job.kind)]
            for start in range(0, len(rows), size):
                tally.batch(rows[start:start + size])
            state, error = ImportState.DONE, ""
        except Exception as failure:  # noqa: BLE001 - the import's page says it stopped; what was created stays
            log.exception("account import %s of domain %s stopped", job.pk, job.domain)
            state, error = ImportState.FAILED, f"{type(failure).__name__}: {failure}"[:2000]
    with transaction.atomic():
        AccountImport.objects.filter(pk=job.pk).update(state=state, error=error, **tally.fields())
        _finish(tally, actor_of(actor))
