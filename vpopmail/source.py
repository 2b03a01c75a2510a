"""What a vpopmail / QmailAdmin / ezmlm server holds, as read from a copy of its tree
(`vpopmail.reader.read_server`) and before anything is written to the panel (`vpopmail.importer`).

Every value here is already decoded (text in `str`, whatever encoding the file used), mapped under
the copy's ROOT (no path points outside it) and stated in the panel's own terms where the panel
has one (a list's options carry `lists.options` names). What the reader could not map is a
`Problem` on the object it belongs to, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# vpopmail's flag bits (vpopmail.h), in the `gid` field of a vpasswd line.
NO_PASSWD_CHNG = 0x01
NO_POP = 0x02
NO_WEBMAIL = 0x04
NO_IMAP = 0x08
BOUNCE_MAIL = 0x10
NO_RELAY = 0x20
NO_DIALUP = 0x40
V_USER0 = 0x80
V_USER1 = 0x100
V_USER2 = 0x200
V_USER3 = 0x400
NO_SMTP = 0x800
QA_ADMIN = 0x1000
V_OVERRIDE = 0x2000
NO_SPAMASSASSIN = 0x4000
DELETE_SPAM = 0x8000
SA_ADMIN = 0x10000
SA_EXPERT = 0x20000
NO_MAILDROP = 0x40000


@dataclass
class Problem:
    """A line or file the reader (or the importer) could not map, and why; shown by `--dry-run`
    and in the import's report."""

    where: str  # the file, relative to ROOT, with ":LINE" when a line is meant
    what: str  # the line or value, shortened, control characters replaced
    why: str  # in English, for the operator


@dataclass
class Vacation:
    subject: str
    message: str
    sender: str = ""  # the From the old server put on replies (the panel's replies come from the mailbox)
    reply_seconds: int | None = None  # autorespond's time between two replies to one sender, if given


@dataclass
class Mailbox:
    local_part: str  # lower-case
    password_hash: str  # Dovecot form: "{MD5-CRYPT}$1$...", "{SHA512-CRYPT}$6$...", ...; "" when unusable
    real_name: str = ""  # the gecos field, decoded
    flags: int = 0  # vpopmail's bits (above)
    quota_bytes: int | None = None  # None: NOQUOTA
    quota_messages: int | None = None  # vpopmail's "NNNC" part (the panel has no message quota: reported)
    home: Path | None = None  # the mailbox's folder under ROOT
    maildir: Path | None = None  # its Maildir (Maildir++ tree) under ROOT, None when absent
    # What its own `.qmail` says (none: delivered to its Maildir).
    forward_to: list[str] = field(default_factory=list)
    keep_copy: bool = False  # forwards and a local delivery line
    delete_all: bool = False  # the `.qmail` discards everything
    vacation: Vacation | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def allow_pop3(self) -> bool:
        return not self.flags & NO_POP

    @property
    def allow_imap(self) -> bool:
        return not self.flags & NO_IMAP

    @property
    def allow_smtp(self) -> bool:
        return not self.flags & (NO_SMTP | NO_RELAY)

    @property
    def is_admin(self) -> bool:
        return bool(self.flags & QA_ADMIN)


@dataclass
class Forward:
    local_part: str  # ":" of the file name already turned into "."
    destinations: list[str] = field(default_factory=list)  # addresses; empty with `discard`
    discard: bool = False  # a file of comments only: mail accepted and dropped
    problems: list[Problem] = field(default_factory=list)


@dataclass
class Robot:
    local_part: str
    subject: str
    message: str
    sender: str = ""
    copy_to: str = ""
    reply_seconds: int | None = None
    problems: list[Problem] = field(default_factory=list)


@dataclass
class CatchAll:
    """`.qmail-default`, in the panel's `mail.models.CatchAllMode` terms."""

    mode: str  # "bounce", "delete", "mailbox" (a local part of the domain), "remote" (an address), "domain"
    target: str = ""  # the local part, the address, or the other domain (`$EXT@domain`)


@dataclass
class MailingList:
    name: str
    owner: str = ""
    options: dict[str, object] = field(default_factory=dict)  # `lists.options` names → values
    texts: dict[str, str] = field(default_factory=dict)  # the panel's text file names → text
    subscribers: list[str] = field(default_factory=list)
    moderators: list[str] = field(default_factory=list)
    digest_subscribers: list[str] = field(default_factory=list)
    path: Path | None = None  # the list's folder under ROOT
    problems: list[Problem] = field(default_factory=list)


@dataclass
class Limits:
    """`.qmailadmin-limits` (or `vlimits.default`), in the panel's `hosting.models.Plan` terms:
    −1 unlimited, 0 none; None where the file says nothing."""

    max_mailboxes: int | None = None
    max_forwards: int | None = None
    max_robots: int | None = None
    max_lists: int | None = None
    default_quota_mb: int | None = None
    problems: list[Problem] = field(default_factory=list)


@dataclass
class Domain:
    name: str  # IDNA (ASCII), lower-case
    path: Path  # its folder under ROOT
    aliases: list[str] = field(default_factory=list)  # alias domains' names (users/assign, virtualdomains)
    limits: Limits = field(default_factory=Limits)
    mailboxes: list[Mailbox] = field(default_factory=list)
    forwards: list[Forward] = field(default_factory=list)
    robots: list[Robot] = field(default_factory=list)
    catchall: CatchAll | None = None  # None: no `.qmail-default` (the panel's default: bounce)
    lists: list[MailingList] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass
class Server:
    root: Path
    domains: list[Domain] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # what belongs to no domain (assign lines...)

    def all_problems(self) -> list[Problem]:
        """Every problem, the server's first, then each domain's and each of its objects'."""
        found = list(self.problems)
        for domain in self.domains:
            found += domain.limits.problems + domain.problems
            for group in (domain.mailboxes, domain.forwards, domain.robots, domain.lists):
                for item in group:
                    found += item.problems
        return found
