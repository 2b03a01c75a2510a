"""An ezmlm-idx list's folder read into the panel's list options (`lists.options` names).

What says what (ezmlm-make's switches; a lower-case letter is on, its capital off):
- the letters: `flags` (ezmlm-idx 7) or the `F:` line of `config` (ezmlm-idx 0.4) when there are
  some (ezmlm-idx then ignores the flag files), else the flag files (`modpost`, `public`...);
- posting (QmailAdmin's five choices): M U anyone, M u subscribers, m u subscribers then
  moderators, m U o moderators (others bounce), m U O moderated;
- `headeradd`'s `Reply-To:` (`<#l#>@<#h#>`: the list, else an address), `prefix`, `text/trailer`;
- d digest, p public (else private), r remote administration, l moderators may list the
  subscribers, h no subscription confirmation, s subscriptions moderated, j no unsubscription
  confirmation, a archived, b archive for moderators, g for subscribers (else anyone), q -request;
- the owner: the `&address` of the list's `owner` (the `.qmail-LIST-owner` ezmlm-make links to it);
- members: `subscribers/`, `mod/subscribers/`, `digest/subscribers/`, files of `T<address>\\0`.
What the panel cannot do is a Problem on the list.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from vpopmail import source
from vpopmail.jail import Escape, Jail, Unreadable
from vpopmail.qmailfiles import parse_dotqmail
from vpopmail.text import decode, decode_lines, shorten

# A switch's flag file(s), in ezmlm-idx 7 and 0.4.
FLAG_FILES = {
    "a": ("archived",), "b": ("modgetonly",), "d": ("digested",), "g": ("subgetonly",), "h": ("nosubconfirm",),
    "i": ("threaded",), "j": ("nounsubconfirm",), "l": ("modcanlist",), "m": ("modpost",), "n": ("modcanedit",),
    "o": ("modpostonly",), "p": ("public",), "r": ("remote",), "s": ("modsub",), "t": ("addtrailer",),
    "u": ("subpostonly",),
}
_REPLY_TO = re.compile(r"^reply-to:\s*(.*)$", re.IGNORECASE)


def _letters(jail: Jail, folder: Path, ml: source.MailingList) -> str | None:
    for name in ("flags", "config"):
        path = folder / name
        if not jail.exists(path):
            continue
        try:
            text = jail.read(path).decode("ascii", errors="replace")
        except Unreadable as error:
            ml.problems.append(source.Problem(jail.where(path), name, f"unreadable: {error}"))
            continue
        if name == "config":
            found = re.search(r"^F:-?([A-Za-z]*)", text, re.MULTILINE)
            if found:
                return found.group(1)
        else:
            letters = re.sub(r"[^A-Za-z]", "", text)
            if letters:
                return letters
    return None


def _switches(jail: Jail, folder: Path, ml: source.MailingList) -> tuple[set[str], bool]:
    """The switches that are on, and whether letters said so. As ezmlm-idx reads them: the letters
    of `flags` or `config` when there are some (the flag files are then not looked at), else the
    flag files."""
    letters = _letters(jail, folder, ml)
    if letters is not None:
        return {letter for letter in letters if letter.islower()}, True
    return {letter for letter, names in FLAG_FILES.items() if any(jail.exists(folder / name) for name in names)}, False


def read_members(jail: Jail, folder: Path, ml: source.MailingList) -> list[str]:
    """The addresses of an ezmlm subscriber database (`T<address>\\0` records in files named by
    hash letters), in file order, each once."""
    found: dict[str, None] = {}
    if not jail.is_dir(folder):
        if jail.exists(folder):
            ml.problems.append(source.Problem(jail.where(folder), folder.name, "not a folder (a link?): its "
                                              "members are not read"))
        return []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as error:
        ml.problems.append(source.Problem(jail.where(folder), folder.name, f"not read: {error.strerror}"))
        return []
    for entry in entries:
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            continue
        try:
            data = jail.read(path)
        except Unreadable as error:
            ml.problems.append(source.Problem(jail.where(path), entry.name, f"unreadable: {error}"))
            continue
        for record in data.split(b"\0"):
            record = record.strip(b"\n")
            if not record:
                continue
            address = decode(record[1:]).strip()
            if record[:1] != b"T" or "@" not in address:
                ml.problems.append(source.Problem(jail.where(path), shorten(decode(record)),
                                                  "not a subscriber record (T<address>)"))
                continue
            found.setdefault(address, None)
    return list(found)


def _text(jail: Jail, path: Path, ml: source.MailingList) -> str:
    if not jail.exists(path):
        return ""
    try:
        return decode_lines(jail.read(path))
    except Unreadable as error:
        ml.problems.append(source.Problem(jail.where(path), path.name, f"unreadable: {error}"))
        return ""


def _tags(text: str, name: str, host: str) -> str:
    """ezmlm's <#l#> (the list's local part) and <#h#> (its host) in a text."""
    return text.replace("<#l#>", name).replace("<#L#>", name).replace("<#h#>", host).replace("<#H#>", host)


def _inner(jail: Jail, folder: Path, name: str, ml: source.MailingList) -> Path | None:
    """A sub-folder of the list's folder (`mod`, `digest`, `text`...) without a link in it: a link
    is followed under ROOT (reported), one leading out of ROOT is refused (reported)."""
    try:
        inner = jail.resolve(name, folder)
    except Escape as error:
        ml.problems.append(source.Problem(jail.where(folder / name), name, f"not read: {error}"))
        return None
    if inner != folder / name:
        ml.problems.append(source.Problem(jail.where(folder / name), name, f"a link, read as {jail.where(inner)}"))
    return inner


