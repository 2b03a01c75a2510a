"""Mailing lists on the host: mlmmj list directories, their control files and their members.

The panel is the source of truth for list options. Membership can also change by mail
(list+subscribe@, list+unsubscribe@), so members are reconciled three ways: the host keeps the
membership it last applied (table `list_members` of the maps database); an apply adds and removes
only what the panel changed since, and `membership_changes` reports what changed by mail so the
panel can take it in (both in `mailhost.list_members`, which reads and writes mlmmj's member
files). Plain Python, no Django.

How the panel's options map onto mlmmj 1.3.0 (control files, see TUNABLES): `control()`. What
mlmmj cannot do: skip the confirmation of an unsubscription by mail (it always asks; the
`unsub_confirm` option is ignored), let moderators administer the list by mail (`remote_admin`
is ignored), send the subscribers to anyone but the list owner (`remote_admin_list`: `+list`
answers the owner only). mlmmj writes a non-ASCII prefix into the Subject as raw 8-bit bytes and
adds its footer to the raw body (garbage in a base64 body, lost after a MIME message's last
part): the prefix is written here RFC 2047-encoded, and the trailer is added by
`mailhost.list_pipe`, part by part, before mlmmj sees the post (`control/panel-footer`).

List texts (`<listdir>/text/<name>`, mlmmj's README.listtexts), what the panel's editor can tell
its users:
- UTF-8 text. It may begin with header lines, then an empty line, then the body. Only the headers
  of TEXT_HEADERS may be set (Subject: and the MIME ones a multipart text needs), written
  `Name: value`; mlmmj adds From:, To:, Date:, Message-ID: itself and encodes a non-ASCII Subject.
  A text never sets another header (`list_text`): mlmmj 1.3 (prepstdreply.c) takes every line at
  the top that holds a ":" anywhere, after its substitutions, as a header, written as it is above
  its own From: ("Reply-To : x", "Dear all: hi", "$subject$" when a stranger's subject has a
  colon, "\u000a" which it turns into a line break, "%text x%"...), a line that starts with a
  space or a tab as a header's next line, and ends the headers at the first empty line or at the
  first line without ":". So the file always begins with a header block written here: the
  allowed headers in their canonical form (name, ": ", the value with its "%" made literal, its
  `$...$` limited to mlmmj's one-line values, no backslash), then an empty line; a text without
  them begins with that empty line unless its first line cannot become a header in any way.
  `text_header_problem` is the panel's check of the same rule, to refuse such a line with a message.
- Substitutions: `$list$`, `$domain$`, `$list+$` (`news+`), so `$list+$subscribe@$domain$`;
  `$subaddr$` (the address (un)subscribed), `$confaddr$` (where to reply to confirm), `$subject$`,
  `$posteraddr$`; `%text prologue%` includes the text `prologue`; `$$` and `%%` are a literal
  `$` and `%`. Conditionals `%ifaction sub%`...`%endif%`, `%wrap%` rewraps a paragraph.
- A text the panel has not edited is mlmmj's own in the list's language
  (/usr/share/mlmmj/text.skel/<lang>/<name>); an edited one is kept when the language changes.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import sqlite3
import subprocess
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mailhost import contract, render
from mailhost.render import CONTROL_CHARS, RenderError

MLMMJ = Path("/usr/bin")
TEXT_SKELETONS = Path("/usr/share/mlmmj/text.skel")
LANGUAGE_RE = re.compile(r"^[a-z]{2}(-[a-z]{2})?\Z")
FLAGS = ("subonlypost", "modonlypost", "moderated", "modnonsubposts", "nodigestsub", "closedlist", "closedlistsub",
         "nosubconfirm", "submod", "noarchive", "subonlyget", "noget", "nolistsubsemail")
# Control files written from the document; "footer" is mlmmj's own footer, never written (and
# removed from lists made before the pipe added the trailer). "panel-footer" and
# "panel-language" are ours: mlmmj does not read them.
TEXTS = ("listaddress", "prefix", "footer", "panel-footer", "customheaders", "delheaders", "moderators", "owner",
         "smtpport", "relayhost", "verp", "maxverprecips", "panel-language")
# How a post leaves (README "Lists at the speed of Postfix"): mlmmj-send hands Postfix one SMTP
# transaction per VERP_RECIPIENTS members (`verp` = postfix: MAIL FROM ... XVERP=-=, Postfix writes
# each copy's return path news+bounces-N-member=domain@, the same as mlmmj's own) to the host's
# smtpd for mlmmj (mailhost.stack.templates: 127.0.0.1:list_smtp_port, which allows XVERP, refuses
# no recipient at RCPT but a moving domain's, and takes LIST_SMTPD_RECIPIENT_LIMIT recipients a
# transaction). A recipient refused at RCPT makes mlmmj requeue its whole batch (mlmmj-maintd then
# sends it one by one), so that port accepts what the public one refuses and Postfix bounces it to
# the VERP address: the bounce reaches mlmmj as a bounce of that member. On a port that refuses
# XVERP (the public one: an agent whose MAILHOST_LIST_SMTP_PORT is unset) mlmmj-send sees its
# MAIL FROM refused and falls back to one transaction a recipient, as before.
LIST_SMTPD_RECIPIENT_LIMIT = 1000
VERP_RECIPIENTS = 500  # ≤ the limit above; 1000 measured no faster (BENCHMARKS.md, 2026-12-08)
LIST_RELAY = "127.0.0.1"
# The list texts the panel edits (lists.services.TEXT_FILES: the agent keeps its own copy, a name
# outside it is refused) and how long one may be (lists.services.MAX_TEXT).
TEXT_FILES = frozenset({"prologue", "help", "finish-sub", "deny-post", "moderate-post", "notify", "digest"})
MAX_LIST_TEXT = 20_000
# The headers a text may set, by their lower-case name: the form they are written in.
TEXT_HEADERS = {name.lower(): name for name in (
    "Subject", "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition")}
# An allowed header as the panel's editor lets it be written: the name, the colon right after it.
CANONICAL_HEADER = re.compile(r"^([A-Za-z-]+):[ \t]*(.*)\Z")
CONTINUATION = re.compile(r"^([ \t]+)(\S.*)\Z")
# mlmmj's substitutions (prepstdreply.c's substitute_one) whose value is the list's own: its name,
# domain and addresses, one line without a colon. Any other `$...$` in a header is written
# literally ("$$"): `$text T$`, `$control C$`, `$moderators$` give several lines (each a header of
# its own), and the value of `$subject$`, `$posteraddr$`, `$subaddr$` is a stranger's, which mlmmj
# reads again for directives (`%originalmail%` would copy the stranger's headers in).
OWN_SUBSTITUTIONS = frozenset({
    "", "list", "list+", "domain", "listaddr", "listowner", "helpaddr", "faqaddr", "listgetN", "listunsubaddr",
    "digestunsubaddr", "nomailunsubaddr", "listsubaddr", "digestsubaddr", "nomailsubaddr",
    # mlmmj's own: an address with its cookie, a number
    "confaddr", "confirmaddr", "moderateaddr", "permitaddr", "obstructaddr", "releaseaddr", "rejectaddr",
    "digestissue", "digestinterval", "digestfirst", "digestlast", "maxmailsize",
})
SUBSTITUTION = re.compile(r"\$([^$\n]*)\$")
# What looks like a header to a person or a mail program: one word, maybe spaces, then a colon
# (or a character drawn like one; NFKC already makes the full-width and small colons ":").
HEADER_LIKE = re.compile(r"^[ \t]*[^\s:]+[ \t]*:")
COLON_LOOKALIKES = str.maketrans({char: ":" for char in (
    "\ua789", "\u2236", "\u02d0", "\u0589", "\u05c3", "\u0703", "\u0704", "\u16ec", "\u1361", "\u205a",
    "\u2360", "\ufe30", "\ufe13", "\ufe55", "\uff1a", "\u1804", "\u1806", "\u02f8", "\u0903", "\ua4fd")})
ENCODED_WORD_TEXT = 75 - len("=?utf-8?q??=")  # RFC 2047: an encoded word is at most 75 characters
Q_SAFE = re.compile(r"[A-Za-z0-9!*+/-]")


@dataclass(frozen=True)
class ListHost:
    mlmmj_root: Path
    smtp_port: int = 25
    user: str = "list"


def available() -> bool:
    return (MLMMJ / "mlmmj-make-ml").exists()


def list_dir(host: ListHost, domain: str, name: str) -> Path:
    return host.mlmmj_root.resolve() / render.domain_name(domain) / render.local_part(name)


POSTING_FLAGS = {
    "anyone": set(),
    "subscribers": {"subonlypost"},  # others get deny-post
    "subscribers_moderated": {"subonlypost", "modnonsubposts"},  # others held for the moderators
    "moderators": {"modonlypost"},  # others get deny-post
    "moderated": {"moderated"},  # every post, whoever sends it, is held for the moderators
}


def encoded_prefix(prefix: str) -> str:
    """The Subject prefix as mlmmj must write it: ASCII as is; otherwise RFC 2047 encoded words
    (mlmmj copies the control file's bytes into the header). The last word ends with an encoded
    space: mlmmj adds a plain one, which a reader drops between two encoded words (a Subject
    that starts with one), so "[Club échecs] Été" would read "[Club échecs]Été"."""
    prefix = render.text(prefix, single_line=True)
    if prefix.isascii():
        return prefix
    words, word = [], ""
    for char in prefix + " ":
        piece = char if Q_SAFE.match(char) else "_" if char == " " else "".join(
            f"={byte:02X}" for byte in char.encode("utf-8"))
        if len(word) + len(piece) > ENCODED_WORD_TEXT:
            words.append(word)
            word = ""
        word += piece
    words.append(word)
    return " ".join(f"=?utf-8?q?{w}?=" for w in words)


def _header_value(value: str) -> str | None:
    """A header's value as mlmmj must read it to write it unchanged: "%" literal ("%%": no
    directive runs in a header), only OWN_SUBSTITUTIONS substituted (any other `$` literal);
    None when it holds a backslash (mlmmj turns `\\u000a` into a line break, `\\` into less)."""
    if "\\" in value:
        return None
    value = value.replace("%", "%%")
    kept: list[str] = []
    position = 0
    for found in SUBSTITUTION.finditer(value):
        kept.append(value[position:found.start()].replace("$", "$$"))
        kept.append(found.group(0) if found.group(1) in OWN_SUBSTITUTIONS else found.group(0).replace("$", "$$"))
        position = found.end()
    kept.append(value[position:].replace("$", "$$"))
    return "".join(kept)


def _header_block(lines: list[str]) -> tuple[list[str], int]:
    """The allowed headers at the top of a text, as they are written (canonical name, escaped
    value, folded lines kept), and how many of the text's lines they take."""
    written: list[str] = []
    count = 0
    for line in lines:
        header = CANONICAL_HEADER.match(line)
        folded = CONTINUATION.match(line) if written and not _looks_like_header(line) else None
        if header and header.group(1).lower() in TEXT_HEADERS:
            value = _header_value(header.group(2))
            if value is None:
                break
            written.append(f"{TEXT_HEADERS[header.group(1).lower()]}: {value}")
        elif folded:
            value = _header_value(folded.group(2))
            if value is None:
                break
            written.append(folded.group(1) + value)
        else:
            break
        count += 1
    return written, count


