"""The members of the mlmmj lists on the host: written and read in mlmmj's own files, no process
per address.

mlmmj 1.3.0 keeps a list's members in `<listdir>/subscribers.d/` (digest: `digesters.d/`, nomail,
who may post and get no mail: `nomailsubs.d/`; the panel holds all three), one file per first byte
of the address (`a`, `1`, `_`...), one address per line, lower-cased in ASCII only (`Émile@x` stays
`Émile@x`, in file `\\xc3`), files mode 0600 owned by the list directory's owner. `mlmmj-sub` takes
an fcntl write lock on `.<c>.lock` and then on the file `<c>`, appends the line, and unlinks the
lock file; `mlmmj-unsub` writes `<c>.new` under the same locks and renames it over `<c>` (or
unlinks both when nothing is left). Both refuse an address that starts with the list's own address.
Writing the files the same way is what lets 50,000 members land in a second rather than in 50,000
processes; `tests/test_list_import.py` checks that both ways leave the same files.

The host keeps the membership it last applied in the maps database (table `list_members`): an
apply writes only what the panel changed since, and `membership_changes` compares the files with
it to report what changed by mail (list+subscribe@, list+unsubscribe@, and mlmmj-maintd's bounce
handling, which runs `mlmmj-unsub -b` on an address that bounced for `bouncelife` seconds: it
leaves every version, normal and digest). Every address in the files is one the panel shows: one
its rules refuse (`panel_address`; the list pipe refuses them at the door, so only an older
subscription or a hand-made one) is removed from the files and reported as `refused`, never left
unseen. Plain Python, no Django.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from mailhost import contract, render
from mailhost.lists import ListHost, list_dir

log = logging.getLogger(__name__)
FOLDERS: dict[contract.MemberKind, str] = {  # in mlmmj's files
    "subscriber": "subscribers.d", "digest": "digesters.d", "nomail": "nomailsubs.d",
}
Kind = contract.MemberKind | Literal["moderator"]
KINDS: tuple[Kind, ...] = ("subscriber", "digest", "nomail", "moderator")
# The panel's rule for an address (mail.validators.normalize_address, on the lower-case ASCII form
# mlmmj stores): letters, digits and . - _ + in the local part, no dot at either end nor two in a
# row; a domain of LDH labels whose last is not all digits. mailhost/list_pipe.py keeps a copy (it
# imports nothing of the agent); tests/test_list_door.py checks that the three agree.
PANEL_LOCAL = re.compile(r"^(?!\.)(?!.*\.\.)[a-z0-9._+-]{1,64}(?<!\.)\Z")
PANEL_DOMAIN = re.compile(r"^(?=.{1,253}\Z)((?!-)[a-z0-9-]{1,63}(?<!-)\.)+(?!-)(?![0-9]+\Z)[a-z0-9-]{1,63}(?<!-)\Z")
REPORTED_LENGTH = 320
_ASCII_LOWER = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}


def mlmmj_lower(address: str) -> str:
    """What mlmmj stores for an address: ASCII letters lower-cased, nothing else touched."""
    return address.translate(_ASCII_LOWER)


def _file_name(address: str) -> bytes:
    return address.encode("utf-8", "surrogateescape")[:1]


def panel_address(address: str) -> bool:
    """Whether the panel's rules take `address` as it is stored (PANEL_LOCAL, PANEL_DOMAIN)."""
    local, at, domain = address.rpartition("@")
    return bool(at) and bool(PANEL_LOCAL.match(local)) and bool(PANEL_DOMAIN.match(domain))


def _shown(address: str) -> str:
    """An address found in a member file as it is reported: bounded, readable, no control character."""
    text = address.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", "\ufffd", text)[:REPORTED_LENGTH]


def _owner(path: Path) -> tuple[int, int] | None:
    """The ids mlmmj writes as (it becomes the list directory's owner); None when not root."""
    if os.geteuid() != 0:
        return None
    info = path.stat()
    return info.st_uid, info.st_gid


