"""The contract between the panel and the agents of the mail hosts, in one place for both sides.

Plain Python, no Django: the agent (`mailhost/`) imports it, and so does the panel
(`provisioning`, `hosting`). It names the Celery tasks and queues they talk through, the format
version of the domain document, and the shape of everything that crosses the broker: the domain
document (`provisioning/snapshot.py` writes it, `mailhost/render.py`, `apply.py` and `lists.py`
read it), the copy request of a move (`mailhost/migrate.py`) and the reports the agent sends back.

A present domain travels whole (DomainDocument: on its first push, after a resync, to a new host,
or when the host says it is behind) or as the changes since the revision its host last confirmed
(DomainDelta), so a change costs what it changes, not what the domain holds. An alias domain
holds nothing of its own: its document (AliasDocument, format 5) names its target and always
travels whole.

`check` compares a value with one of these shapes (keys and types); the agent checks every
document with it before reading anything else (`check_document`), the tests check what the panel
builds with `complete=True` (every key of the shape written, optional or not).
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Callable
from typing import (
    TYPE_CHECKING,
    Any,
    Literal,
    NotRequired,
    TypedDict,
    TypeVar,
    Union,
    cast,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

if TYPE_CHECKING:
    from typing_extensions import TypeIs  # typing's own from Python 3.13

# The version of the domain document. A change to its shape that an older agent would misread
# gets a new number; an agent refuses a document whose number it does not know.
# 2: a present domain is sent either complete (DomainDocument) or as the changes since a revision
#    the host has (DomainDelta, which has "base"); an agent of format 1 would take a delta for the
#    complete domain and drop everything it does not list.
# 3: keys an agent of format 2 would refuse as unknown: a robot's `reply_seconds` (one reply per
#    sender in that time), a mailbox's `renamed_from` (its mail follows it to the new name).
# 4: a present domain's `verified` (false: not yet proven its customer's, the host does not serve
#    it), which an agent of format 3 would refuse as unknown and, worse, could not honour; a
#    list's `nomail_subscribers` (mlmmj's nomailsubs.d: members who may post and get no mail).
# 5: an alias domain's document (AliasDocument: a present domain with `alias_of`, the IDNA name of
#    the domain whose addresses it answers for, and no objects of its own; always complete, never
#    a delta). An agent of format 4 would refuse `alias_of` as unknown; were it read as a domain
#    without objects, every address of the alias would bounce instead of reaching its target.
# 6: a present domain's `language` (its customer's: the host's quota warnings, in that language),
#    which an agent of format 5 would refuse as unknown. Absent (formats 1 to 5): the host keeps
#    the one it has (none: English).
#    And a present domain's `dkim` (the selector and private key its host signs its mail with, or
#    null: none), which an agent of format 5 would refuse as unknown. Absent (formats 1 to 5, or a
#    delta): the key the host has is left as it is. An alias domain signs with its target's key.
# 7: a present domain's `spam` (its spam filtering: mode, score, allowed and blocked senders, or
#    null: off), which an agent of format 6 would refuse as unknown. Absent (formats 1 to 6): the
#    host keeps the settings it has (none: off). An alias domain is filtered as its target.
FORMAT = 7
# What this agent reads: the documents of formats 1 to 6 are read as format 7's (so agents can be
# upgraded before the panel); a delta says format 2 or later, `alias_of` format 5 or later,
# `language` and `dkim` format 6 or later, `spam` format 7 or later.
READS = (1, 2, 3, 4, 5, 6, 7)
FIRST_DELTA_FORMAT = 2
FIRST_ALIAS_FORMAT = 5
FIRST_DKIM_FORMAT = 6
FIRST_LANGUAGE_FORMAT = 6  # a present domain's `language`
FIRST_SPAM_FORMAT = 7  # a present domain's `spam`

# Queues: the panel's workers consume PANEL_QUEUE, the agent of host NAME consumes host_queue(NAME).
PANEL_QUEUE = "panel"
# The panel's long work (a list's member import: lists.tasks) has its own queue and worker, so that
# no tenant's bulk job delays any domain's push (PANEL_QUEUE). Routed in config/settings.py.
BULK_QUEUE = "panel.bulk"
HOST_QUEUE_PREFIX = "host."


def host_queue(name: str) -> str:
    """The queue the agent of mail host `name` consumes."""
    return f"{HOST_QUEUE_PREFIX}{name}"


# Tasks the agent runs (sent by the panel to host_queue(NAME); MAINTAIN and REPORT_USAGE by the agent's beat).
APPLY = "mailhost.apply"  # args=[pack(Document)], or the document itself
MIGRATE = "mailhost.migrate"  # args=[CopyRequest]
MAINTAIN = "mailhost.maintain"
REPORT_USAGE = "mailhost.report_usage"
MODERATE = "mailhost.moderate"  # args=[Moderation]: a moderator's decision taken in the panel
REPORT_HELD = "mailhost.report_held"  # args=[HeldAsk]: the panel asks what is held now (a page opened)
BEAT = "mailhost.heartbeat"  # the agent's beat: tells the panel it is alive (task HEARTBEAT)
IMPORT_MAIL = "mailhost.import_mail"  # args=[MailImportRequest]: an old server's Maildir++ brought in (mailimport)
AGENT_TASKS = (APPLY, MIGRATE, MAINTAIN, REPORT_USAGE, MODERATE, REPORT_HELD, BEAT, IMPORT_MAIL)
# The agent's heartbeat: every this many seconds (and at its worker's start); the panel flags a
# host silent after a few missed (provisioning.services.HOST_SILENT_AFTER).
HEARTBEAT_SECONDS = 15

# Tasks the panel runs (queue PANEL_QUEUE). The agent sends the first five.
REPORT = "provisioning.report"  # kwargs=Report
MIGRATED = "provisioning.migrated"  # kwargs=Migrated
LIST_MEMBERS = "provisioning.list_members"  # kwargs=ListMembers
USAGE = "provisioning.usage"  # kwargs=Usage
HELD = "provisioning.held"  # kwargs=HeldReport
HEARTBEAT = "provisioning.heartbeat"  # kwargs=Heartbeat
PUSH_DOMAIN = "provisioning.push_domain"
PUSH_RETIRED = "provisioning.push_retired"
RECONCILE = "provisioning.reconcile"
MAIL_IMPORTED = "provisioning.mail_imported"  # kwargs=MailImported
PANEL_TASKS = (REPORT, MIGRATED, LIST_MEMBERS, USAGE, HELD, HEARTBEAT, PUSH_DOMAIN, PUSH_RETIRED, RECONCILE,
               MAIL_IMPORTED)
PANEL_TASK_PATTERN = "provisioning.*"  # Celery routes every panel task to PANEL_QUEUE


# --------------------------------------------------------------------------------------------------
# Names no hosted domain may take. The host routes a list's mail through `<domain>.mlmmj.invalid`
# and catch-all "delete" through `discard.invalid` (mailhost/render.py): a hosted domain of that
# name would receive them. The panel refuses these names when a domain is added
# (hosting.validators.normalize_hosted_domain, which also refuses the mail hosts' own names) and
# the agent refuses a document for one (render.rows), so no domain can collide with the routing.
# --------------------------------------------------------------------------------------------------
LIST_INTERNAL_DOMAIN = "mlmmj.invalid"
DISCARD_DOMAIN = "discard.invalid"
# A name that is one of these or ends with "." + one of them. `.test` (RFC 6761) is not here:
# the demo and the tests host it, and it never reaches anyone else.
RESERVED_SUFFIXES: dict[str, str] = {
    "invalid": "RFC 6761",  # never exists; the host's own routing lives there
    "localhost": "RFC 6761",
    "example": "RFC 6761",  # documentation only
    "local": "RFC 6762",  # multicast DNS
    "onion": "RFC 7686",
    "alt": "RFC 9476",
    "arpa": "RFC 3172",  # infrastructure (in-addr.arpa...), home.arpa (RFC 8375) included
    "internal": "ICANN",  # private use (2024)
    "home": "ICANN",  # never delegated: name collisions (2018)
    "corp": "ICANN",
    "mail": "ICANN",
    "localdomain": "de facto",  # localhost.localdomain of Unix hosts
}


def reserved_suffix(name: str) -> str | None:
    """The special-use suffix `name` (an ASCII domain name, lower case, no final dot) is or ends
    with, or None when it may be hosted."""
    labels = name.split(".")
    for start in range(len(labels)):
        suffix = ".".join(labels[start:])
        if suffix in RESERVED_SUFFIXES:
            return suffix
    return None


# --------------------------------------------------------------------------------------------------
# The domain document (task APPLY). Required keys are those the agent cannot do without; the
# panel writes every key (NotRequired ones too: the agent has a default for each).
# --------------------------------------------------------------------------------------------------


class Vacation(TypedDict):
    subject: NotRequired[str]
    message: NotRequired[str]
    days: NotRequired[int | None]
    start: NotRequired[str | None]  # ISO date
    end: NotRequired[str | None]


class Mailbox(TypedDict):
    local_part: str
    password_hash: str  # {SCHEME}..., never a password
    quota_bytes: int  # 0: no limit
    active: bool
    allow_pop3: bool
    allow_imap: bool
    allow_smtp: bool
    routing: NotRequired[Literal["standard", "forward", "delete"]]
    forward_to: NotRequired[list[str]]
    keep_copy: NotRequired[bool]
    vacation: NotRequired[Vacation | None]
    # The mailbox's previous local part, until its host confirms the rename ("" or absent: none).
    # A host that has not applied the rename yet moves the old home (Maildir...) to the new name,
    # merging it into mail already there; one that has (it keeps a record) does nothing.
    renamed_from: NotRequired[str]


class Forward(TypedDict):
    local_part: str
    destinations: NotRequired[list[str]]  # empty or absent: mail accepted and dropped


class Robot(TypedDict):
    local_part: str
    copy_to: NotRequired[str]
    subject: NotRequired[str]
    message: NotRequired[str]
    reply_seconds: NotRequired[int]  # one reply per sender in this time (render's bounds; absent: its default)


class CatchAll(TypedDict):
    mode: NotRequired[str]  # bounce, delete, mailbox, remote, domain (render refuses others)
    target: NotRequired[str]


class MailingList(TypedDict):
    name: str
    owner: NotRequired[str]
    prefix: NotRequired[str]
    posting: NotRequired[str]
    reply_to: NotRequired[str]
    reply_to_address: NotRequired[str]
    trailer: NotRequired[str]
    digest: NotRequired[bool]
    remote_admin: NotRequired[bool]
    remote_admin_list: NotRequired[bool]  # remote administrators may ask for the subscribers (+list)
    request_address: NotRequired[bool]  # ezmlm's list-request@ takes commands in its Subject
    language: NotRequired[str]  # fr or en: mlmmj's texts
    texts: NotRequired[dict[str, str]]  # text files edited in the panel: {file name: text}
    private: NotRequired[bool]
    sub_confirm: NotRequired[bool]
    sub_moderate: NotRequired[bool]
    unsub_confirm: NotRequired[bool]
    archive: NotRequired[bool]
    archive_access: NotRequired[str]
    subscribers: NotRequired[list[str]]
    moderators: NotRequired[list[str]]
    digest_subscribers: NotRequired[list[str]]
    nomail_subscribers: NotRequired[list[str]]  # format 4: subscribed without mail (may post)


class Dkim(TypedDict):
    """The key a domain's mail is signed with (format 6): the agent checks the selector (one DNS
    label) and the key (an RSA private key in PEM) before writing them for rspamd."""

    selector: str
    private_key: str  # PEM (PKCS#8 or PKCS#1): a secret, written only to a root/_rspamd file 0640


class Spam(TypedDict):
    """A domain's spam filtering (format 7), checked again by the agent (mailhost.spam) before it
    writes rspamd's settings map and the Junk filing rule."""

    mode: str  # off, mark (Subject prefixed), junk (filed in Junk), reject (refused at SMTP)
    score: float  # the score from which the mode acts (5 to 30)
    allow: list[str]  # senders (addresses, or domain names: every address of it) never filtered
    block: list[str]  # senders refused whatever the score


