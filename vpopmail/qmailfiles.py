"""The line forms of qmail's and vpopmail's files, parsed without touching the disk: `users/assign`,
`control/virtualdomains`, `vpasswd`, quotas, hashes, `.qmailadmin-limits`, the lines of a
`.qmail` file (as QmailAdmin and vdelivermail write them), autorespond's command line and message
file, and `.qmail-default`'s catch-all."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from vpopmail import source
from vpopmail.text import decode, decode_lines

# --- users/assign and control/virtualdomains ------------------------------------------------


@dataclass
class AssignLine:
    name: str  # the domain the line answers for (an alias domain when it differs from `real`)
    real: str  # the domain whose users are meant
    directory: str  # the real domain's folder, as the old server wrote it


def parse_assign_line(line: str) -> AssignLine | None:
    """`+DOMAIN-:REAL:UID:GID:DIR:-::` (vpopmail's add_domain_assign). None: not that form."""
    if not line.startswith("+"):
        return None
    fields = line[1:].split(":")
    if len(fields) < 5 or not fields[0].endswith("-") or not fields[1] or not fields[4].startswith("/"):
        return None
    return AssignLine(fields[0][:-1].strip().lower().rstrip("."), fields[1].strip().lower().rstrip("."),
                      fields[4].strip())


def parse_virtualdomains_line(line: str) -> tuple[str, str] | None:
    """`DOMAIN:PREFIX` → (domain, prefix). None: not that form (a `.wildcard`, `user@host`...)."""
    name, sep, prefix = line.partition(":")
    name, prefix = name.strip().lower().rstrip("."), prefix.strip().lower()
    if not sep or not name or not prefix or name.startswith(".") or "@" in name or ":" in prefix:
        return None
    return name, prefix


# --- vpasswd -------------------------------------------------------------------------------


@dataclass
class VpasswdLine:
    name: str
    hash: str  # as written (not yet Dovecot's form)
    flags: int
    gecos: str
    directory: str
    quota: str
    problems: list[str] = field(default_factory=list)  # why a field was not read


def parse_vpasswd_line(line: bytes) -> VpasswdLine | None:
    """`name:hash:uid:gid:gecos:dir:quota[:clear]`. The clear-text 8th field is never decoded nor
    kept. None: fewer than 7 fields."""
    fields = line.rstrip(b"\r\n").split(b":")
    if len(fields) < 7:
        return None
    # fields[7], the clear-text copy when vpopmail kept one, is never looked at.
    name = decode(fields[0]).strip().lower()
    problems = []
    try:
        flags = int(fields[3].strip() or b"0")
    except ValueError:
        flags = 0
        problems.append("the flags field (gid) is not a number: no flag read")
    return VpasswdLine(name, fields[1].decode("ascii", errors="replace").strip(), flags, decode(fields[4]).strip(),
                       decode(fields[5]).strip(), fields[6].decode("ascii", errors="replace").strip(), problems)


_SIZE = re.compile(r"^(\d+)([kKmMgG]?)[sS]?$")
_COUNT = re.compile(r"^(\d+)[cC]$")
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_quota(text: str) -> tuple[int | None, int | None] | None:
    """`NOQUOTA` → (None, None); `NNNS` / `NNN` / `NNNMS` → (bytes, None); `NNNS,MMMC` → (bytes,
    messages); `MMMC` → (None, messages). None: not a quota."""
    text = text.strip()
    if text.upper() in ("NOQUOTA", ""):
        return None, None
    size: int | None = None
    count: int | None = None
    parts = text.split(",")
    if len(parts) > 2:
        return None
    for index, part in enumerate(parts):
        part = part.strip()
        size_match, count_match = _SIZE.match(part), _COUNT.match(part)
        if count_match and (index == 1 or len(parts) == 1) and count is None:
            count = int(count_match.group(1))
        elif size_match and index == 0 and not count_match:
            size = int(size_match.group(1)) * _UNITS[size_match.group(2).lower()]
        else:
            return None
    return (size or None), count


_DES = re.compile(r"^[./0-9A-Za-z]{13}$")
_CRYPT_SCHEMES = (("$1$", "MD5-CRYPT"), ("$5$", "SHA256-CRYPT"), ("$6$", "SHA512-CRYPT"), ("$2a$", "BLF-CRYPT"),
                  ("$2b$", "BLF-CRYPT"), ("$2y$", "BLF-CRYPT"))
_CRYPT_CHARS = re.compile(r"^[./0-9A-Za-z$=,]+$")


def dovecot_hash(value: str) -> tuple[str, str]:
    """A vpasswd hash in Dovecot's `{SCHEME}` form, and "" or why it was not taken.

    MD5-crypt, SHA-256/512-crypt and bcrypt keep their scheme; a traditional DES crypt becomes
    `{CRYPT}` (Dovecot checks it with crypt(3); the panel's own login does not: the importer says
    so). Anything else (empty, a clear-text password, an unknown form) gives "": never kept."""
    if not value:
        return "", "no password hash"
    if value[0] in "*!":
        return "", "a locked password (starts with * or !)"
    if value.startswith("{"):
        return "", "a hash in an unexpected {SCHEME} form"
    for prefix, scheme in _CRYPT_SCHEMES:
        if value.startswith(prefix):
            if not _CRYPT_CHARS.match(value):
                break
            return "{" + scheme + "}" + value, ""
    else:
        if _DES.match(value):
            return "{CRYPT}" + value, ""
    return "", "not a crypt hash vpopmail writes (MD5, SHA-256, SHA-512, bcrypt or DES crypt)"


# --- .qmailadmin-limits / vlimits.default ---------------------------------------------------

# vlimits' names whose value is the panel's plan counts.
LIMIT_COUNTS = {"maxpopaccounts": "max_mailboxes", "maxforwards": "max_forwards",
                "maxautoresponders": "max_robots", "maxmailinglists": "max_lists"}
# The domain-wide switches vpopmail ORs into each account's flags (vlimits_get_flag_mask).
LIMIT_FLAGS = {"disable_pop": source.NO_POP, "disable_imap": source.NO_IMAP, "disable_dialup": source.NO_DIALUP,
               "disable_password_changing": source.NO_PASSWD_CHNG, "disable_webmail": source.NO_WEBMAIL,
               "disable_external_relay": source.NO_RELAY, "disable_smtp": source.NO_SMTP,
               "disable_spamassassin": source.NO_SPAMASSASSIN, "delete_spam": source.DELETE_SPAM,
               "disable_maildrop": source.NO_MAILDROP}


def parse_limits(data: bytes, where: str) -> tuple[source.Limits, int]:
    """(the plan's terms, the flag mask for every account of the domain)."""
    limits = source.Limits()
    mask = 0
    for number, raw in enumerate(data.splitlines(), 1):
        line = decode(raw).strip()
        if not line or line.startswith("#"):
            continue
        name, value = (re.split(r"[\s:]+", line, maxsplit=1) + [""])[:2]
        value = value.strip()
        here = f"{where}:{number}"
        if name in LIMIT_FLAGS:
            mask |= LIMIT_FLAGS[name]
            continue
        try:
            number_value = int(value) if value else None
        except ValueError:
            limits.problems.append(source.Problem(here, line, "not a number"))
            continue
        if name in LIMIT_COUNTS:
            if number_value is not None:
                setattr(limits, LIMIT_COUNTS[name], max(number_value, -1))
        elif name == "default_quota":
            if number_value:  # bytes; 0: no default quota
                limits.default_quota_mb = max(number_value // (1024 * 1024), 1)
        elif name == "maxaliases":
            if number_value not in (None, -1):
                limits.problems.append(source.Problem(here, line, "the panel counts aliases with the forwards: the "
                                                      "forwards' limit (maxforwards) is the one kept"))
        elif name in ("quota", "maxmsgcount", "default_maxmsgcount"):
            if number_value:
                why = {"quota": "the panel has no quota per domain (a pack's total quota is the plan's)",
                       "maxmsgcount": "the panel has no message count limit",
                       "default_maxmsgcount": "the panel has no message count limit"}[name]
                limits.problems.append(source.Problem(here, line, why))
        elif name.startswith("perm_"):
            if number_value:
                limits.problems.append(source.Problem(here, line, "the panel has no per-feature permission for "
                                                      "domain administrators: not carried"))
        else:
            limits.problems.append(source.Problem(here, line, "a limit the reader does not know"))
    return limits, mask


# --- .qmail lines -------------------------------------------------------------------------


@dataclass
class DotLine:
    number: int
    text: str
    kind: str  # "comment", "address", "path", "program"
    value: str  # the address, the path, or the command (after "|")


def parse_dotqmail(data: bytes) -> list[DotLine]:
    """dot-qmail(5): `#` comment, `|` program, `/` or `.` a mailbox path (Maildir when it ends
    with "/"), `&` an address, else an address (a line starting with a letter or digit)."""
    lines = []
    for number, raw in enumerate(data.splitlines(), 1):
        text = decode(raw).rstrip("\r")
        stripped = text.strip()
        if not stripped:
            continue
        first = text[0]
        if first == "#":
            lines.append(DotLine(number, text, "comment", ""))
        elif first == "|":
            lines.append(DotLine(number, text, "program", text[1:].strip()))
        elif first in "/.":
            lines.append(DotLine(number, text, "path", text.strip()))
        elif first == "&":
            lines.append(DotLine(number, text, "address", text[1:].strip()))
        else:
            lines.append(DotLine(number, text, "address", stripped))
    return lines


def command_words(command: str) -> list[str]:
    """A program line's words as /bin/sh would split them (quotes removed)."""
    try:
        return shlex.split(command, comments=False)
    except ValueError:
        return command.split()


def program_name(command: str) -> str:
    words = command_words(command)
    return words[0].rsplit("/", 1)[-1] if words else ""


@dataclass
class Autorespond:
    message: str  # the message file (old server's path)
    seconds: int | None  # autorespond's TIME; None for qmail-autoresponder
    folder: str


def parse_autorespond(command: str) -> Autorespond | None:
    """`autorespond TIME NUM MESSAGE DIR [FLAG [ARSENDER]]`, or `qmail-autoresponder [-opts] DIR`
    (QmailAdmin's other choice: its message is DIR/message.txt). None: neither, or malformed."""
    words = command_words(command)
    if not words:
        return None
    name = words[0].rsplit("/", 1)[-1]
    if name == "autorespond" and len(words) >= 5:
        try:
            seconds = int(words[1])
        except ValueError:
            return None
        return Autorespond(words[3], seconds, words[4])
    if name == "qmail-autoresponder":
        args = [word for word in words[1:] if not word.startswith("-")]
        if args:
            return Autorespond(args[-1].rstrip("/") + "/message.txt", None, args[-1])
    return None


def parse_message_file(data: bytes) -> tuple[str, str, str]:
    """An autoresponder's message file: (From, Subject, text). Only From and Subject are headers
    here; the other header lines QmailAdmin wrote (Content-Type, MIME-Version...) are dropped."""
    data = data.replace(b"\r\n", b"\n")
    head, sep, body = data.partition(b"\n\n")
    if not sep and not re.match(rb"^[A-Za-z-]+:", head):
        head, body = b"", data
    sender = subject = ""
    for raw in head.split(b"\n"):
        name, colon, value = raw.partition(b":")
        if not colon:
            continue
        key = name.strip().lower()
        if key == b"from":
            sender = decode(value).strip()
        elif key == b"subject":
            subject = decode(value).strip()
    return sender, subject, decode_lines(body)


# --- .qmail-default: the catch-all ---------------------------------------------------------


def parse_catchall(lines: list[DotLine], domain: str) -> tuple[source.CatchAll | None, str, str]:
    """(the catch-all, "" or why it could not be mapped, the path to match against the domain's
    mailboxes when `mode` is "mailbox" by path). For a path, the CatchAll's target is the path;
    the reader turns it into a local part."""
    useful = [line for line in lines if line.kind != "comment"]
    if not useful:
        return source.CatchAll("delete"), "", ""
    if len(useful) > 1:
        return None, "more than one delivery line: the panel's catch-all has one target", ""
    line = useful[0]
    if line.kind == "address":
        return _catchall_address(line.value, domain)
    if line.kind == "path":
        return source.CatchAll("mailbox", line.value), "", line.value
    words = command_words(line.value)
    program = words[0].rsplit("/", 1)[-1] if words else ""
    if program == "vdelivermail" and len(words) >= 3:
        action = words[2]
    elif program == "forward" and len(words) == 2:
        action = words[1]
    else:
        return None, "a program the panel's catch-all cannot stand for", ""
    if action == "bounce-no-mailbox":
        return source.CatchAll("bounce"), "", ""
    if action == "delete":
        return source.CatchAll("delete"), "", ""
    if action.startswith("/"):
        return source.CatchAll("mailbox", action), "", action
    return _catchall_address(action, domain)


def _catchall_address(value: str, domain: str) -> tuple[source.CatchAll | None, str, str]:
    local, at, host = value.strip().rpartition("@")
    host = host.strip().lower().rstrip(".")
    if not at or not local or not host:
        return None, "not an address", ""
    if local in ("$EXT", "${EXT}"):
        if host == domain:
            return None, "x@ forwarded to x@ the same domain: a loop", ""
        return source.CatchAll("domain", host), "", ""
    if "$" in local:
        return None, "a shell variable the panel's catch-all cannot stand for", ""
    if host == domain:
        return source.CatchAll("mailbox", local.lower()), "", ""
    return source.CatchAll("remote", f"{local}@{host}"), "", ""
