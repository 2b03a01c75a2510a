"""What mlmmj holds for a list's moderators, and the decisions the panel sends about it.

mlmmj 1.3.0 keeps a post waiting for its moderators in `<listdir>/moderation/<cookie>` (the mail
as it will go out) and, with `submod`, a subscription request in `moderation/subscribe<cookie>`
("address\\nSUB_NORMAL\\n"); it mails the moderators `list+release-<cookie>@` / `+reject-`
(posts) or `+permit-` / `+obstruct-` (subscriptions). Whoever sends to such an address decides:
mlmmj checks the cookie, not the sender. A decision taken in the panel is that same mail, handed
to `mlmmj-receive` as Postfix's pipe would (`Delivered-To` names the command), so mlmmj itself
distributes, discards, subscribes (with its welcome) or refuses; a cookie decided meanwhile by
mail, or expired by mlmmj-maintd (`modreqlife`), is no longer there and mlmmj ignores it.

What is read here is a stranger's mail: the report carries plain text only, decoded, bounded
and without control characters; HTML parts are never read. Plain Python, no Django.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import os
import re
import subprocess
import unicodedata
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.header import decode_header
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

from mailhost import contract, lists, render
from mailhost.render import RenderError

COOKIE = re.compile(r"[0-9a-f]{8,64}")  # mlmmj's random_str: hex; ".sending", ".omit" files excluded
SUBSCRIPTION_PREFIX = "subscribe"
MAX_ITEMS = 200  # per list and report, oldest first: a flood of spam does not make a huge report
MAX_READ = 256 * 1024  # of a held mail: its headers and first text part are near the start
MAX_SENDER = 320
MAX_SUBJECT = 998
MAX_PREVIEW = 500
# Bidirectional overrides and isolates: they would reorder what the panel shows around them.
BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
SURROGATES = re.compile("[\ud800-\udfff]")  # what Python makes of undecodable bytes (surrogateescape)
COMMANDS = {
    ("post", "approve"): "release",
    ("post", "reject"): "reject",
    ("subscription", "approve"): "permit",
    ("subscription", "reject"): "obstruct",
}


def plain(value: str, *, single_line: bool) -> str:
    """`value` without control characters (line breaks kept unless `single_line`), without bidi
    overrides and without lone surrogates (undecodable bytes), spaces trimmed."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if single_line:
        value = " ".join(value.split())
    kept = []
    for char in BIDI.sub("", value):
        category = unicodedata.category(char)
        if char in "\n\t":  # only left when not single_line (split() took them)
            kept.append(char)
        elif category == "Cs":
            kept.append("\ufffd")
        elif category != "Cc":
            kept.append(char)
    return "".join(kept).strip()


def _decode(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know: its bytes as Latin-1, shown, never run
        return data.decode("latin-1")


def decode_words(raw: str) -> str:
    """A header's text with its RFC 2047 encoded words decoded (malformed ones left as written)."""
    raw = SURROGATES.sub("\ufffd", str(raw).replace("\r", "").replace("\n", ""))  # raw 8-bit bytes
    try:
        chunks = decode_header(raw)
    except (HeaderParseError, ValueError):
        return raw
    # Beside encoded words, decode_header gives the plain text back as raw-unicode-escape bytes.
    return "".join(text if isinstance(text, str) else text.decode("raw-unicode-escape") if charset is None
                   else _decode(text, charset) for text, charset in chunks)


def _header(message: email.message.Message, name: str) -> str:
    value = message.get(name)
    return "" if value is None else decode_words(value)


def preview_of(message: email.message.Message) -> str:
    """The start of the first text/plain part that is not an attachment, decoded; "" if none."""
    for part in message.walk():
        if part.is_multipart() or part.get_content_type() != "text/plain":
            continue
        if part.get_content_disposition() == "attachment":
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        return plain(_decode(payload, part.get_content_charset()), single_line=False)[:MAX_PREVIEW]
    return ""


def _received(path: Path) -> str:
    """When the host held it: the file's time (a mail's own Date header is the sender's say-so)."""
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC).isoformat(timespec="seconds")


def read_post(path: Path, key: str) -> contract.HeldItem:
    with path.open("rb") as handle:
        data = handle.read(MAX_READ)
    message = email.message_from_bytes(data, policy=email.policy.compat32)  # headers left raw: decoded here
    # The address from the header as written: decoded first, an encoded word could forge one.
    sender = parseaddr(str(message.get("From", "")).replace("\r", "").replace("\n", ""))[1]
    return {
        "kind": "post", "key": key,
        "sender": plain(sender, single_line=True)[:MAX_SENDER],
        "subject": plain(_header(message, "Subject"), single_line=True)[:MAX_SUBJECT],
        "received_at": _received(path),
        "preview": preview_of(message),
    }


