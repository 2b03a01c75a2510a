"""Mailing lists on the host: mlmmj list directories, their control files and their members.

The panel is the source of truth for list options. Membership can also change by mail
(list+subscribe@, list+unsubscribe@), so members are reconciled three ways: the host keeps the
membership it last applied (table `list_members` of the maps database); an apply adds and removes
only what the panel changed since, and `membership_changes` reports what changed by mail so the
panel can take it in. Plain Python, no Django.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mailhost import contract, render
from mailhost.render import RenderError

MLMMJ = Path("/usr/bin")
KINDS = ("subscriber", "digest", "moderator")
FLAGS = ("subonlypost", "modonlypost", "moderated", "modnonsubposts", "nodigestsub", "closedlist",
         "nosubconfirm", "submod", "noarchive", "subonlyget", "noget")
TEXTS = ("prefix", "footer", "customheaders", "delheaders", "moderators", "owner", "smtpport")



@dataclass(frozen=True)
class ListHost:
    mlmmj_root: Path
    smtp_port: int = 25
    user: str = "list"


def available() -> bool:
    return (MLMMJ / "mlmmj-make-ml").exists()


def list_dir(host: ListHost, domain: str, name: str) -> Path:
    return host.mlmmj_root.resolve() / render.domain_name(domain) / render.local_part(name)


def control(document_list: contract.MailingList, domain: str, smtp_port: int) -> tuple[set[str], dict[str, str]]:
    """The control flags and texts of a list, from the panel's options (values validated)."""
    name = render.local_part(document_list["name"])
    address = f"{name}@{domain}"
    posting = document_list.get("posting", "subscribers")
    flags: set[str] = set()
    if posting == "subscribers":
        flags.add("subonlypost")
    elif posting == "subscribers_moderated":
        flags |= {"subonlypost", "modnonsubposts"}
    elif posting == "moderators":
        flags.add("modonlypost")
    elif posting == "moderated":
        flags |= {"moderated", "modonlypost"}
    elif posting != "anyone":
        raise RenderError(f"unknown posting policy: {posting!r}")
    if not document_list.get("digest"):
        flags.add("nodigestsub")
    if document_list.get("private"):
        flags.add("closedlist")
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
        flags.add("noget")
    if not document_list.get("owner"):
        raise RenderError(f"list without owner: {address}")
    texts = {"owner": render.address(document_list["owner"]), "smtpport": str(int(smtp_port))}
    if document_list.get("prefix"):
        texts["prefix"] = render.text(document_list["prefix"], single_line=True)
    if document_list.get("trailer"):
        texts["footer"] = render.text(document_list["trailer"])
    reply_to = document_list.get("reply_to", "sender")
    if reply_to == "list":
        texts["customheaders"], texts["delheaders"] = f"Reply-To: {address}", "Reply-To:"
    elif reply_to == "address":
        texts["customheaders"] = f"Reply-To: {render.address(document_list['reply_to_address'])}"
        texts["delheaders"] = "Reply-To:"
    moderators = [render.address(a) for a in document_list.get("moderators", [])]
    if moderators:
        texts["moderators"] = "\n".join(moderators)
    return flags, texts


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


def _run(*args: str) -> str:
    return subprocess.run(  # noqa: S603 - mlmmj programs by absolute path, validated arguments
        list(args), check=True, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    ).stdout