class PresentDomain(TypedDict):
    """What both documents of a present domain carry: the domain's objects, each complete."""

    format: int
    domain: str
    revision: int
    state: Literal["present"]
    # False: the domain is not yet proven its customer's, and the host does not serve it (its
    # addresses are not local there: mail to them leaves for the domain's real MX). Absent (formats
    # 1 to 3): true, every domain was served.
    verified: NotRequired[bool]
    mailboxes: NotRequired[list[Mailbox]]
    forwards: NotRequired[list[Forward]]
    robots: NotRequired[list[Robot]]
    catchall: NotRequired[CatchAll | None]  # absent: bounce (a delta: left as it is)
    lists: NotRequired[list[MailingList]]
    dkim: NotRequired[Dkim | None]  # format 6; absent: the host's key left as it is, null: none
    # Format 6: the language of the customer's mail from the host (fr, en: quota warnings); absent:
    # the host keeps the one it has (none: English).
    language: NotRequired[str]
    spam: NotRequired[Spam | None]  # format 7; absent: the host's settings left as they are, null: off


# What a domain document may carry beside its identity: an alias domain's document holds none of it.
OBJECT_KEYS = ("mailboxes", "forwards", "robots", "catchall", "lists")


class AliasDocument(TypedDict):
    """An alias domain (format 5): every address `x@domain` is `x@alias_of` on this host, for mail
    (when `x@alias_of` is held here, or `alias_of` has a catch-all) and for logins (x@alias_of's
    password, mailbox, quota and Sieve). It has no objects of its own (OBJECT_KEYS: refused), so
    it always travels whole; `verified` false: not served, as a domain."""

    format: int
    domain: str
    revision: int
    state: Literal["present"]
    verified: NotRequired[bool]
    alias_of: str  # the target's IDNA name: a hosted domain of the same host, never itself an alias