def _plain_line(line: str) -> bool:
    """Whether mlmmj, reading `line` where headers may be, can only take it for body: not empty,
    no space or tab first, and nothing that could give a colon once processed (a colon, a
    directive, a backslash escape, a substitution but the list's own)."""
    if not line or line[0] in " \t":
        return False
    rest = SUBSTITUTION.sub(lambda found: "" if found.group(1) in OWN_SUBSTITUTIONS else "$", line)
    return not any(char in rest for char in ":%$\\")


def list_text(name: str, value: object) -> str:
    """A list text the panel edited, as written to `<listdir>/text/<name>`: a known name, UTF-8
    without control characters, at most MAX_LIST_TEXT characters. Its top is a header block
    written here (module docstring): the allowed headers it begins with, in canonical form, then an
    empty line; the rest is body, whatever it holds. A text whose top holds anything else that
    mlmmj could take for a header is all body (an empty line first)."""
    if name not in TEXT_FILES:
        raise RenderError(f"unknown list text: {name!r}")
    if not isinstance(value, str) or len(value) > MAX_LIST_TEXT or CONTROL_CHARS.search(value):
        raise RenderError(f"list text {name} with control characters or too long")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RenderError(f"list text {name} that is not valid Unicode") from None
    lines = value.split("\n")
    headers, count = _header_block(lines)
    if count == len(lines):
        out = [*headers, ""]  # headers only: an empty body
    elif headers and lines[count] == "":
        out = [*headers, *lines[count:]]  # the text's own empty line ends them
    elif headers and not _looks_like_header(lines[count]):
        out = [*headers, "", *lines[count:]]  # the headers end there
    elif _plain_line(lines[0]):
        out = lines  # no header: mlmmj takes the first line for body
    else:
        out = ["", *lines]  # all body: no header of its own
    text = "\n".join(out)
    return text if text.endswith("\n") else text + "\n"


