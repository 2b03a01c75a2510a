"""What Postfix's pipe(8) runs for a list's mail, as user list, before mlmmj-receive.

    python3 -I list_pipe.py post <listdir> <recipient>      the list's address, its +commands
    python3 -I list_pipe.py request <listdir> <recipient>   `news-request@`: ezmlm's -request

Standard library only, no import of the agent: it runs under the system's python3, isolated.

post: a post to the list itself (a recipient without `+command`) gets the list's trailer
(`<listdir>/control/panel-footer`, written by mailhost.lists) added part by part, because mlmmj's
own footer is appended to the raw body (garbage in a base64 body, lost after the last part of a
MIME message): text/plain and text/html parts are decoded, get the trailer and are encoded again
as UTF-8 (quoted-printable, or base64 when they were base64); a multipart/mixed whose first part
is no text gets the trailer as a last part; a signed or encrypted message is left as it is (the
trailer would break its signature), and so is any message this cannot read.

request: the first word of the Subject (after "Re:"): subscribe, unsubscribe or help, anything
else is help (what ezmlm's -request took); the message then goes to mlmmj as one sent to
`<list>+<command>@` (its To:, Cc: and Delivered-To: replaced), so mlmmj confirms by mail as
usual, with its own `+` addresses.

The message comes from anyone: at most MAX_BYTES are taken (Postfix's message_size_limit is far
below), the Subject is only split into words, nothing of the message reaches a command line. The
exit status is mlmmj-receive's (EX_TEMPFAIL when it could not run: Postfix tries again).
"""

from __future__ import annotations

import email
import email.header
import html
import io
import os
import re
import subprocess
import sys
from email.charset import BASE64, QP, Charset
from email.generator import BytesGenerator
from email.message import Message
from email.mime.text import MIMEText
from email.policy import compat32

MLMMJ_RECEIVE = "/usr/bin/mlmmj-receive"
EX_USAGE, EX_TEMPFAIL = 64, 75
MAX_BYTES = 64 * 1024 * 1024
COMMANDS = {"subscribe": "subscribe", "unsubscribe": "unsubscribe", "help": "help"}
REPLY_WORDS = ("re:", "tr:", "fw:", "fwd:", "aw:")
REPLACED_HEADERS = re.compile(rb"^(to|cc|delivered-to)[ \t]*:", re.IGNORECASE)
LIST_NAME = re.compile(r"^[a-z0-9._=&-]{1,64}\Z")
RECIPIENT = re.compile(r"^([a-z0-9._+=&-]{1,64})@([a-z0-9.-]{1,253})\Z")
POLICY = compat32.clone(max_line_length=0)  # headers written back as they came


def _text_part(part: Message, footer: str) -> bool:
    """Append the trailer to a text/plain or text/html part; whether it could."""
    if part.get_content_type() not in ("text/plain", "text/html") or part.get_filename():
        return False
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return False
    try:
        text = raw.decode(part.get_content_charset() or "us-ascii")
    except (LookupError, UnicodeDecodeError):
        return False
    if part.get_content_type() == "text/html":
        addition = "<br>\n" + html.escape(footer).replace("\n", "<br>\n") + "\n"
        end = text.lower().rfind("</body>")
        text = text[:end] + addition + text[end:] if end >= 0 else text + addition
    else:
        text += ("\n" if text and not text.endswith("\n") else "") + footer + "\n"
    was_base64 = str(part.get("Content-Transfer-Encoding", "")).strip().lower() == "base64"
    charset = Charset("utf-8")
    charset.body_encoding = BASE64 if was_base64 else QP
    del part["Content-Transfer-Encoding"]
    part["Content-Transfer-Encoding"] = "base64" if was_base64 else "quoted-printable"
    part.set_param("charset", "utf-8")
    part.set_payload(charset.body_encode(text))
    return True