class DomainDocument(PresentDomain):
    """A present domain's complete desired state: what it does not list, the host removes."""


class DomainDelta(PresentDomain):
    """What changed in a present domain since revision `base`: every object changed after it, the
    names whose object was deleted after it (a name deleted then used again is in both), and the
    catch-all. A host applies it only on top of `base` or a later revision; otherwise it answers
    `behind` and the panel sends the complete document."""

    base: int
    removed: NotRequired[list[str]]  # local parts


class AbsentDocument(TypedDict):
    """The document that removes a domain from a host."""

    format: int
    domain: str
    revision: int
    state: Literal["absent"]


Document = Union[DomainDocument, DomainDelta, AliasDocument, AbsentDocument]  # noqa: UP007 - read by get_args


def is_delta(document: object) -> TypeIs[DomainDelta]:
    """Whether a (checked) document is a DomainDelta rather than a complete state."""
    return isinstance(document, dict) and "base" in document


def is_alias(document: object) -> TypeIs[AliasDocument]:
    """Whether a (checked) document is an alias domain's (AliasDocument)."""
    return isinstance(document, dict) and "alias_of" in document and document.get("state") == "present"


# A document travels packed: its JSON, zlib-compressed, in base64, as the task's one argument.
# Celery decodes a task's arguments twice (once when the message arrives, again to run it); a
# string costs nothing to decode, where the 35 MB of a domain of 100,000 mailboxes took 0.7 s each
# time. The agent also takes an unpacked document (a panel older than this agent sends those).
MAX_DOCUMENT_BYTES = 1 << 30  # unpacked: a domain of 500,000 mailboxes is about 175 MB


