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

Both: a subscription command (`+subscribe`, `+subscribe-digest`, `+subscribe-nomail`,
`+subscribe-both`, and -request's "subscribe") is let in only when its From: is one address the
panel can hold (PANEL_LOCAL, PANEL_DOMAIN: the panel's own rule, mailhost.list_members keeps the
same); mlmmj subscribes the From: address, so the From: is then written back as that address alone
(`From: <address>`, a Unicode domain in its IDNA form), which mlmmj reads as it was checked here.
Otherwise the sender gets a bounce that says why (exit EX_NOPERM, the reason on stdout, which
Postfix puts in the bounce) and mlmmj never sees the mail: no member the panel could not show.

The message comes from anyone: at most MAX_BYTES are taken (Postfix's message_size_limit is far
below), the Subject is only split into words, nothing of the message reaches a command line. The
exit status is mlmmj-receive's (EX_TEMPFAIL when it could not run: Postfix tries again).
"""

from __future__ import annotations

import email
import email.header
import email.utils
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
EX_USAGE, EX_TEMPFAIL, EX_NOPERM = 64, 75, 77
SUBSCRIBE_COMMANDS = frozenset({"subscribe", "subscribe-digest", "subscribe-nomail", "subscribe-both"})
# The panel's rule for a member's address (mail.validators.normalize_address), as mlmmj stores it.
PANEL_LOCAL = re.compile(r"^(?!\.)(?!.*\.\.)[a-z0-9._+-]{1,64}(?<!\.)\Z")
PANEL_DOMAIN = re.compile(r"^(?=.{1,253}\Z)((?!-)[a-z0-9-]{1,63}(?<!-)\.)+(?!-)(?![0-9]+\Z)[a-z0-9-]{1,63}(?<!-)\Z")
# The bounce's text, in the list's language (control/panel-language, written by mailhost.lists), in
# ASCII: Postfix writes a command's output into the bounce as ASCII ("é" would come out "__").
REFUSED = {
    "en": ("This list takes subscriptions only from an address made of letters, digits and . - _ + before the @ "
           "and a valid domain after it, alone in the From: header. {what} cannot be subscribed: write from "
           "another address, or ask the list's owner."),
    "fr": ("Cette liste n'accepte d'abonnement que d'une adresse faite de lettres, de chiffres et de . - _ + "
           "avant le @ et d'un domaine valide apres, seule dans l'en-tete From:. {what} ne peut pas etre "
           "abonnee : ecrivez depuis une autre adresse, ou demandez au proprietaire de la liste."),
}
WHAT = {
    "en": {"count": "A message without exactly one From: header", "several": "A From: header that is not one "
           "address", "address": "The address {shown}"},
    "fr": {"count": "Un message sans exactement un en-tete From:", "several": "Un en-tete From: qui n'est pas une "
           "seule adresse", "address": "L'adresse {shown}"},
}
MAX_BYTES = 64 * 1024 * 1024
COMMANDS = {"subscribe": "subscribe", "unsubscribe": "unsubscribe", "help": "help"}
REPLY_WORDS = ("re:", "tr:", "fw:", "fwd:", "aw:")
REPLACED_HEADERS = re.compile(rb"^(to|cc|delivered-to)[ \t]*:", re.IGNORECASE)
FROM_HEADER = re.compile(rb"^from[ \t]*:", re.IGNORECASE)
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
    parts = [child for child in children if isinstance(child, Message)]  # a multipart's are Messages
    if subtype == "alternative":
        return any([_add_footer(child, footer) for child in parts])  # every version of the text
    if parts and _add_footer(parts[0], footer):
        return True
    if subtype != "mixed":
        return False
    charset = Charset("utf-8")
    charset.body_encoding = QP
    # MIMEText takes a Charset too (it hands it to set_payload); typeshed's stub says str only.
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


def _ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def subscriber(data: bytes, language: str = "en") -> tuple[str | None, str]:
    """The address a subscription command would subscribe, when the panel can hold it: (address,
    "") or (None, what is wrong, for the bounce, in `language`). One From: header, one address."""
    what = WHAT.get(language, WHAT["en"])
    head = data.split(b"\n\n", 1)[0]
    try:
        text = head.decode("utf-8", "replace") + "\n\n"  # raw UTF-8 (SMTPUTF8) read as such
        froms = email.message_from_string(text, policy=POLICY).get_all("From") or []
    except Exception:  # noqa: BLE001 - an unreadable header subscribes nobody
        froms = []
    if len(froms) != 1:
        return None, what["count"]
    raw = str(froms[0])
    pairs = email.utils.getaddresses([raw])
    if len(pairs) != 1 or not pairs[0][1] or raw.count("@") - pairs[0][0].count("@") != 1:
        return None, what["several"]
    address = pairs[0][1].strip()
    local, at, domain = address.rpartition("@")
    local, domain = _ascii_lower(local), domain.rstrip(".").lower()
    try:
        domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        domain = ""
    shown = ascii(address[:100])[1:-1]
    if not at or not PANEL_LOCAL.match(local) or not PANEL_DOMAIN.match(domain):
        return None, what["address"].format(shown=shown)
    return f"{local}@{domain}", ""


def with_from(data: bytes, address: str) -> bytes:
    """The message with its From: header(s) replaced by `From: <address>`."""
    head, sep, body = data.partition(b"\n\n")
    kept: list[bytes] = []
    dropping = False
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = bool(FROM_HEADER.match(line))
        if not dropping:
            kept.append(line)
    return f"From: <{address}>\n".encode("ascii") + b"\n".join(kept) + (sep or b"\n\n") + body


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
    command = request_command(data) if mode == "request" else found.group(1).partition("+")[2]
    if command in SUBSCRIBE_COMMANDS:
        try:
            with open(os.path.join(listdir, "control", "panel-language"), encoding="utf-8") as file:
                language = file.read().strip()
        except OSError:
            language = "en"
        address, what = subscriber(data, language)
        if address is None:
            print(REFUSED.get(language, REFUSED["en"]).format(what=what))
            return EX_NOPERM
        data = with_from(data, address)
    if mode == "request":
        data = as_command(data, f"{name}+{command}@{found.group(2)}")
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