@contextmanager
def _locked(folder: Path, name: bytes, owner: tuple[int, int] | None) -> Iterator[int | None]:
    """mlmmj's locks on one member file: `.<c>.lock`, then the file itself (fd None: no file)."""
    base = os.fsencode(folder)
    lock_path = os.path.join(base, b"." + name + b".lock")
    lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    file_fd = None
    try:
        if owner is not None:  # mlmmj, running as the owner, must be able to open it too
            os.fchown(lock_fd, *owner)
        fcntl.lockf(lock_fd, fcntl.LOCK_EX)
        path = os.path.join(base, name)
        while True:
            try:
                file_fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                break
            fcntl.lockf(file_fd, fcntl.LOCK_EX)
            if os.fstat(file_fd).st_ino == os.stat(path).st_ino:
                break  # not renamed away while we waited for it
            os.close(file_fd)
            file_fd = None
        yield file_fd
    finally:
        if file_fd is not None:
            os.close(file_fd)
        os.unlink(lock_path)
        os.close(lock_fd)


def _read_lines(fd: int) -> list[str]:
    """The complete lines of a member file (a line still being appended has no newline yet)."""
    with os.fdopen(os.dup(fd), "rb") as handle:
        handle.seek(0)
        data = handle.read()
    lines = data.split(b"\n")
    return [line.decode("utf-8", "surrogateescape") for line in lines[:-1] if line.strip()]