def pack(document: Document) -> str:
    """The APPLY task's argument for this document."""
    data = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    return base64.b64encode(zlib.compress(data, 1)).decode("ascii")  # level 1: 6 costs twice the time


def unpack(packed: str) -> object:
    """The document a `pack` string carries (its shape still to check: `check_document`)."""
    inflate = zlib.decompressobj()
    try:
        data = inflate.decompress(base64.b64decode(packed, validate=True), MAX_DOCUMENT_BYTES)
        if inflate.unconsumed_tail or not inflate.eof:
            raise DocumentError("a packed document larger than 1 GiB, or cut short")
        return json.loads(data)
    except (binascii.Error, zlib.error, ValueError) as error:  # UnicodeError and JSON's are ValueErrors
        if isinstance(error, DocumentError):
            raise
        raise DocumentError(f"a packed document that does not unpack: {error}") from None


# --------------------------------------------------------------------------------------------------
# A move (task MIGRATE) and what the agent sends back
# --------------------------------------------------------------------------------------------------


class CopyRequest(TypedDict):
    move: int  # the panel's DomainMove
    domain: str
    mailboxes: list[str]  # addresses
    target: str  # tcp:HOST:PORT of the new host's doveadm server


class Report(TypedDict):
    """What became of a document (task REPORT); an error means it was not applied."""

    host: str
    domain: str
    revision: int
    state: str
    error: NotRequired[str]
    behind: NotRequired[bool]  # a delta on a revision this host does not have: send the whole domain


