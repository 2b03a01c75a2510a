"""Turn a domain document into what the mail host stores: map rows and Sieve scripts.

Every value is validated again here (the panel validates too): a name that could leave a
directory, break a Postfix list or a Sieve string is refused with RenderError, and text that
goes into a Sieve script is escaped for a Sieve quoted string. Plain Python, no Django.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from mailhost import contract
from mailhost.contract import DocumentError

# \Z, not $: "$" also matches before a final newline.
LOCAL_RE = re.compile(r"^(?!\.)(?!.*\.\.)[a-z0-9._+=&-]{1,64}(?<!\.)\Z")
LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
DOMAIN_RE = re.compile(rf"^(?=.{{1,253}}\Z){LABEL}(\.{LABEL})+\Z")
DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
# Characters a Sieve quoted string (RFC 5228) may carry once escaped: no NUL, no other control
# character than tab and line feed (a bare CR makes Pigeonhole refuse the whole script), no C1
# control (U+0080-U+009F: NEL is a line break to some mail software). The panel checks text with
# this same pattern (mail.validators.clean_text), so what it accepts the agent accepts.
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
DISCARD_DOMAIN = contract.DISCARD_DOMAIN
DISCARD_ADDRESS = f"discard@{DISCARD_DOMAIN}"
ROBOT_REPLY_SECONDS = 2000  # QmailAdmin's robots: at most 5 replies per sender per 10,000 s
# A robot's `reply_seconds` (absent: ROBOT_REPLY_SECONDS): at least a minute (a robot never answers
# every message), at most Pigeonhole's default sieve_vacation_max_period (90 days), which it would
# silently shorten the period to.
ROBOT_REPLY_SECONDS_MIN = 60
ROBOT_REPLY_SECONDS_MAX = 90 * 86400
MAX_TEXT = 8000
MAX_QUOTA_BYTES = 2**63 - 1  # SQLite's integer and Dovecot's quota limit are signed 64-bit


class RenderError(DocumentError):
    """A value in the document cannot be written safely to the mail host."""


def domain_name(value: object) -> str:
    if not isinstance(value, str) or not DOMAIN_RE.match(value):
        raise RenderError(f"invalid domain name: {value!r}")
    return value


def local_part(value: object) -> str:
    if not isinstance(value, str) or not LOCAL_RE.match(value):
        raise RenderError(f"invalid local part: {value!r}")
    return value


def hosted_domain_name(value: object) -> str:
    """A domain name the document may serve: never one of the names the host uses itself or a
    special-use name (contract.reserved_suffix: `<domain>.mlmmj.invalid`, `discard.invalid`,
    `localhost`...), whatever the panel let through."""
    name = domain_name(value)
    suffix = contract.reserved_suffix(name)
    if suffix is not None:
        raise RenderError(f"reserved domain name: {name!r} (special-use .{suffix}, never a hosted domain)")
    return name


def address(value: object) -> str:
    if not isinstance(value, str) or value.count("@") != 1:
        raise RenderError(f"invalid address: {value!r}")
    local, domain = value.split("@")
    return f"{local_part(local)}@{domain_name(domain)}"


def text(value: object, *, single_line: bool = False) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT or CONTROL_CHARS.search(value):
        raise RenderError("text with control characters or too long")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RenderError("text that is not valid Unicode") from None
    if single_line and ("\n" in value or "\r" in value):
        raise RenderError("line breaks are not allowed here")
    return value


def sieve_string(value: str) -> str:
    """A Sieve quoted string holding exactly `value`."""
    value = text(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_sieve_string(quoted: str) -> str:
    """The inverse of sieve_string (used by tests and the agent's self-check)."""
    if len(quoted) < 2 or quoted[0] != '"' or quoted[-1] != '"':
        raise RenderError("not a quoted string")
    out, i, body = [], 0, quoted[1:-1]
    while i < len(body):
        if body[i] == "\\":
            i += 1
            if i == len(body):
                raise RenderError("dangling escape")
        elif body[i] == '"':
            raise RenderError("unescaped quote")
        out.append(body[i])
        i += 1
    return "".join(out)


def _vacation(vacation: contract.Vacation, own: str) -> tuple[set[str], str]:
    days = vacation.get("days")
    days = 1 if days is None else days
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 365:
        raise RenderError("vacation days out of range")
    action = (
        f"vacation :days {days} :subject {sieve_string(text(vacation.get('subject') or '', single_line=True))} "
        f":addresses [{sieve_string(own)}] {sieve_string(vacation.get('message') or '')};"
    )
    tests = []
    for key, op in (("start", "ge"), ("end", "le")):
        when = vacation.get(key)
        if when:
            if not isinstance(when, str) or not DATE_RE.match(when):
                raise RenderError("invalid vacation date")
            try:
                date.fromisoformat(when)
            except ValueError:
                raise RenderError("invalid vacation date") from None
            tests.append(f'currentdate :value "{op}" "date" "{when}"')
    if not tests:
        return {"vacation"}, action
    return {"vacation", "date", "relational"}, f"if allof({', '.join(tests)}) {{\n  {action}\n}}"


def mailbox_sieve(mailbox: contract.Mailbox, own: str) -> str | None:
    """The Sieve script of a mailbox: vacation, then discard when nothing must be kept."""
    requires: set[str] = set()
    lines: list[str] = []
    vacation = mailbox.get("vacation")
    if vacation:
        extra, action = _vacation(vacation, own)
        requires |= extra
        lines.append(action)
    routing = mailbox.get("routing", "standard")
    if routing == "delete" or (routing == "forward" and not mailbox.get("keep_copy")):
        lines.append("discard;")
    if not lines:
        return None
    head = f"require [{', '.join(sieve_string(r) for r in sorted(requires))}];\n" if requires else ""
    return head + "\n".join(lines) + "\n"


def reply_seconds(value: object) -> int:
    """A robot's reply period: an int (not a bool) from ROBOT_REPLY_SECONDS_MIN to _MAX."""
    if type(value) is not int or not ROBOT_REPLY_SECONDS_MIN <= value <= ROBOT_REPLY_SECONDS_MAX:
        raise RenderError(f"robot reply period out of range: {value!r} (from {ROBOT_REPLY_SECONDS_MIN} "
                          f"to {ROBOT_REPLY_SECONDS_MAX} seconds)")
    return value


def robot_sieve(robot: contract.Robot, own: str) -> str:
    """A robot: a copy goes on, the sender gets the fixed reply (once in `reply_seconds`), nothing
    is stored."""
    seconds = reply_seconds(robot.get("reply_seconds", ROBOT_REPLY_SECONDS))
    lines = ['require ["vacation", "vacation-seconds"];']
    if robot.get("copy_to"):
        lines.append(f"redirect {sieve_string(address(robot['copy_to']))};")
    subject = sieve_string(text(robot.get("subject") or "", single_line=True))
    lines.append(
        f"vacation :seconds {seconds} :subject {subject} :addresses [{sieve_string(own)}] "
        f"{sieve_string(robot.get('message') or '')};"
    )
    lines.append("discard;")
    return "\n".join(lines) + "\n"


class MailboxRow(NamedTuple):  # a tuple: ten thousand of them are built per apply of a big domain
    email: str
    local_part: str
    password_hash: str
    quota_bytes: int
    active: bool
    allow_pop3: bool
    allow_imap: bool
    allow_smtp: bool
    sieve: str | None  # script text; the agent stores it and puts its path in the row


@dataclass(frozen=True)
class DomainRows:
    mailboxes: list[MailboxRow]
    aliases: dict[str, list[str]]  # source -> destinations
    transports: dict[str, str]  # address -> transport
    names: dict[str, str]  # address -> what holds it: mailbox, robot, forward or list


LIST_INTERNAL_DOMAIN = contract.LIST_INTERNAL_DOMAIN
# The ezmlm-style command addresses of a list (lists moved from QmailAdmin) and the mlmmj command
# each one is: `news-subscribe@` works as `news+subscribe@`. A list holds these names whatever its
# options (the panel refuses them to anything else: `list_bases`); `-request` (None here) takes
# ezmlm's commands in the Subject (mailhost.list_pipe) when the list's request_address is on.
LIST_SUFFIXES: dict[str, str | None] = {
    "subscribe": "subscribe",
    "unsubscribe": "unsubscribe",
    "digest-subscribe": "subscribe-digest",
    "digest-unsubscribe": "unsubscribe-digest",
    "help": "help",
    "owner": "owner",
    "request": None,
}
MAX_LOCAL = 64  # RFC 5321: a longer sub-address could not be written to anyway


def list_internal_address(domain: str, name: str) -> str:
    """Where a list's mail goes inside Postfix: one address per (domain, list), never a real one.
    It is also the list's second address in mlmmj's control/listaddress, so that mlmmj takes the
    command of `news+subscribe@<domain>.mlmmj.invalid` (the pipe's Delivered-To)."""
    return f"{local_part(name)}@{domain_name(domain)}.{LIST_INTERNAL_DOMAIN}"


def list_sub_addresses(name: str) -> dict[str, str | None]:
    """The ezmlm-style local parts a list holds beside its own (`news-subscribe`...), each with
    its mlmmj command (None: `-request`). Names longer than an SMTP local part are left out."""
    return {f"{name}-{suffix}": command for suffix, command in LIST_SUFFIXES.items()
            if len(name) + 1 + len(suffix) <= MAX_LOCAL}


def list_bases(local: str) -> set[str]:
    """The list names of which `local` would be one of the addresses: `news` for `news+x`,
    `news-subscribe` and `news-digest-subscribe` (both `news-digest` and `news` for the last)."""
    bases = {local.split("+", 1)[0]} if "+" in local else set()
    return bases | {local[:-len(suffix) - 1] for suffix in LIST_SUFFIXES
                    if local.endswith(f"-{suffix}") and len(local) > len(suffix) + 1}


# `{SCHEME}` then printable ASCII without space or quote: what Dovecot's schemes produce.
HASH_RE = re.compile(r"^\{[A-Z0-9-]{1,32}\}[\x21-\x26\x28-\x7e]{1,480}\Z")


def _hash(value: object) -> str:
    if not isinstance(value, str) or not HASH_RE.match(value):
        raise RenderError("invalid password hash")
    return value


def _quota(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RenderError("invalid quota")
    if value > MAX_QUOTA_BYTES:
        raise RenderError(f"quota out of range: {value} bytes (at most {MAX_QUOTA_BYTES})")
    return value


def _list_rows(domain: str, ml: contract.MailingList, claim: Callable[[str, str], str], aliases: dict[str, list[str]],
               transports: dict[str, str]) -> None:
    """A list's rows: its address and its ezmlm-style ones to mlmmj (`news-subscribe@` as
    `news+subscribe@`, the `+` form being what mlmmj acts on), `-request` to the pipe that reads
    the command in the Subject. Every sub-address is claimed whatever the options, so that a
    delta that turns `-request` off reads (and removes) its row."""
    name = ml["name"]
    email = claim(name, "list")
    internal = list_internal_address(domain, name)
    aliases[email] = [internal]
    transports[internal] = f"mlmmj:{domain}/{name}"
    for sub, command in list_sub_addresses(name).items():
        sub_email = claim(sub, "list")
        if command is not None:
            aliases[sub_email] = [f"{name}+{command}@{domain}.{LIST_INTERNAL_DOMAIN}"]
        elif ml.get("request_address", True):
            request = list_internal_address(domain, sub)
            aliases[sub_email] = [request]
            transports[request] = f"mlmmjrequest:{domain}/{name}"


def rows(document: contract.DomainDocument | contract.DomainDelta) -> DomainRows:
    """Map rows of the objects of a present domain's document (all of them, or those a delta
    changed). Names used twice are refused (one address, one meaning). The catch-all's row is
    made when the document has a catch-all, or when it is complete (no catch-all: bounce)."""
    domain = hosted_domain_name(document["domain"])
    mailboxes: list[MailboxRow] = []
    aliases: dict[str, list[str]] = {}
    transports: dict[str, str] = {}
    names: dict[str, str] = {}

    def claim(local: str, kind: str) -> str:
        email = f"{local_part(local)}@{domain}"
        if email in names:
            raise RenderError(f"address used twice: {email}")
        names[email] = kind
        return email

    for m in document.get("mailboxes", []):
        email = claim(m["local_part"], "mailbox")
        sieve = mailbox_sieve(m, email)
        mailboxes.append(MailboxRow(
            email, m["local_part"], _hash(m["password_hash"]), _quota(m["quota_bytes"]), bool(m["active"]),
            bool(m["allow_pop3"]), bool(m["allow_imap"]), bool(m["allow_smtp"]), sieve,
        ))
        if m.get("routing") == "forward" and m["active"]:
            targets = [address(a) for a in m.get("forward_to", [])]
            if not targets:
                raise RenderError(f"forward without destination: {email}")
            if m.get("keep_copy") or m.get("vacation"):
                targets.append(email)  # delivered here too: kept, or answered then discarded
            aliases[email] = targets
    for r in document.get("robots", []):
        email = claim(r["local_part"], "robot")
        mailboxes.append(MailboxRow(email, r["local_part"], "!", 0, True, False, False, False, robot_sieve(r, email)))
    for f in document.get("forwards", []):
        email = claim(f["local_part"], "forward")
        # No destination: the name accepts mail and drops it (the import of a vpopmail `.qmail-NAME`
        # of comments only).
        aliases[email] = [address(a) for a in f.get("destinations", [])] or [DISCARD_ADDRESS]
    for ml in document.get("lists", []):
        _list_rows(domain, ml, claim, aliases, transports)
    if contract.is_delta(document) and "catchall" not in document:
        return DomainRows(mailboxes, aliases, transports, names)
    catchall = document.get("catchall") or {"mode": "bounce"}
    mode, target = catchall.get("mode", "bounce"), catchall.get("target", "")
    if mode == "delete":
        aliases[f"@{domain}"] = [DISCARD_ADDRESS]
    elif mode == "mailbox":
        aliases[f"@{domain}"] = [address(f"{target}@{domain}" if "@" not in target else target)]
    elif mode == "remote":
        aliases[f"@{domain}"] = [address(target)]
    elif mode == "domain":
        aliases[f"@{domain}"] = [f"@{domain_name(target)}"]
    elif mode != "bounce":
        raise RenderError(f"unknown catch-all mode: {mode!r}")
    return DomainRows(mailboxes, aliases, transports, names)