def _rewrite(folder: Path, name: bytes, lines: list[str], owner: tuple[int, int] | None) -> None:
    """Replace the file `name` by `lines` as mlmmj-unsub does: `<c>.new`, then a rename (an
    empty file is removed). Readers see the old file or the new one, never half of one."""
    base = os.fsencode(folder)
    path, new = os.path.join(base, name), os.path.join(base, name + b".new")
    if not lines:
        if os.path.exists(path):
            os.unlink(path)
        return
    fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if owner is not None:
            os.fchown(fd, *owner)
        os.write(fd, "".join(f"{line}\n" for line in lines).encode("utf-8", "surrogateescape"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(new, path)


def write_members(path: Path, kind: contract.MemberKind, add: Iterable[str], remove: Iterable[str]) -> None:
    """Add and remove addresses of one kind in a list's files, as mlmmj-sub -f -q -s and
    mlmmj-unsub -q -s (of that version only) would, one file rewrite per first byte."""
    folder = path / FOLDERS[kind]
    list_address = mlmmj_lower((path / "control" / "listaddress").read_text(encoding="utf-8").split("\n")[0].strip())
    by_file: dict[bytes, tuple[list[str], set[str]]] = {}
    for address in add:
        address = mlmmj_lower(address)
        if not address.startswith(list_address):  # mlmmj: "Cannot subscribe the list address"
            by_file.setdefault(_file_name(address), ([], set()))[0].append(address)
    for address in remove:
        address = mlmmj_lower(address)
        by_file.setdefault(_file_name(address), ([], set()))[1].add(address)
    owner = _owner(path)
    for name, (adding, removing) in sorted(by_file.items()):
        with _locked(folder, name, owner) as fd:
            current = _read_lines(fd) if fd is not None else []
            kept = [line for line in current if mlmmj_lower(line.strip()) not in removing]
            present = set(kept)
            for address in adding:
                if address not in present:
                    kept.append(address)
                    present.add(address)
            if kept != current:
                _rewrite(folder, name, kept, owner)


def read_members(path: Path, kind: Kind) -> set[str]:
    """The addresses of one kind in a list's files, read as mlmmj-list reads them (every member
    file of the folder), each under a shared lock so that no write is seen half done."""
    if kind == "moderator":
        file = path / "control" / "moderators"
        return {line.strip() for line in file.read_text().splitlines() if line.strip()} if file.exists() else set()
    folder = os.fsencode(path / FOLDERS[kind])
    found: set[str] = set()
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return found
    for entry in entries:
        if len(entry.name) != 1 or not entry.is_file(follow_symlinks=False):
            continue  # mlmmj's member files are named by one byte; `.c.lock` and `c.new` are not
        try:
            fd = os.open(entry.path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.lockf(fd, fcntl.LOCK_SH)
            found.update(mlmmj_lower(line.strip()) for line in _read_lines(fd))
        finally:
            os.close(fd)
    return found


def _applied(db: sqlite3.Connection, domain: str, name: str) -> dict[str, set[str]]:
    applied: dict[str, set[str]] = {kind: set() for kind in KINDS}
    rows = db.execute("SELECT kind, address FROM list_members WHERE domain=? AND list=?", (domain, name))
    for kind, address in rows:
        applied.setdefault(kind, set()).add(address)
    return applied


def _record(db: sqlite3.Connection, domain: str, name: str, kind: str, added: set[str], removed: set[str]) -> None:
    """Store what is now applied: only the rows that changed (one transaction, already open)."""
    db.executemany("DELETE FROM list_members WHERE domain=? AND list=? AND kind=? AND address=?",
                   [(domain, name, kind, a) for a in removed])
    db.executemany("INSERT OR IGNORE INTO list_members(domain, list, kind, address) VALUES (?,?,?,?)",
                   [(domain, name, kind, a) for a in added])


def _document_members(document_list: contract.MailingList) -> dict[str, list[str]]:
    """The members the panel sends for a list, by kind (KINDS)."""
    return {
        "subscriber": document_list.get("subscribers", []),
        "digest": document_list.get("digest_subscribers", []),
        "nomail": document_list.get("nomail_subscribers", []),
        "moderator": document_list.get("moderators", []),
    }


def sync_members(host: ListHost, db: sqlite3.Connection, domain: str, document_list: contract.MailingList) -> None:
    """Add and remove the members the panel changed since the last apply; leave the others
    (those that came by mail and the panel has not taken in yet)."""
    name = document_list["name"]
    path = list_dir(host, domain, name)
    wanted = {kind: {render.address(a) for a in members} for kind, members in _document_members(document_list).items()}
    applied = _applied(db, domain, name)
    if applied == wanted:
        return
    for folder_kind in FOLDERS:
        add, remove = wanted[folder_kind] - applied[folder_kind], applied[folder_kind] - wanted[folder_kind]
        if add or remove:
            write_members(path, folder_kind, sorted(add), remove)
    db.execute("BEGIN IMMEDIATE")
    for kind in KINDS:
        _record(db, domain, name, kind, wanted[kind] - applied[kind], applied[kind] - wanted[kind])
    db.execute("COMMIT")


def membership_changes(host: ListHost, db: sqlite3.Connection) -> list[contract.ListChange]:
    """What changed by mail since the last apply, per list and kind: the addresses added and
    removed (the files against table `list_members`, which then holds the files' state)."""
    changes: list[contract.ListChange] = []
    root = host.mlmmj_root.resolve()
    if not root.is_dir():
        return changes
    for path in sorted(root.glob("*/*")):
        if not (path / "control" / "listaddress").exists():
            continue
        domain, name = path.parent.name, path.name
        applied = _applied(db, domain, name)
        for kind in FOLDERS:
            found = read_members(path, kind)
            refused = {address for address in found if not panel_address(address)}
            if refused:  # out of mlmmj's files, as mlmmj-unsub would; the panel hears of each
                write_members(path, kind, (), refused)
                log.warning("list %s@%s: removed %s member(s) the panel's rules refuse: %s", name, domain, kind,
                            ", ".join(sorted(_shown(address) for address in refused))[:2000])
            actual = found - refused
            if actual == applied[kind] and not refused:
                continue
            added, removed = actual - applied[kind], applied[kind] - actual
            change: contract.ListChange = {"domain": domain, "list": name, "kind": kind,
                                           "added": sorted(added), "removed": sorted(removed)}
            if refused:
                change["refused"] = sorted(_shown(address) for address in refused)
            changes.append(change)
            db.execute("BEGIN IMMEDIATE")
            _record(db, domain, name, kind, added, removed)
            db.execute("COMMIT")
    return changes