class Migrated(TypedDict):
    """What became of a copy request (task MIGRATED): what was copied, or the error."""

    host: str
    move: Any  # the request's value, sent back as it came
    domain: str
    copied: NotRequired[list[str]]
    seconds: NotRequired[float]
    error: NotRequired[str]


# --------------------------------------------------------------------------------------------------
# A mail import (task IMPORT_MAIL): an old server's Maildir++ (vpopmail, QmailAdmin) copied into
# mailboxes this host already has, through Doveadm (mailhost/mailimport.py), and what came in
# --------------------------------------------------------------------------------------------------


class MailboxSource(TypedDict):
    address: str  # local@domain, a mailbox of the request's domain on this host
    path: str  # absolute path of the old mailbox's Maildir on this host, under its import root


class MailImportRequest(TypedDict):
    id: int  # the panel's MailImport
    domain: str  # IDNA
    mailboxes: list[MailboxSource]


class MailboxImported(TypedDict):
    address: str
    copied: int  # messages brought in by this run
    present: int  # messages of the old Maildir already brought in by an earlier run (not copied again)
    folders: list[str]  # the old Maildir's folders, as this host names them (INBOX first)
    subscribed: NotRequired[list[str]]  # folders subscribed from the old server's subscriptions
    error: NotRequired[str]  # what went wrong for this mailbox (the others are not affected)


class MailImported(TypedDict):
    """What became of an import request (task MAIL_IMPORTED): one entry per mailbox asked."""

    host: str
    id: Any  # the request's value, sent back as it came
    domain: str
    mailboxes: list[MailboxImported]
    seconds: NotRequired[float]
    error: NotRequired[str]  # the whole request refused (its shape): no mailbox was tried


MemberKind = Literal["subscriber", "digest", "nomail"]  # who gets the list's mail: each post, digests, none


class ListChange(TypedDict):
    """Membership of a list changed by mail on the host (subscribe/unsubscribe by e-mail)."""

    domain: str
    list: str
    kind: MemberKind
    added: list[str]
    removed: list[str]
    # Addresses found in mlmmj's files that the panel's rules refuse (subscribed before the list
    # pipe refused them at the door, or written there by hand): the host removed them from the
    # list; the panel logs them, and takes in the ones it can hold in another form (an IDN domain
    # in Unicode). Each as found, at most 320 characters, control characters as U+FFFD.
    refused: NotRequired[list[str]]


class ListMembers(TypedDict):
    host: str
    changes: list[ListChange]


class HeldItem(TypedDict):
    """A post or a subscription request mlmmj holds for the list's moderators. Plain text only,
    bounded and without control characters (mailhost/moderation.py): it is a stranger's mail."""

    kind: Literal["post", "subscription"]
    key: str  # mlmmj's cookie (the file moderation/<key> or moderation/subscribe<key>)
    sender: str  # an address
    subject: str  # decoded (RFC 2047), one line; "" for a subscription request
    received_at: str  # ISO 8601, when the host held it
    preview: str  # the start of the text/plain part, decoded; never HTML


class ListHeld(TypedDict):
    domain: str
    list: str
    items: list[HeldItem]  # everything the list holds now (up to moderation.MAX_ITEMS, oldest first)


class HeldReport(TypedDict):
    """What the host's lists hold (task HELD). `complete`: every list of the host, and a list it
    does not name holds nothing; otherwise only the lists named are reported."""

    host: str
    lists: list[ListHeld]
    complete: bool