def _looks_like_header(line: str) -> bool:
    """Whether a person or mail software could read `line` as a header: mlmmj's escapes
    `\\uXXXX` decoded, look-alike colons taken for ":" (HEADER_LIKE)."""
    decoded = re.sub(r"\\u([0-9A-Fa-f]{4})", lambda found: chr(int(found.group(1), 16)), line)
    decoded = unicodedata.normalize("NFKC", decoded).translate(COLON_LOOKALIKES)
    return bool(HEADER_LIKE.match(decoded))


def text_header_problem(value: str) -> str | None:
    """The line at the top of a text that reads as a header the text may not set (or an allowed
    one written so that it cannot be kept: "Subject : x", a backslash), or None. The panel refuses
    such a text with this line in its message; the agent would send it all as body."""
    lines = value.split("\n")
    _headers, count = _header_block(lines)
    if count == len(lines) or lines[count] == "":
        return None
    return lines[count] if _looks_like_header(lines[count]) else None


def language(document_list: contract.MailingList) -> str:
    """The list's language (mlmmj's text skeletons), French when the document has none."""
    value = document_list.get("language", "fr")
    if not isinstance(value, str) or not LANGUAGE_RE.match(value) or not (TEXT_SKELETONS / value).is_dir():
        raise RenderError(f"unknown list language: {value!r}")
    return value