def read_subscription(path: Path, key: str) -> contract.HeldItem:
    with path.open("rb") as handle:
        first = handle.read(4096).decode("utf-8", errors="replace").split("\n", 1)[0]
    return {"kind": "subscription", "key": key, "sender": plain(first, single_line=True)[:MAX_SENDER],
            "subject": "", "received_at": _received(path), "preview": ""}


def _entry(path: Path) -> tuple[str, str] | None:
    """(kind, key) of a file of moderation/, or None for what is not a held item."""
    name = path.name
    if name.startswith(SUBSCRIPTION_PREFIX) and COOKIE.fullmatch(name[len(SUBSCRIPTION_PREFIX):]):
        return "subscription", name[len(SUBSCRIPTION_PREFIX):]
    if COOKIE.fullmatch(name):
        return "post", name
    return None


def held_items(list_path: Path) -> list[contract.HeldItem]:
    """Everything a list directory holds for its moderators, oldest first (at most MAX_ITEMS)."""
    folder = list_path / "moderation"
    if not folder.is_dir() or folder.is_symlink():
        return []
    found = []
    for path in folder.iterdir():
        entry = _entry(path)
        if entry is None or path.is_symlink() or not path.is_file():
            continue
        try:
            found.append((path.stat().st_mtime, path, *entry))
        except FileNotFoundError:  # decided or expired while we looked
            continue
    items: list[contract.HeldItem] = []
    for _mtime, path, kind, key in sorted(found)[:MAX_ITEMS]:
        try:
            items.append(read_post(path, key) if kind == "post" else read_subscription(path, key))
        except FileNotFoundError:
            continue
    return items


def list_held(host: lists.ListHost, domain: str, name: str) -> contract.ListHeld:
    """One list's held items (none when its directory is not there)."""
    return {"domain": domain, "list": name, "items": held_items(lists.list_dir(host, domain, name))}


def held_report(host: lists.ListHost) -> list[contract.ListHeld]:
    """Every list of the host that holds something (the report is `complete`: the others hold nothing)."""
    root = host.mlmmj_root.resolve()
    if not root.is_dir():
        return []
    reported: list[contract.ListHeld] = []
    for path in sorted(root.glob("*/*")):
        if path.is_symlink() or not (path / "control" / "listaddress").exists():
            continue
        items = held_items(path)
        if items:
            reported.append({"domain": path.parent.name, "list": path.name, "items": items})
    return reported


def held_file(list_path: Path, kind: str, key: str) -> Path:
    if not isinstance(key, str) or not COOKIE.fullmatch(key):
        raise RenderError(f"not a moderation key: {key!r}")
    return list_path / "moderation" / (SUBSCRIPTION_PREFIX + key if kind == "subscription" else key)


def command_mail(*, list_address: str, delimiter: str, command: str, key: str, sender: str) -> bytes:
    """The mail a moderator would send to `list+<command>-<key>@domain`, with the headers Postfix's
    pipe adds (`Delivered-To`, `X-Original-To`), from which mlmmj reads the command."""
    local, _at, domain = render.address(list_address).partition("@")
    to = render.address(f"{local}{delimiter}{command}-{key}@{domain}")
    lines = [
        f"Delivered-To: {to}",
        f"X-Original-To: {to}",
        f"From: {render.address(sender)}",
        f"To: {to}",
        f"Subject: {command}",
        f"Date: {formatdate(localtime=False)}",
        f"Message-ID: {make_msgid(domain=domain)}",
        "",
        "",
    ]
    return "\r\n".join(lines).encode("ascii")


def _control(list_path: Path, name: str, default: str) -> str:
    file = list_path / "control" / name
    if not file.is_file():
        return default
    lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
    return lines[0].strip() if lines and lines[0].strip() else default


def decide(host: lists.ListHost, request: contract.Moderation) -> bool:
    """Hand mlmmj the decision on one held item, as a moderator's mail; False when the item is
    not held any more (decided by mail, expired: mlmmj would ignore it too)."""
    contract.check(request, contract.Moderation)
    path = lists.list_dir(host, request["domain"], request["list"])
    file = held_file(path, request["kind"], request["key"])
    if not file.is_file():
        return False
    command = COMMANDS[(request["kind"], request["decision"])]
    mail = command_mail(
        list_address=_control(path, "listaddress", f"{request['list']}@{request['domain']}"),
        delimiter=_control(path, "delimiter", "+"), command=command, key=request["key"],
        sender=_control(path, "owner", f"{request['list']}-owner@{request['domain']}"),
    )
    # As root, as Postfix's pipe does (user=list): mlmmj's files stay the list's.
    as_list = host.user if os.geteuid() == 0 else None
    subprocess.run(  # noqa: S603 - mlmmj's program by absolute path, a validated list directory
        [str(lists.MLMMJ / "mlmmj-receive"), "-F", "-L", str(path)], input=mail, check=True,
        capture_output=True, timeout=120, user=as_list, group=as_list, extra_groups=None if as_list is None else [],
    )
    return not file.exists()