class Moderation(TypedDict):
    """A decision on one held item, taken in the panel (task MODERATE)."""

    domain: str
    list: str
    key: str
    kind: Literal["post", "subscription"]
    decision: Literal["approve", "reject"]


class HeldAsk(TypedDict):
    """Which list to report at once (task REPORT_HELD); both absent: every list."""

    domain: NotRequired[str]
    list: NotRequired[str]


class Usage(TypedDict):
    host: str
    usage: dict[str, int]  # address -> bytes used


class Heartbeat(TypedDict):
    """The agent is alive (task HEARTBEAT): its host, and the document formats it reads (READS)."""

    host: str
    reads: list[int]
    started: NotRequired[bool]  # the agent's worker just started: what was on its way to it may be lost


# --------------------------------------------------------------------------------------------------
# Checking a value against a shape
# --------------------------------------------------------------------------------------------------


class DocumentError(ValueError):
    """A document (or request) the agent does not apply: it does not match the contract."""


class UnknownFormat(DocumentError):
    """A document of a format this agent does not read."""


class Behind(DocumentError):
    """A delta whose base revision this host does not have (it applies nothing and says so)."""


class _Mismatch(Exception):  # noqa: N818 - internal, turned into a DocumentError with its path
    def __init__(self, path: list[str], problem: str) -> None:
        super().__init__(problem)
        self.path, self.problem = path, problem


Checker = Callable[[Any, bool], None]  # (value, complete) -> None, or _Mismatch
_checkers: dict[Any, Checker] = {}


def _type_name(value: Any) -> str:
    return type(value).__name__


def _scalar(expected: type) -> Checker:
    def check(value: Any, complete: bool) -> None:
        if type(value) is not expected:  # exact type: True is no int, 1 is no float
            raise _Mismatch([], f"expected {expected.__name__}, got {_type_name(value)}")

    return check


def _typed_dict(shape: Any) -> Checker:
    # Read here, not from __required_keys__: with postponed annotations Python 3.11 counts a
    # NotRequired key as required.
    hints = get_type_hints(shape, include_extras=True)
    required = frozenset(key for key, tp in hints.items() if get_origin(tp) is not NotRequired)
    every = frozenset(hints)
    fields = {key: _checker(tp) for key, tp in hints.items()}

    def check(value: Any, complete: bool) -> None:
        if type(value) is not dict:
            raise _Mismatch([], f"expected an object, got {_type_name(value)}")
        keys = value.keys()
        if not keys >= (every if complete else required) or not keys <= every:
            missing = ", ".join(sorted((every if complete else required) - keys))
            unknown = ", ".join(sorted(str(k) for k in keys - every))
            problems = [f"missing {missing}"] * bool(missing) + [f"unknown {unknown}"] * bool(unknown)
            raise _Mismatch([], "; ".join(problems))
        for key, item in value.items():
            try:
                fields[key](item, complete)
            except _Mismatch as mismatch:
                mismatch.path.insert(0, f".{key}")
                raise

    return check


def _list(item_check: Checker) -> Checker:
    def check(value: Any, complete: bool) -> None:
        if type(value) is not list:
            raise _Mismatch([], f"expected a list, got {_type_name(value)}")
        for index, item in enumerate(value):
            try:
                item_check(item, complete)
            except _Mismatch as mismatch:
                mismatch.path.insert(0, f"[{index}]")
                raise

    return check


def _dict(key_check: Checker, value_check: Checker) -> Checker:
    def check(value: Any, complete: bool) -> None:
        if type(value) is not dict:
            raise _Mismatch([], f"expected an object, got {_type_name(value)}")
        for key, item in value.items():
            try:
                key_check(key, complete)
                value_check(item, complete)
            except _Mismatch as mismatch:
                mismatch.path.insert(0, f"[{key!r}]")
                raise

    return check


def _literal(values: tuple[Any, ...]) -> Checker:
    def check(value: Any, complete: bool) -> None:
        if type(value) not in {type(v) for v in values} or value not in values:
            raise _Mismatch([], f"expected one of {', '.join(map(repr, values))}, got {value!r}")

    return check