def sending(smtp_port: int) -> dict[str, str]:
    """The control files that say how mlmmj-send hands a post to Postfix (the comment at TEXTS)."""
    return {"smtpport": str(int(smtp_port)), "relayhost": LIST_RELAY, "verp": "postfix",
            "maxverprecips": str(VERP_RECIPIENTS)}


def control(document_list: contract.MailingList, domain: str, smtp_port: int,
            aliases: Sequence[str] = ()) -> tuple[set[str], dict[str, str]]:
    """The control flags and texts of a list, from the panel's options (values validated).
    `unsub_confirm` and `remote_admin` have no mlmmj equivalent (module docstring). `aliases`: the
    served alias domains of `domain` (alias_names), whose name of the list mlmmj must take too."""
    name = render.local_part(document_list["name"])
    domain = render.domain_name(domain)
    address = f"{name}@{domain}"
    posting = document_list.get("posting", "subscribers")
    if posting not in POSTING_FLAGS:
        raise RenderError(f"unknown posting policy: {posting!r}")
    flags = set(POSTING_FLAGS[posting])
    if not document_list.get("digest"):
        flags.add("nodigestsub")
    if document_list.get("private"):
        # Nobody subscribes by mail, everyone can still leave by mail (closedlist would keep a
        # subscriber who wants out on the list until an admin removes him).
        flags.add("closedlistsub")
    if not document_list.get("sub_confirm", True):
        flags.add("nosubconfirm")
    if document_list.get("sub_moderate"):
        flags.add("submod")
    if not document_list.get("archive", True):
        flags.add("noarchive")
    access = document_list.get("archive_access", "subscribers")
    if access == "subscribers":
        flags.add("subonlyget")
    elif access == "moderators":
        flags.add("noget")  # mlmmj has no "moderators only": nobody gets old posts by mail
    elif access != "anyone":
        raise RenderError(f"unknown archive access: {access!r}")
    if not document_list.get("remote_admin_list"):
        flags.add("nolistsubsemail")
    if not document_list.get("owner"):
        raise RenderError(f"list without owner: {address}")
    texts = {
        # The second address is where Postfix hands the list's mail to mlmmj: mlmmj takes the
        # command of `news+subscribe@<domain>.mlmmj.invalid` only from one of its list addresses.
        # Then the list's name at each alias domain: mlmmj takes a post only when one of its list
        # addresses is in To: or Cc:, and a post to news@alias reaches it as news@domain.
        "listaddress": "\n".join([address, render.list_internal_address(domain, name),
                                  *(f"{name}@{render.domain_name(alias)}" for alias in aliases)]),
        "owner": render.address(document_list["owner"]),
        **sending(smtp_port),
        "panel-language": language(document_list),
    }
    if document_list.get("prefix"):
        texts["prefix"] = encoded_prefix(document_list["prefix"])
    if document_list.get("trailer"):
        texts["panel-footer"] = render.text(document_list["trailer"])
    reply_to = document_list.get("reply_to", "sender")
    if reply_to == "list":
        texts["customheaders"], texts["delheaders"] = f"Reply-To: {address}", "Reply-To:"
    elif reply_to == "address":
        texts["customheaders"] = f"Reply-To: {render.address(document_list['reply_to_address'])}"
        texts["delheaders"] = "Reply-To:"
    elif reply_to != "sender":
        raise RenderError(f"unknown reply-to: {reply_to!r}")
    moderators = [render.address(a) for a in document_list.get("moderators", [])]
    if moderators:
        texts["moderators"] = "\n".join(moderators)
    return flags, texts