def _members_in(jail: Jail, folder: Path, name: str, ml: source.MailingList) -> list[str]:
    inner = _inner(jail, folder, name, ml)
    return read_members(jail, inner / "subscribers", ml) if inner is not None else []


def read_list(jail: Jail, folder: Path, name: str, domain: str) -> source.MailingList:
    ml = source.MailingList(name=name, path=folder)
    where = jail.where(folder)

    def problem(what: str, why: str) -> None:
        ml.problems.append(source.Problem(where, what, why))

    if not jail.is_dir(folder):
        problem(name, "the list's folder is missing from the copy: its options and members are not read")
        return ml
    on, lettered = _switches(jail, folder, ml)
    options: dict[str, object] = {}
    if "m" in on:
        options["posting"] = "subscribers_moderated" if "u" in on else ("moderators" if "o" in on else "moderated")
    else:
        options["posting"] = "subscribers" if "u" in on else "anyone"
    options["reply_to"] = "sender"
    for line in _text(jail, folder / "headeradd", ml).splitlines():
        match = _REPLY_TO.match(line.strip())
        if match:
            value = match.group(1).strip()
            if value.lower() == "<#l#>@<#h#>":
                options["reply_to"] = "list"
            else:
                options["reply_to"] = "address"
                options["reply_to_address"] = _tags(value, name, domain)
    prefix = _text(jail, folder / "prefix", ml).strip()
    if prefix:
        options["prefix"] = _tags(prefix, name, domain)
        if "#" in prefix:
            problem(f"prefix {shorten(prefix)}", "ezmlm put the message number in place of #: the panel's list "
                                                 "server does not, the # is kept as it is")
    text_folder = _inner(jail, folder, "text", ml)
    trailer = _text(jail, text_folder / "trailer", ml) if text_folder else ""
    if trailer.strip() and ("t" in on or not lettered):  # without letters, ezmlm adds text/trailer when there
        options["trailer"] = _tags(trailer, name, domain)
    elif trailer.strip():
        problem("text/trailer", "a trailer the list did not add (-T): not carried")
    options["digest"] = "d" in on
    options["request_address"] = "q" in on
    options["private"] = "p" not in on
    options["remote_admin"] = "r" in on
    options["remote_admin_list"] = "l" in on
    options["sub_confirm"] = "h" not in on
    options["sub_moderate"] = "s" in on
    options["unsub_confirm"] = True
    options["archive"] = "a" in on
    options["archive_access"] = "moderators" if "b" in on else ("subscribers" if "g" in on else "anyone")
    if "j" in on:
        problem("-j", "unsubscription without confirmation: the panel's list server always asks for one")
    if "n" in on:
        problem("-n", "remote administrators could edit the text files by mail: not possible with the panel's list "
                      "server (the texts are edited on the list's page)")
    if "i" in on:
        problem("-i", "the archive's index for ezmlm-cgi (a web archive): not carried")
    ml.options = options
    # The owner: the list's `owner` file is the .qmail of LIST-owner.
    owner = folder / "owner"
    if jail.exists(owner):
        try:
            for dot in parse_dotqmail(jail.read(owner)):
                if dot.kind == "address" and "@" in dot.value:
                    ml.owner = dot.value
                    break
        except Unreadable as error:
            problem("owner", f"unreadable: {error}")
    ml.subscribers = read_members(jail, folder / "subscribers", ml)
    ml.moderators = _members_in(jail, folder, "mod", ml)
    ml.digest_subscribers = _members_in(jail, folder, "digest", ml)
    if jail.exists(folder / "sql"):
        problem("sql", "the members are in a SQL database: not read")
    for extra, why in (("allow", "addresses allowed to post besides the subscribers"),
                       ("deny", "addresses refused (the list's blacklist)")):
        members = _members_in(jail, folder, extra, ml)
        if members:
            problem(f"{extra}/subscribers: {len(members)}", f"{why}: the panel has no such list, not carried")
    if ml.digest_subscribers and not options["digest"]:
        problem("digest/subscribers", "digest subscribers on a list without a digest: read, the digest is off")
    texts = text_folder
    if texts is not None and jail.is_dir(texts):
        try:
            others = sorted(entry.name for entry in os.scandir(texts) if entry.name != "trailer")
        except OSError:
            others = ["?"]
        if others:
            problem(f"text/: {shorten(', '.join(others), 80)}",
                    "ezmlm's texts (help, welcome, ...) are not carried: the panel's list server sends its own")
    return ml


def list_folder_of(jail: Jail, dotfile: Path, domain_dir: Path) -> tuple[Path | None, str]:
    """The list folder a `.qmail-LIST` leads to: its symlink's target `DIR/editor` (ezmlm-make),
    or the folder named by an `ezmlm-send`/`ezmlm-reject` line of a copied file. (None, "") when
    it is not a list's; (None, why) when it is but cannot be followed."""
    try:
        link = os.readlink(dotfile)
    except OSError:
        link = ""
    if link:
        try:
            target = jail.resolve(link, domain_dir)
        except Escape as error:
            return None, f"the symbolic link leaves the copy: {error}"
        if target.name == "editor":
            return target.parent, ""
    return None, ""


def list_folder_in(jail: Jail, text: str, domain_dir: Path) -> tuple[Path | None, str]:
    """The folder an ezmlm program line names (`|.../ezmlm-send '/home/vpopmail/domains/d/LIST'`)."""
    match = re.search(r"ezmlm-(?:send|reject|store)\b.*?'?(/[^'\s]+)'?", text)
    if not match:
        return None, ""
    try:
        return jail.resolve(match.group(1), domain_dir), ""
    except Escape as error:
        return None, f"the list's folder leaves the copy: {error}"