def _union(options: list[Checker], names: str, *, optional: Checker | None = None) -> Checker:
    def check(value: Any, complete: bool) -> None:
        if optional is not None:  # X | None: a value that is not None is checked as an X
            if value is not None:
                optional(value, complete)
            return
        for option in options:
            try:
                option(value, complete)
            except _Mismatch:
                continue
            return
        raise _Mismatch([], f"expected {names}, got {_type_name(value)}")

    return check


def _checker(tp: Any) -> Checker:
    """The check of one annotation (built once per type and kept)."""
    if tp in _checkers:
        return _checkers[tp]
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        made: Checker = lambda value, complete: None  # noqa: E731
    elif tp is type(None):
        made = _literal((None,))
    elif tp in (str, int, bool, float):
        made = _scalar(tp)
    elif is_typeddict(tp):
        made = _typed_dict(tp)
    elif origin is NotRequired:
        made = _checker(args[0])
    elif origin is Literal:
        made = _literal(args)
    elif origin is list:
        made = _list(_checker(args[0]))
    elif origin is dict:
        made = _dict(_checker(args[0]), _checker(args[1]))
    elif args and (origin is Union or type(tp).__name__ == "UnionType"):
        others = [a for a in args if a is not type(None)]
        made = _union([_checker(a) for a in args], " or ".join(getattr(a, "__name__", str(a)) for a in args),
                      optional=_checker(others[0]) if len(others) == 1 < len(args) else None)
    else:
        raise TypeError(f"the contract cannot check {tp!r}")
    _checkers[tp] = made
    return made


Shape = TypeVar("Shape")


def check(value: object, shape: type[Shape], *, complete: bool = False) -> Shape:
    """`value` as its `shape` (a TypedDict of this module, or a list of one, ...); DocumentError
    unless it has the required keys (every key with `complete`), no other key, each value of its
    type (exactly: True is no int)."""
    try:
        _checker(shape)(value, complete)
    except _Mismatch as mismatch:
        where = "".join(mismatch.path).lstrip(".") or "the document"
        raise DocumentError(f"{where}: {mismatch.problem}") from None
    return cast(Shape, value)  # what the check just proved


def check_document(document: object, *, complete: bool = False) -> Document:
    """The document as its shape, once the agent checked its format, then its shape (before it
    reads anything else)."""
    version = document.get("format") if isinstance(document, dict) else None
    if (not isinstance(document, dict) or type(version) is not int or version not in READS
            or version < FIRST_DELTA_FORMAT and is_delta(document)):
        raise UnknownFormat(
            f"unknown document format {version!r} (this agent reads {', '.join(map(str, READS))})")
    if document.get("state") == "absent":
        return check(document, AbsentDocument, complete=complete)
    if "alias_of" in document:
        if version < FIRST_ALIAS_FORMAT:
            raise DocumentError(f"alias_of: unknown in format {version} (an alias domain is format "
                                f"{FIRST_ALIAS_FORMAT} or later)")
        objects = [key for key in (*OBJECT_KEYS, "base", "removed") if key in document]
        if objects:
            raise DocumentError(f"an alias domain has no objects of its own and travels whole: "
                                f"{', '.join(objects)} refused")
        return check(document, AliasDocument, complete=complete)
    if "dkim" in document and version < FIRST_DKIM_FORMAT:
        raise DocumentError(f"dkim: unknown in format {version} (a domain's DKIM key is format "
                            f"{FIRST_DKIM_FORMAT} or later)")
    if "language" in document and version < FIRST_LANGUAGE_FORMAT:
        raise DocumentError(f"language: unknown in format {version} (a domain's language is format "
                            f"{FIRST_LANGUAGE_FORMAT} or later)")
    if "spam" in document and version < FIRST_SPAM_FORMAT:
        raise DocumentError(f"spam: unknown in format {version} (a domain's spam filtering is format "
                            f"{FIRST_SPAM_FORMAT} or later)")
    if is_delta(document):
        return check(document, DomainDelta, complete=complete)
    return check(document, DomainDocument, complete=complete)