def list_texts(document_list: contract.MailingList) -> dict[str, str]:
    """Every file of `<listdir>/text/`: mlmmj's skeleton of the list's language, the texts the
    panel edited in its place."""
    folder = TEXT_SKELETONS / language(document_list)
    files = {entry.name: entry.read_text(encoding="utf-8") for entry in folder.iterdir()
             if entry.is_file() and not entry.name.startswith(".")}
    edited = document_list.get("texts") or {}
    if not isinstance(edited, dict):
        raise RenderError("list texts must be a mapping")
    for name, value in edited.items():
        files[name] = list_text(name, value)
    return files


def _owner_ids(host: ListHost) -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(host.user)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def _chown_tree(path: Path, ids: tuple[int, int] | None) -> None:
    if ids is None:
        return
    for folder, dirs, files in os.walk(path):
        os.chown(folder, *ids)
        for name in dirs + files:
            os.chown(os.path.join(folder, name), *ids, follow_symlinks=False)


def _write_if_changed(file: Path, wanted: str | None) -> bool:
    """Make the file hold `wanted` (None: no file); whether it changed."""
    current = file.read_text(encoding="utf-8") if file.exists() else None
    if wanted == current:
        return False
    if wanted is None:
        file.unlink()
    else:
        file.write_text(wanted, encoding="utf-8")
    return True


def _sync_texts(path: Path, wanted: dict[str, str]) -> bool:
    """`<listdir>/text/` holds exactly `wanted` (the skeleton and the edited texts)."""
    folder = path / "text"
    folder.mkdir(exist_ok=True)
    changed = False
    for entry in folder.iterdir():
        if entry.name not in wanted and entry.is_file() and not entry.is_symlink():
            entry.unlink()
            changed = True
    for name, text in sorted(wanted.items()):
        file = folder / name
        if file.is_symlink():
            file.unlink()
        changed |= _write_if_changed(file, text)
    return changed