def ensure_list(host: ListHost, domain: str, document_list: contract.MailingList) -> Path:
    """Create the list directory if needed and write its control files (idempotent)."""
    path = list_dir(host, domain, document_list["name"])
    flags, texts = control(document_list, domain, host.smtp_port)
    ids = _owner_ids(host)
    if not (path / "control" / "listaddress").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        owner = texts["owner"]
        subprocess.run(  # noqa: S603
            [str(MLMMJ / "mlmmj-make-ml"), "-L", path.name, "-s", str(path.parent)],
            input=f"{domain}\n{owner}\nen\n", text=True, check=True, capture_output=True, timeout=60,
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
        file, wanted = folder / name, (texts[name] + "\n" if name in texts else None)
        current = file.read_text(encoding="utf-8") if file.exists() else None
        if wanted is None and current is not None:
            file.unlink()
        elif wanted is not None and wanted != current:
            file.write_text(wanted, encoding="utf-8")
            changed = True
    if changed:
        _chown_tree(path, ids)
    return path


def _actual(path: Path, kind: str) -> set[str]:
    if kind == "moderator":
        file = path / "control" / "moderators"
        return {line.strip() for line in file.read_text().splitlines() if line.strip()} if file.exists() else set()
    option = ["-d"] if kind == "digest" else []
    return {line.strip().lower() for line in _run(str(MLMMJ / "mlmmj-list"), "-L", str(path), *option).splitlines()
            if line.strip()}


def _applied(db: sqlite3.Connection, domain: str, name: str, kind: str) -> set[str]:
    rows = db.execute("SELECT address FROM list_members WHERE domain=? AND list=? AND kind=?", (domain, name, kind))
    return {address for (address,) in rows}


def sync_members(host: ListHost, db: sqlite3.Connection, domain: str, document_list: contract.MailingList) -> None:
    """Add and remove the members the panel changed since the last apply; leave the others."""
    name = document_list["name"]
    path = list_dir(host, domain, name)
    wanted = {
        "subscriber": {render.address(a) for a in document_list.get("subscribers", [])},
        "digest": {render.address(a) for a in document_list.get("digest_subscribers", [])},
        "moderator": {render.address(a) for a in document_list.get("moderators", [])},
    }
    ran = False
    for kind in ("subscriber", "digest"):
        before = _applied(db, domain, name, kind)
        option = ["-d"] if kind == "digest" else []
        for address in sorted(wanted[kind] - before):
            _run(str(MLMMJ / "mlmmj-sub"), "-L", str(path), "-a", address, *option, "-f", "-q", "-s")
            ran = True
        for address in sorted(before - wanted[kind]):
            _run(str(MLMMJ / "mlmmj-unsub"), "-L", str(path), "-a", address, *option, "-q", "-s")
            ran = True
    if not ran and all(_applied(db, domain, name, kind) == wanted[kind] for kind in KINDS):
        return
    _chown_tree(path, _owner_ids(host))
    db.execute("BEGIN IMMEDIATE")
    db.execute("DELETE FROM list_members WHERE domain=? AND list=?", (domain, name))
    db.executemany(
        "INSERT INTO list_members(domain, list, kind, address) VALUES (?,?,?,?)",
        [(domain, name, kind, a) for kind, addresses in wanted.items() for a in addresses],
    )
    db.execute("COMMIT")


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


def membership_changes(host: ListHost, db: sqlite3.Connection) -> list[contract.ListChange]:
    """What changed by mail since the last apply, per list: added and removed addresses."""
    changes = []
    root = host.mlmmj_root.resolve()
    if not root.is_dir():
        return changes
    for path in sorted(root.glob("*/*")):
        if not (path / "control" / "listaddress").exists():
            continue
        domain, name = path.parent.name, path.name
        for kind in ("subscriber", "digest"):
            actual, applied = _actual(path, kind), _applied(db, domain, name, kind)
            if actual != applied:
                changes.append({"domain": domain, "list": name, "kind": kind,
                                "added": sorted(actual - applied), "removed": sorted(applied - actual)})
                db.execute("BEGIN IMMEDIATE")
                db.execute("DELETE FROM list_members WHERE domain=? AND list=? AND kind=?", (domain, name, kind))
                db.executemany("INSERT INTO list_members(domain, list, kind, address) VALUES (?,?,?,?)",
                               [(domain, name, kind, a) for a in actual])
                db.execute("COMMIT")
    return changes


def maintain(host: ListHost) -> None:
    """mlmmj-maintd for every list: digests, moderation timeouts, bounce handling."""
    root = host.mlmmj_root.resolve()
    if not root.is_dir():
        return
    for path in sorted(root.glob("*/*")):
        if (path / "control" / "listaddress").exists():
            subprocess.run(  # noqa: S603
                [str(MLMMJ / "mlmmj-maintd"), "-F", "-L", str(path)], check=False, capture_output=True, timeout=120,
            )