def _add_footer(part: Message, footer: str) -> bool:
    if not part.is_multipart():
        return _text_part(part, footer)
    subtype, children = part.get_content_subtype(), part.get_payload()
    if subtype in ("signed", "encrypted") or not isinstance(children, list) or not children:
        return False
    if subtype == "alternative":
        return any([_add_footer(child, footer) for child in children])  # every version of the text
    if _add_footer(children[0], footer):
        return True
    if subtype != "mixed":
        return False
    charset = Charset("utf-8")
    charset.body_encoding = QP
    part.attach(MIMEText(footer + "\n", "plain", charset))  # type: ignore[arg-type]
    return True


def with_footer(data: bytes, footer: str) -> bytes:
    """The message with the list's trailer, or unchanged when it cannot take one."""
    if not footer or len(data) > MAX_BYTES:
        return data
    try:
        message = email.message_from_bytes(data, policy=POLICY)
        if not _add_footer(message, footer):
            return data
        out = io.BytesIO()
        BytesGenerator(out, mangle_from_=False, policy=POLICY).flatten(message)
        return out.getvalue()
    except Exception:  # noqa: BLE001 - a message this cannot rewrite goes to the list as it came
        return data


def request_command(data: bytes) -> str:
    """The mlmmj command of a message to `-request`: the Subject's first word."""
    head = data.split(b"\n\n", 1)[0][:MAX_BYTES]
    try:
        subject = email.message_from_bytes(head + b"\n\n", policy=POLICY).get("Subject", "")
        subject = str(email.header.make_header(email.header.decode_header(str(subject))))
    except Exception:  # noqa: BLE001 - an unreadable Subject asks for help
        subject = ""
    words = subject.lower().split()
    while words and words[0] in REPLY_WORDS:
        words.pop(0)
    return COMMANDS.get(words[0] if words else "", "help")


def as_command(data: bytes, address: str) -> bytes:
    """The message with To: and Delivered-To: the command address, its To:, Cc: and
    Delivered-To: removed (mlmmj takes a list address in To: for a post)."""
    head, sep, body = data.partition(b"\n\n")
    kept: list[bytes] = []
    dropping = False
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t"):  # a folded header's next line
            if not dropping:
                kept.append(line)
            continue
        dropping = bool(REPLACED_HEADERS.match(line))
        if not dropping:
            kept.append(line)
    top = f"Delivered-To: {address}\nTo: {address}\n".encode("ascii")
    return top + b"\n".join(kept) + (sep or b"\n\n") + body


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[1] not in ("post", "request"):
        print("usage: list_pipe.py post|request <listdir> <recipient>", file=sys.stderr)
        return EX_USAGE
    mode, listdir, recipient = argv[1], argv[2], argv[3].strip().lower()
    name = os.path.basename(listdir.rstrip("/"))
    found = RECIPIENT.match(recipient)
    if not os.path.isabs(listdir) or "/../" in f"{listdir}/" or not LIST_NAME.match(name) or not found \
            or not os.path.isfile(os.path.join(listdir, "control", "listaddress")):
        print(f"list_pipe: no list at {listdir!r} for {recipient!r}", file=sys.stderr)
        return EX_TEMPFAIL
    data = sys.stdin.buffer.read(MAX_BYTES + 1)
    if mode == "request":
        data = as_command(data, f"{name}+{request_command(data)}@{found.group(2)}")
    elif "+" not in found.group(1):
        try:
            with open(os.path.join(listdir, "control", "panel-footer"), encoding="utf-8") as file:
                footer = file.read().rstrip("\n")
        except FileNotFoundError:
            footer = ""
        data = with_footer(data, footer)
    try:
        return subprocess.run([MLMMJ_RECEIVE, "-F", "-L", listdir], input=data, check=False).returncode  # noqa: S603
    except OSError as exc:
        print(f"list_pipe: {exc}", file=sys.stderr)
        return EX_TEMPFAIL


if __name__ == "__main__":
    sys.exit(main(sys.argv))