def ensure_list(host: ListHost, domain: str, document_list: contract.MailingList, aliases: Sequence[str] = ()) -> Path:
    """Create the list directory if needed and write its control files and texts (idempotent)."""
    path = list_dir(host, domain, document_list["name"])
    flags, texts = control(document_list, domain, host.smtp_port, aliases)
    wanted_texts = list_texts(document_list)
    if not (path / "control" / "listaddress").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(  # noqa: S603
            [str(MLMMJ / "mlmmj-make-ml"), "-L", path.name, "-s", str(path.parent)],
            input=f"{domain}\n{texts['owner']}\n{texts['panel-language']}\n", text=True, check=True,
            capture_output=True, timeout=60,
        )
    folder = path / "control"
    changed = False
    for flag in FLAGS:
        file = folder / flag
        if flag in flags and not file.exists():
            file.touch()
            changed = True
        elif flag not in flags and file.exists():
            file.unlink()
    for name in TEXTS:
        changed |= _write_if_changed(folder / name, texts[name] + "\n" if name in texts else None)
    changed |= _sync_texts(path, wanted_texts)
    if changed:
        _chown_tree(path, _owner_ids(host))
    return path


def alias_names(db: sqlite3.Connection, domain: str) -> list[str]:
    """The alias domains of `domain` this host serves (mailhost.apply), by name."""
    return [alias for (alias,) in db.execute(
        "SELECT a.alias FROM alias_domains a JOIN domains s ON s.domain = a.alias AND s.active = 1 "
        "WHERE a.domain = ? ORDER BY a.alias", (domain,))]


def readdress(host: ListHost, db: sqlite3.Connection, domain: str) -> list[str]:
    """Give the lists of `domain` here their names at its served alias domains (control/listaddress
    after its first two lines, as ensure_list writes it), when an alias domain of it comes, goes,
    or is proven; returns the lists whose file changed."""
    folder = host.mlmmj_root.resolve() / render.domain_name(domain)
    changed: list[str] = []
    if not folder.is_dir() or folder.is_symlink():
        return changed
    aliases = alias_names(db, domain)
    for entry in sorted(folder.iterdir()):
        file = entry / "control" / "listaddress"
        if entry.is_symlink() or file.is_symlink() or not file.is_file():
            continue
        own = [line for line in file.read_text(encoding="utf-8").split("\n") if line][:2]
        wanted = "\n".join([*own, *(f"{entry.name}@{alias}" for alias in aliases)]) + "\n"
        if _write_if_changed(file, wanted):
            changed.append(entry.name)
    return changed


def remove_unlisted(host: ListHost, db: sqlite3.Connection, domain: str, keep: set[str]) -> list[str]:
    """Remove the list directories of this domain that the document no longer has."""
    folder = host.mlmmj_root.resolve() / render.domain_name(domain)
    removed = []
    if folder.is_dir() and not folder.is_symlink():
        for entry in folder.iterdir():
            if entry.name not in keep and entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
                removed.append(entry.name)
    if removed:
        db.execute("BEGIN IMMEDIATE")
        db.executemany("DELETE FROM list_members WHERE domain=? AND list=?", [(domain, n) for n in removed])
        db.execute("COMMIT")
    return removed


def retune(host: ListHost, path: Path) -> bool:
    """Make a list's `sending` control files this agent's (a list written by an older agent, or
    before MAILHOST_LIST_SMTP_PORT was set, sends at once through the smtpd for mlmmj, without
    waiting for its domain's next change); whether one changed."""
    folder = path / "control"
    if path.is_symlink() or folder.is_symlink():
        return False
    changed = False
    for name, value in sending(host.smtp_port).items():
        file = folder / name
        if file.is_symlink():
            file.unlink()
        changed |= _write_if_changed(file, value + "\n")
    if changed:
        _chown_tree(folder, _owner_ids(host))
    return changed


def maintain(host: ListHost) -> None:
    """mlmmj-maintd for every list: digests, moderation timeouts, bounce handling, the resending
    of what was requeued; each list's `sending` control files first (retune)."""
    root = host.mlmmj_root.resolve()
    if not root.is_dir():
        return
    for path in sorted(root.glob("*/*")):
        if (path / "control" / "listaddress").exists():
            retune(host, path)
            subprocess.run(  # noqa: S603
                [str(MLMMJ / "mlmmj-maintd"), "-F", "-L", str(path)], check=False, capture_output=True, timeout=120,
            )
