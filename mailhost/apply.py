"""Apply a domain document on this mail host, atomically and idempotently.

- A document whose revision is not newer than the applied one changes nothing.
- Sieve scripts are written first, under names made from their content, so the files the old
  rows point to stay in place; then one SQLite transaction replaces the domain's rows. Readers
  (Postfix, Dovecot) see the whole old or the whole new domain; a crash before the commit leaves
  the old state, after it the new one. Leftovers (old scripts, maildirs of removed mailboxes)
  are swept after the commit, by every apply, so an interrupted one is finished by the next.
- A renamed mailbox takes its mail along: the commit that applies the rename records it (table
  `renames`), then the old home is moved to the new name (merged into mail already there) before
  any sweep, by this apply or, after a crash, by the next one (`_move_renamed`).
- Paths are built from validated names and checked to stay under the mail root.
- A domain not yet proven its customer's (the document's `verified` is false) is not served: the
  host keeps its name and revision only (`domains.active` = UNPROVEN, which Postfix's `vdomains`
  does not list), no row of its addresses and no login: mail to it from this host's other tenants
  leaves for its real MX, no alias rewrites it, no disabled or over-quota mailbox of the claimant
  refuses it at RCPT TO, Dovecot knows none of its mailboxes (nothing could be delivered to them).
  Nothing on disk is removed meanwhile. Once proven, the whole domain comes and is served.
- An alias domain (contract.AliasDocument) is its `domains` row (served or not, as a domain) and
  its `alias_domains` row, nothing else: the queries of mailhost.maps make x@alias mean x@target
  for Postfix and Dovecot while both are served. Its document replaces whatever the name held
  here; its absent document removes both rows. A domain's own documents never touch the rows of
  its aliases (a target removed or unproven leaves them inert: its `domains` row is not served).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import pwd
import secrets
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from mailhost import contract, dkim, list_members, lists, maps, migrate, render, spam
from mailhost.layout import RootLayout
from mailhost.memory import cycle_collector_paused
from mailhost.render import RenderError

log = logging.getLogger(__name__)

SIEVE_DIR = ".panel-sieve"
# `domains.active`: what the host does with a domain (Postfix's `vdomains` lists SERVED ones only).
ABSENT, SERVED, UNPROVEN = 0, 1, 2
# The document of a present domain, complete or a delta (contract.is_delta tells which).
Present = contract.DomainDocument | contract.DomainDelta
# A domain's own documents (an alias domain's are applied by _apply_alias).
Own = contract.DomainDocument | contract.DomainDelta | contract.AbsentDocument


@dataclass(frozen=True)
class HostConfig(RootLayout):
    name: str
    root: Path
    postfix_dir: Path | None = None  # set when a real Postfix reads the maps: reload on routing changes
    removal: str = "delete"  # or "archive": what becomes of a removed mailbox's maildir
    mail_user: str = "mail"
    smtp_port: int = 25  # where mlmmj sends the list's mail (the host's Postfix)
    dovecot_conf: Path | None = None  # the Dovecot whose doveadm copies mail away (None: doveadm's default)


@dataclass
class Outcome:
    domain: str
    revision: int
    state: str
    applied: bool  # False: the document was not newer than what the host has
    reloaded: bool = False
    removed_homes: list[str] = field(default_factory=list)
    moved_homes: list[str] = field(default_factory=list)  # "old → new" local parts whose home moved


def home_of(cfg: HostConfig, domain: str, local: str) -> Path:
    """The mailbox's home: two validated names (no "/", no "..", no leading dot) under the root."""
    return cfg.vmail_root.resolve() / render.domain_name(domain) / render.local_part(local)


def mail_owner(mail_user: str) -> tuple[int, int] | None:
    """The uid and gid the mail files belong to (None: not root, or no such user: left as made)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(mail_user)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def _real_dir(path: Path, owner: tuple[int, int] | None) -> None:
    """Make `path` a real directory; a symbolic link planted there is refused, never followed."""
    if path.is_symlink():
        raise RenderError(f"{path} is a symbolic link")
    if not path.is_dir():
        path.mkdir(mode=0o700)
        if owner:
            os.chown(path, *owner)


def script_path(home: Path, script: str) -> Path:
    """Where a script lives: named after its content, so an unchanged script keeps its file."""
    return home / SIEVE_DIR / (hashlib.sha256(script.encode()).hexdigest()[:24] + ".sieve")


def _write_script(home: Path, script: str, owner: tuple[int, int] | None) -> Path:
    """Store a Sieve script under a name made from its content (unchanged → untouched)."""
    home.parent.parent.mkdir(parents=True, exist_ok=True)
    _real_dir(home.parent, owner)
    _real_dir(home, owner)
    folder = home / SIEVE_DIR
    _real_dir(folder, owner)
    path = script_path(home, script)
    if path.is_symlink():
        raise RenderError(f"{path} is a symbolic link")
    if not path.exists():
        tmp = folder / f".{secrets.token_hex(8)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(script)
        if owner:
            os.chown(tmp, *owner)
        os.replace(tmp, path)
    return path


def _sweep_scripts(home: Path, keep: Path | None) -> None:
    folder = home / SIEVE_DIR
    if folder.is_symlink() or not folder.is_dir():
        return
    keep_stem = keep.stem if keep else None
    for f in folder.iterdir():
        if f.stem != keep_stem:
            f.unlink(missing_ok=True)


def _remove_home(cfg: HostConfig, path: Path) -> None:
    if cfg.vmail_root.resolve() not in path.resolve().parents:
        raise RenderError(f"refusing to remove {path}: outside the mail root")
    if cfg.removal == "archive":
        rel = path.relative_to(cfg.vmail_root)
        target = cfg.archive_root / f"{rel}.{time.strftime('%Y%m%d-%H%M%S')}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(target))
    else:
        shutil.rmtree(path)


def _sweep_homes(cfg: HostConfig, domain: str, keep: set[str], only: set[str] | None = None) -> list[str]:
    """Remove (or archive) the maildirs of this domain that no mailbox owns any more: every
    home but those of `keep`; with `only` (a delta's names), those among these names only,
    without listing the domain's folder."""
    domain_dir = cfg.vmail_root / render.domain_name(domain)
    if domain_dir.is_symlink():
        raise RenderError(f"{domain_dir} is a symbolic link")
    removed: list[str] = []
    if not domain_dir.is_dir():
        return removed
    candidates = (
        domain_dir / f"{prefix}{render.local_part(n)}" for n in sorted(only) for prefix in ("", RENAMING)
    ) if only is not None else domain_dir.iterdir()
    for entry in candidates:
        if entry.name not in keep and entry.is_dir() and not entry.is_symlink():
            _remove_home(cfg, entry)
            removed.append(entry.name)
    return removed


# --------------------------------------------------------------------------------------------------
# A renamed mailbox's mail follows it
# --------------------------------------------------------------------------------------------------

# Where an old home waits while it moves: a leading dot, so never a mailbox's name (render.LOCAL_RE).
RENAMING = ".renaming-"
MAIL_FOLDERS = ("cur", "new")  # tmp holds deliveries in progress: Dovecot cleans it itself


def _renames(db: sqlite3.Connection, domain: str, document: Present, old: Stored, homes: set[str],
             removed: set[str] | None) -> list[tuple[str, str, int]]:
    """The renames this document makes on this host, as rows of `renames` (new address, old
    local part, moved): each mailbox whose `renamed_from` the host has not recorded yet (recorded:
    applied here already, by an earlier or the same document). `moved` is 1 when the old name
    holds no mailbox here (nothing to move: a host that never had it). `homes`: the addresses of
    the document's mailboxes and robots; `removed`: a delta's removed names (None: a whole
    document)."""
    found: list[tuple[str, str, int]] = []
    for m in document.get("mailboxes", []):
        previous = m.get("renamed_from") or ""
        if not previous:
            continue
        previous = render.local_part(previous)
        email = f"{m['local_part']}@{domain}"
        if previous == m["local_part"]:
            raise RenderError(f"{email} is renamed from its own name")
        recorded = db.execute("SELECT old FROM renames WHERE email = ? AND domain = ?", (email, domain)).fetchone()
        if recorded and recorded[0] == previous:
            continue
        source = f"{previous}@{domain}"
        kept = source in homes or (removed is not None and source in old.mailboxes and previous not in removed)
        if kept:  # its home would be two mailboxes' (the panel never sends this)
            raise RenderError(f"{email} is renamed from {previous}, which keeps its own home here")
        found.append((email, previous, 0 if old.names.get(source) == "mailbox" else 1))
    return found


def _record_renames(db: sqlite3.Connection, domain: str, document: Present, new: Stored,
                    renames: list[tuple[str, str, int]], removed: set[str] | None) -> None:
    """In the apply's transaction: forget the renames of mailboxes that leave this host, and the
    finished ones the panel no longer sends (confirmed there); record `renames`."""
    stored = db.execute("SELECT email, old, moved FROM renames WHERE domain = ?", (domain,)).fetchall()
    sent = {f"{m['local_part']}@{domain}": m.get("renamed_from") or "" for m in document.get("mailboxes", [])
            } if stored else {}  # most domains have none: no pass over a big document's mailboxes
    forget = []
    for email, previous, moved in stored:
        leaves = email not in new.mailboxes and (removed is None or email.rsplit("@", 1)[0] in removed)
        if leaves or moved and email in sent and sent[email] != previous:
            forget.append((email, domain))
    db.executemany("DELETE FROM renames WHERE email = ? AND domain = ?", forget)
    db.executemany("INSERT OR REPLACE INTO renames(email, domain, old, moved) VALUES (?,?,?,?)",
                   [(email, domain, previous, moved) for email, previous, moved in renames])


def _move_renamed(cfg: HostConfig, db: sqlite3.Connection, domain: str) -> list[str]:
    """Move the homes of the renames recorded and not moved yet (after the commit: Dovecot then
    delivers to the new name's home, and the old name is refused), each marked done once moved.
    Idempotent: a crash in the middle leaves files in the old home or the new, never nowhere, and
    the next apply (or the redelivered document) goes on. Returns "old → new" for each."""
    pending = db.execute("SELECT email, old FROM renames WHERE domain = ? AND moved = 0 ORDER BY email",
                         (domain,)).fetchall()
    done: list[str] = []
    owner = mail_owner(cfg.mail_user)
    for email, previous in pending:
        local = email.rsplit("@", 1)[0]
        _move_home(cfg, domain, previous, local, owner)
        db.execute("UPDATE renames SET moved = 1 WHERE email = ? AND domain = ?", (email, domain))
        done.append(f"{previous} → {local}")
    return done


def _move_home(cfg: HostConfig, domain: str, old: str, new: str, owner: tuple[int, int] | None) -> None:
    """Move the home of `old` (Maildir and the rest; not its panel Sieve scripts: the new name
    has its own) to `new`: renamed whole when `new` has no home yet, else merged into it (mail
    already delivered to the new name stays, nothing of it is overwritten). The old home first
    goes aside (RENAMING + old) in one rename, so that what a delivery in flight may still
    recreate under the old name is seen, and merged too."""
    domain_dir = cfg.vmail_root / render.domain_name(domain)
    if domain_dir.is_symlink():
        raise RenderError(f"{domain_dir} is a symbolic link")
    source, staged = domain_dir / render.local_part(old), domain_dir / f"{RENAMING}{old}"
    target = domain_dir / render.local_part(new)
    for path in (source, staged, target):
        if path.is_symlink():
            raise RenderError(f"{path} is a symbolic link")
    for _round in range(3):
        if source.is_dir():
            if staged.is_dir():
                _merge_home(source, staged, owner)
                _remove_moved(source)
            else:
                os.rename(source, staged)
        if not staged.is_dir():
            return
        panel_scripts = staged / SIEVE_DIR
        if panel_scripts.is_dir() and not panel_scripts.is_symlink():
            shutil.rmtree(panel_scripts)
        if not target.exists():
            os.rename(staged, target)
        else:
            _merge_home(staged, target, owner)
            _remove_moved(staged)
        if not source.exists():
            return
    raise RenderError(f"the home of {old}@{domain} keeps coming back: moved again by the next apply")


def _merge_home(source: Path, target: Path, owner: tuple[int, int] | None) -> None:
    """Move what `source` holds into the home `target`: the Maildir merged, any other entry moved
    when `target` has none of that name (else `target`'s is kept). Symbolic links are left."""
    for entry in sorted(source.iterdir()):
        there = target / entry.name
        if entry.is_symlink() or entry.name == SIEVE_DIR:
            continue
        if entry.name == "Maildir" and entry.is_dir() and there.is_dir() and not there.is_symlink():
            _merge_maildir(entry, there, owner)
        elif not there.exists() and not there.is_symlink():
            os.rename(entry, there)


def _merge_maildir(source: Path, target: Path, owner: tuple[int, int] | None) -> None:
    """Move every message of the Maildir `source` into the Maildir `target`, folder by folder (a
    folder `target` lacks goes whole, its indexes with it); a message whose file name `target`
    already has gets a new name (hard link, then unlink: never an overwrite). Dovecot indexes the
    new files at its next look; `source`'s own indexes are left behind."""
    folders = [Path("")] + sorted(Path(e.name) for e in source.iterdir()
                                  if e.name.startswith(".") and e.is_dir() and not e.is_symlink())
    for folder in folders:
        src, dst = source / folder, target / folder
        if dst.is_symlink():
            continue
        if folder.name and not dst.exists():
            os.rename(src, dst)
            continue
        for sub in MAIL_FOLDERS:
            messages = src / sub
            if messages.is_symlink() or not messages.is_dir():
                continue
            _real_dir(dst / sub, owner)
            for message in messages.iterdir():
                if not message.is_symlink() and message.is_file():
                    _move_message(message, dst / sub)
    subscriptions = source / "subscriptions"
    if subscriptions.is_file() and not subscriptions.is_symlink():
        there = target / "subscriptions"
        if not there.exists() and not there.is_symlink():
            os.rename(subscriptions, there)
        elif there.is_file() and not there.is_symlink():
            known = there.read_text(errors="replace").splitlines()
            extra = [line for line in subscriptions.read_text(errors="replace").splitlines() if line not in known]
            if extra:
                with there.open("a") as handle:
                    handle.write("".join(f"{line}\n" for line in extra))


def _move_message(message: Path, folder: Path) -> None:
    """Move one message file into `folder` without overwriting any (link, then unlink)."""
    name = message.name
    for _attempt in range(100):
        there = folder / name
        try:
            os.link(message, there)
        except FileExistsError:
            if there.is_file() and not there.is_symlink() and os.path.samefile(message, there):
                break  # linked by a run that died before the unlink
            name = f"r{secrets.token_hex(4)}.{message.name}"  # the unique part comes first
            continue
        break
    else:
        raise RenderError(f"no free name for {message} in {folder}")
    message.unlink()


def _remove_moved(home: Path) -> None:
    """Remove a home whose mail was moved away; refused while a message is left in it."""
    maildir = home / "Maildir"
    left = [p for p in maildir.rglob("*") if p.parent.name in MAIL_FOLDERS and p.is_file() and not p.is_symlink()] \
        if maildir.is_dir() and not maildir.is_symlink() else []
    if left:
        raise RenderError(f"{len(left)} messages are still in {home}: not removed")
    shutil.rmtree(home)


def _reload_postfix(cfg: HostConfig) -> bool:
    if cfg.postfix_dir is None:
        return False
    subprocess.run(  # noqa: S603 - fixed program, absolute config path from the host's settings
        ["/usr/sbin/postfix", "-c", str(cfg.postfix_dir), "reload"],
        check=True, capture_output=True, timeout=60,
    )
    return True


@contextmanager
def _domain_lock(cfg: HostConfig, domain: str) -> Iterator[None]:
    """One apply of a domain at a time on this host, whatever the worker's concurrency."""
    folder = cfg.root / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{domain}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def apply(document: object, cfg: HostConfig) -> Outcome:
    """Apply a domain document (its format and shape checked against the contract first)."""
    with cycle_collector_paused():
        checked = contract.check_document(document)
        domain = render.domain_name(checked["domain"])
        with _domain_lock(cfg, domain):
            if contract.is_alias(checked):
                return _apply_alias(checked, cfg)
            return _apply(checked, cfg)


def _replace_pairs(db: sqlite3.Connection, table: str, key: str, value: str, domain: str, old: dict[str, str],
                   new: dict[str, str]) -> None:
    """Make the domain's (key → value) rows of `table` equal to `new`, touching only differences."""
    # Table and column names are constants of this module, never input.
    db.executemany(f"DELETE FROM {table} WHERE {key} = ? AND domain = ?",  # noqa: S608
                   [(k, domain) for k in old.keys() - new])
    db.executemany(f"UPDATE {table} SET {value} = ? WHERE {key} = ? AND domain = ?",  # noqa: S608
                   [(v, k, domain) for k, v in new.items() if k in old and old[k] != v])
    db.executemany(f"INSERT INTO {table}({key}, domain, {value}) VALUES (?,?,?)",  # noqa: S608
                   [(k, domain, v) for k, v in new.items() if k not in old])


MAILBOX_COLUMNS = (
    "email, domain, password_hash, quota_bytes, active, allow_pop3, allow_imap, allow_smtp, home, sieve"
)


class StoredMailbox(NamedTuple):
    """A row of the maps database's `mailboxes` table, in MAILBOX_COLUMNS order."""

    email: str
    domain: str
    password_hash: str
    quota_bytes: int
    active: int
    allow_pop3: int
    allow_imap: int
    allow_smtp: int
    home: str
    sieve: str | None  # the script's path


@dataclass
class Stored:
    """Rows of one domain in the maps database: all of them, or those of the addresses a delta
    touches (then a row absent here is one the apply leaves alone)."""

    mailboxes: dict[str, StoredMailbox]
    aliases: dict[str, str]  # source -> 'a@x,b@y'
    transports: dict[str, str]
    names: dict[str, str]  # address -> kind


CHUNK = 500  # addresses per "IN (...)" query
MANY = 8 * CHUNK  # more wanted addresses than this: one pass over the domain's rows costs less


def _select(db: sqlite3.Connection, sql: str, key: str, domain: str, wanted: set[str] | None) -> list[tuple[Any, ...]]:
    """Rows of `sql` (a SELECT ... WHERE domain = ?) for the domain; with `wanted`, only those
    whose `key` column (the first selected) is one of these values."""
    if wanted is None:
        return list(db.execute(sql, (domain,)))
    if len(wanted) > MANY:
        return [row for row in db.execute(sql, (domain,)) if row[0] in wanted]
    found: list[tuple[Any, ...]] = []
    ordered = sorted(wanted)
    for i in range(0, len(ordered), CHUNK):
        chunk = ordered[i:i + CHUNK]
        found += db.execute(f"{sql} AND {key} IN ({','.join('?' * len(chunk))})", (domain, *chunk))
    return found


def _read(db: sqlite3.Connection, domain: str, keys: set[str] | None = None, lists: set[str] | None = None) -> Stored:
    """The domain's stored rows; with `keys`, only those of these addresses (and the transports
    of the list addresses `lists`)."""
    # Table and column names are constants of this module, never input.
    mailboxes = _select(db, f"SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE domain = ?",  # noqa: S608
                        "email", domain, keys)
    return Stored(
        mailboxes={row[0]: StoredMailbox._make(row) for row in mailboxes},
        aliases=dict(_select(db, "SELECT source, destination FROM aliases WHERE domain = ?", "source", domain, keys)),
        transports=dict(_select(db, "SELECT address, transport FROM transports WHERE domain = ?", "address",
                                domain, lists)),
        names=dict(_select(db, "SELECT email, kind FROM names WHERE domain = ?", "email", domain, keys)),
    )


def _touched(document: contract.DomainDelta, domain: str,
             rows: render.DomainRows) -> tuple[set[str], set[str], set[str]]:
    """What a delta touches: the local parts of its objects and of its removed names, their
    addresses (with the catch-all's when it has one), and the internal addresses of the lists
    among them."""
    locals_ = {render.local_part(name) for name in document.get("removed", [])}
    locals_ |= {email.rsplit("@", 1)[0] for email in rows.names}
    locals_ |= {render.local_part(m["renamed_from"]) for m in document.get("mailboxes", []) if m.get("renamed_from")}
    keys = {f"{local}@{domain}" for local in locals_}
    if "catchall" in document:
        keys.add(f"@{domain}")
    return locals_, keys, {render.list_internal_address(domain, local) for local in locals_}


def _removed_list_addresses(db: sqlite3.Connection, domain: str, document: contract.DomainDelta) -> set[str]:
    """The ezmlm-style addresses (render.list_sub_addresses) of the lists here that a delta
    removes: they go with their list (the delta names the list only)."""
    found: set[str] = set()
    for name in document.get("removed", []):
        local = render.local_part(name)
        row = db.execute("SELECT kind FROM names WHERE email = ? AND domain = ?", (f"{local}@{domain}", domain))
        if row.fetchone() == ("list",):
            found |= set(render.list_sub_addresses(local))
    return found


def _check_delta(document: contract.DomainDelta, current: tuple[int, int] | None, old: Stored, rows: render.DomainRows,
                 removed_subs: set[str]) -> None:
    """A delta applies on top of its base or a later revision, and never takes an address that
    something else holds here unless it removes that first."""
    base = document["base"]
    if current is None or current[1] != SERVED or current[0] < base:
        raise contract.Behind(f"this host has revision {current[0] if current else 0}, the delta needs {base}")
    removed = {render.local_part(name) for name in document.get("removed", [])} | removed_subs
    for email, kind in rows.names.items():
        held = old.names.get(email)
        if held is not None and held != kind and email.rsplit("@", 1)[0] not in removed:
            raise RenderError(f"address used twice: {email} is a {held} here")


# A domain's language (its customer's), as Dovecot's userdb hands it to the quota warning script
# (mailhost.quota_warning: one word of its command line).
LANGUAGES = ("fr", "en")


def _language(document: Present | None) -> str | None:
    """The document's `language` (None: absent, the host keeps its own); refused unless known."""
    value = document.get("language") if document is not None else None
    if value is not None and value not in LANGUAGES:
        raise RenderError(f"unknown language: {value!r}")
    return value


def _apply(document: Own, cfg: HostConfig) -> Outcome:
    domain = render.domain_name(document["domain"])
    revision, state = document["revision"], document["state"]  # an int and a known state (contract)
    if revision < 0:
        raise RenderError("invalid revision")
    present = None if document["state"] == "absent" else document
    delta = present if contract.is_delta(present) else None
    rows = render.rows(present) if present is not None else None  # checked even when not served
    key = dkim.wanted(document)  # checked before anything is written
    filtering = spam.wanted(document)  # checked before anything is written
    language = _language(present)  # checked before anything is written
    unproven = present is not None and present.get("verified", True) is False
    if unproven:
        rows = None  # nothing of it is stored but its name: see the module's doc
    active = UNPROVEN if unproven else SERVED if rows is not None else ABSENT
    owner = mail_owner(cfg.mail_user)
    root = os.path.realpath(cfg.vmail_root)

    db = maps.connect(cfg.maps_db)
    try:
        current: tuple[int, int] | None = db.execute(
            "SELECT revision, active FROM domains WHERE domain = ?", (domain,)).fetchone()
        if current and current[0] > revision:
            return Outcome(domain, revision, state, applied=False)
        if current and current[0] == revision:
            # Delivered again (a worker may have died after the commit): finish the sweeps only.
            outcome = _finish(cfg, db, domain, Outcome(domain, revision, state, applied=False), document)
            dkim.sync(cfg, db, domain, key)
            spam.sync(cfg, db, domain, filtering)
            return outcome
        touched: set[str] | None = None  # a delta's local parts; None: the whole domain
        if delta is not None and unproven:
            # Applies on an unproven domain only (a served one would keep rows the delta omits).
            if current is None or current[1] != UNPROVEN or current[0] < delta["base"]:
                raise contract.Behind(f"this host does not hold revision {delta['base']} as unproven")
            old = _read(db, domain)
        elif delta is not None:
            assert rows is not None  # a delta is of a present domain (contract)
            touched, keys, list_addresses = _touched(delta, domain, rows)
            removed_subs = _removed_list_addresses(db, domain, delta)
            keys |= {f"{local}@{domain}" for local in removed_subs}
            list_addresses |= {render.list_internal_address(domain, local) for local in removed_subs}
            old = _read(db, domain, keys, list_addresses)
            _check_delta(delta, current, old, rows, removed_subs)
            if db.execute("SELECT 1 FROM alias_domains WHERE alias = ?", (domain,)).fetchone():
                raise contract.Behind(f"{domain} is an alias domain here: the delta needs the whole domain")
        else:
            old = _read(db, domain)
        removed = {render.local_part(name) for name in delta.get("removed", [])} if delta is not None else None
        renames = _renames(db, domain, present, old, {m.email for m in rows.mailboxes}, removed) \
            if rows and present else []

        # New rows; Sieve scripts are written before the commit, under names made from their
        # content, so the scripts the old rows point to stay in place until the commit.
        new_mailboxes: dict[str, StoredMailbox] = {}
        for m in rows.mailboxes if rows else []:
            home = f"{root}/{domain}/{m.local_part}"
            sieve = None
            if m.sieve:
                sieve = str(script_path(Path(home), m.sieve))
                stored = old.mailboxes.get(m.email)
                if stored is None or stored.sieve != sieve or not os.path.exists(sieve):
                    _write_script(Path(home), m.sieve, owner)
            new_mailboxes[m.email] = StoredMailbox._make((
                m.email, domain, m.password_hash, m.quota_bytes, int(m.active), int(m.allow_pop3),
                int(m.allow_imap), int(m.allow_smtp), home, sieve,
            ))
        new = Stored(
            mailboxes=new_mailboxes,
            aliases={src: ",".join(dst) for src, dst in rows.aliases.items()} if rows else {},
            transports=dict(rows.transports) if rows else {},
            names=dict(rows.names) if rows else {},
        )

        db.execute("BEGIN IMMEDIATE")
        try:
            current = db.execute("SELECT revision, active FROM domains WHERE domain = ?", (domain,)).fetchone()
            if current and current[0] >= revision:
                db.execute("ROLLBACK")
                return Outcome(domain, revision, state, applied=False)
            _write(db, domain, old, new)
            if rows is None or present is None:
                db.execute("DELETE FROM renames WHERE domain = ?", (domain,))
            else:
                _record_renames(db, domain, present, new, renames, removed)
            db.execute(
                "INSERT INTO domains(domain, active, revision) VALUES (?,?,?) "
                "ON CONFLICT(domain) DO UPDATE SET active = excluded.active, revision = excluded.revision",
                (domain, active, revision),
            )
            if language is not None:
                db.execute("INSERT INTO domain_languages(domain, language) VALUES (?, ?) "
                           "ON CONFLICT(domain) DO UPDATE SET language = excluded.language", (domain, language))
            elif present is None:
                db.execute("DELETE FROM domain_languages WHERE domain = ?", (domain,))
            # The name is a domain of its own now (or gone): no longer an alias (its aliases' rows,
            # WHERE domain = this name, are theirs: untouched).
            was_alias_of = _target_of(db, domain)
            db.execute("DELETE FROM alias_domains WHERE alias = ?", (domain,))
            migrate.release(db, domain)  # a hold of a move ends with the panel's next word on the domain
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise

        outcome = Outcome(domain, revision, state, applied=True)
        was_served = bool(current and current[1] == SERVED)
        if was_served != (active == SERVED) or old.transports != new.transports:
            outcome.reloaded = _reload_postfix(cfg)
        # What the new rows no longer use: replaced scripts, homes of removed mailboxes.
        for email, stored in old.mailboxes.items():
            replaced = new.mailboxes.get(email)
            if stored.sieve and (replaced is None or replaced.sieve != stored.sieve):
                for leftover in (Path(stored.sieve), Path(stored.sieve).with_suffix(".svbin")):
                    if not leftover.is_symlink():
                        leftover.unlink(missing_ok=True)
        outcome.moved_homes = _move_renamed(cfg, db, domain)  # before the sweep: the old homes are not lost
        keep = {email.rsplit("@", 1)[0] for email in new.mailboxes}
        if not unproven:  # an unproven domain's folder is left as it is (it holds nothing of its own)
            outcome.removed_homes = _sweep_homes(cfg, domain, keep, only=None if touched is None else touched - keep)
        _sync_lists(cfg, db, domain, document)
        _readdress_lists(cfg, db, was_alias_of)
        dkim.sync(cfg, db, domain, key)
        spam.sync(cfg, db, domain, filtering)
        return outcome
    finally:
        db.close()


def _apply_alias(document: contract.AliasDocument, cfg: HostConfig) -> Outcome:
    """Apply an alias domain's document: its `domains` row (served when verified) and its
    `alias_domains` row, in one transaction that also removes every row the name held here (it
    was a domain of its own before); then, served, the leftovers of that past (maildirs, lists)
    are swept as for a domain that lists nothing."""
    domain = render.hosted_domain_name(document["domain"])
    target = render.hosted_domain_name(document["alias_of"])
    revision = document["revision"]
    if revision < 0:
        raise RenderError("invalid revision")
    if target == domain:
        raise RenderError(f"{domain} cannot be an alias of itself")
    active = UNPROVEN if document.get("verified", True) is False else SERVED
    if active == SERVED:
        _check_alias_maps(cfg)
    db = maps.connect(cfg.maps_db)
    try:
        if db.execute("SELECT 1 FROM alias_domains WHERE alias = ?", (target,)).fetchone():
            raise RenderError(f"{target} is itself an alias domain here: {domain} cannot be its alias")
        current: tuple[int, int] | None = db.execute(
            "SELECT revision, active FROM domains WHERE domain = ?", (domain,)).fetchone()
        if current and current[0] > revision:
            return Outcome(domain, revision, "present", applied=False)
        if current and current[0] == revision:  # delivered again: finish what a crash may have left
            outcome = _finish(cfg, db, domain, Outcome(domain, revision, "present", applied=False), document)
            _readdress_lists(cfg, db, {target})
            dkim.sync(cfg, db, domain, dkim.Wanted(keep=False))
            spam.sync(cfg, db, domain, spam.Wanted(keep=False))
            return outcome
        old = _read(db, domain)
        db.execute("BEGIN IMMEDIATE")
        try:
            current = db.execute("SELECT revision, active FROM domains WHERE domain = ?", (domain,)).fetchone()
            if current and current[0] >= revision:
                db.execute("ROLLBACK")
                return Outcome(domain, revision, "present", applied=False)
            previous = _target_of(db, domain)
            _write(db, domain, old, Stored(mailboxes={}, aliases={}, transports={}, names={}))
            db.execute("DELETE FROM renames WHERE domain = ?", (domain,))
            db.execute(
                "INSERT INTO domains(domain, active, revision) VALUES (?,?,?) "
                "ON CONFLICT(domain) DO UPDATE SET active = excluded.active, revision = excluded.revision",
                (domain, active, revision),
            )
            db.execute("INSERT INTO alias_domains(alias, domain) VALUES (?, ?) "
                       "ON CONFLICT(alias) DO UPDATE SET domain = excluded.domain", (domain, target))
            migrate.release(db, domain)
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        outcome = Outcome(domain, revision, "present", applied=True)
        was_served = bool(current and current[1] == SERVED)
        if was_served != (active == SERVED) or old.transports:
            outcome.reloaded = _reload_postfix(cfg)
        for stored in old.mailboxes.values():
            if stored.sieve and not Path(stored.sieve).is_symlink():
                Path(stored.sieve).unlink(missing_ok=True)
        if active == SERVED:  # an unproven name's folder is left as it is (see the module's doc)
            outcome.removed_homes = _sweep_homes(cfg, domain, set())
        _sync_lists(cfg, db, domain, document)
        _readdress_lists(cfg, db, {target, *previous})
        dkim.sync(cfg, db, domain, dkim.Wanted(keep=False))  # signs with its target's key; none of its own
        spam.sync(cfg, db, domain, spam.Wanted(keep=False))  # filtered as its target
        return outcome
    finally:
        db.close()


POSTCONF = "/usr/sbin/postconf"
ALIAS_MAP = "valiasdomains.cf"  # mailhost.maps.POSTFIX_QUERIES["valiasdomains"], as the stack names its file


def _check_alias_maps(cfg: HostConfig) -> None:
    """Refuse to serve an alias domain with a Postfix configured before alias domains existed (its
    virtual_alias_maps without the alias query): every address of the alias would be refused.
    The panel shows the domain failed with this message, and sends it again later."""
    if cfg.postfix_dir is None:
        return
    proc = subprocess.run(  # noqa: S603 - fixed program, the host's own config directory
        [POSTCONF, "-c", str(cfg.postfix_dir), "-h", "virtual_alias_maps"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    if proc.returncode != 0 or ALIAS_MAP not in proc.stdout:
        raise RenderError(
            f"this host's Postfix ({cfg.postfix_dir}) does not read alias domains yet (no {ALIAS_MAP} in "
            "virtual_alias_maps): run `python -m mailhost.stack configure ... --force` with the new agent, "
            "then reload Postfix and restart Dovecot (README: Configuring a real mail host)")


def _target_of(db: sqlite3.Connection, alias: str) -> set[str]:
    """The domain `alias` is an alias of here (a set: empty when it is none)."""
    return {target for (target,) in db.execute("SELECT domain FROM alias_domains WHERE alias = ?", (alias,))}


def _readdress_lists(cfg: HostConfig, db: sqlite3.Connection, domains: set[str]) -> None:
    """The lists of these domains take their names at the domains' served aliases (lists.readdress)."""
    if domains and lists.available() and cfg.mlmmj_root.exists():
        host = lists.ListHost(cfg.mlmmj_root, cfg.smtp_port)
        for target in sorted(domains):
            lists.readdress(host, db, target)


def _rollback(db: sqlite3.Connection) -> None:
    """Undo the apply's open transaction, when there is still one: SQLite ends it itself when a
    statement or the COMMIT fails on a full disk or an I/O error, and a ROLLBACK then fails with
    "cannot rollback - no transaction is active", which would hide the real error (the one the
    panel must be told). A rollback that fails anyway is only logged, for the same reason."""
    if not db.in_transaction:
        return
    try:
        db.execute("ROLLBACK")
    except sqlite3.Error as error:
        log.warning("rollback after a failed apply failed too: %s", error)


def _write(db: sqlite3.Connection, domain: str, old: Stored, new: Stored) -> None:
    """Make the stored rows `old` equal to `new`, writing only the rows that differ: a
    one-mailbox change on a big domain writes one row. Rows of this domain are deleted or
    updated by (key, domain); new keys are plain INSERTs, so a key another domain holds fails
    the whole transaction instead of being taken."""
    db.executemany(
        "DELETE FROM mailboxes WHERE email = ? AND domain = ?",
        [(e, domain) for e in old.mailboxes.keys() - new.mailboxes],
    )
    db.executemany(
        "UPDATE mailboxes SET password_hash=?, quota_bytes=?, active=?, allow_pop3=?, allow_imap=?, "
        "allow_smtp=?, home=?, sieve=? WHERE email=? AND domain=?",
        [(*row[2:], row.email, domain) for e, row in new.mailboxes.items()
         if e in old.mailboxes and old.mailboxes[e] != row],
    )
    db.executemany(
        f"INSERT INTO mailboxes({MAILBOX_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",  # noqa: S608 - constant
        [row for e, row in new.mailboxes.items() if e not in old.mailboxes],
    )
    _replace_pairs(db, "aliases", "source", "destination", domain, old.aliases, new.aliases)
    _replace_pairs(db, "transports", "address", "transport", domain, old.transports, new.transports)
    _replace_pairs(db, "names", "email", "kind", domain, old.names, new.names)


def copy_away(request: object, cfg: HostConfig) -> migrate.Copied:
    """Copy a moving domain's mail to its new host (mailhost.migrate), never during an apply
    (the request's shape checked against the contract first)."""
    request = contract.check(request, contract.CopyRequest)
    domain = render.domain_name(request["domain"])
    with _domain_lock(cfg, domain):
        return migrate.migrate(request, maps_db=cfg.maps_db, vmail_root=cfg.vmail_root,
                               postfix_dir=cfg.postfix_dir, dovecot_conf=cfg.dovecot_conf)


def _finish(cfg: HostConfig, db: sqlite3.Connection, domain: str, outcome: Outcome,
            document: contract.Document) -> Outcome:
    """Remove what the applied state (the rows in the database, not the document) no longer
    uses: old Sieve scripts, maildirs of removed mailboxes. Idempotent: a redelivered document
    runs it again, and a same-revision document with other content can never remove anything.
    A delta finishes what it touched only (its names), as its apply did: no walk of the domain."""
    only = _named(document) if contract.is_delta(document) else None
    if db.execute("SELECT 1 FROM domains WHERE domain = ? AND active = ?", (domain, UNPROVEN)).fetchone():
        _sync_lists(cfg, db, domain, document)  # nothing on disk removed (see the module's doc)
        return outcome
    outcome.moved_homes = _move_renamed(cfg, db, domain)  # a crash after the commit left them to move
    keep: set[str] = set()
    for email, sieve in db.execute("SELECT email, sieve FROM mailboxes WHERE domain = ?", (domain,)):
        local = email.rsplit("@", 1)[0]
        keep.add(local)
        if only is None or local in only:
            _sweep_scripts(home_of(cfg, domain, local), Path(sieve) if sieve else None)
    outcome.removed_homes = _sweep_homes(cfg, domain, keep, only=only)
    _sync_lists(cfg, db, domain, document)
    return outcome


def _named(delta: contract.DomainDelta) -> set[str]:
    """The local parts a delta names: its removed names and its objects'."""
    names = [*delta.get("removed", []), *(ml["name"] for ml in delta.get("lists", []))]
    names += [m["renamed_from"] for m in delta.get("mailboxes", []) if m.get("renamed_from")]
    names += [m["local_part"] for m in delta.get("mailboxes", [])]
    names += [r["local_part"] for r in delta.get("robots", [])]
    names += [f["local_part"] for f in delta.get("forwards", [])]
    return {render.local_part(name) for name in names}


def _sync_lists(cfg: HostConfig, db: sqlite3.Connection, domain: str, document: contract.Document) -> None:
    """mlmmj lists of the domain: the applied ones are those the database routes to mlmmj."""
    applied_lists = {
        transport.split("/", 1)[1]
        for (transport,) in db.execute("SELECT transport FROM transports WHERE domain = ?", (domain,))
        if transport.startswith("mlmmj:")
    }
    if lists.available() and (applied_lists or cfg.mlmmj_root.exists()):
        host = lists.ListHost(cfg.mlmmj_root, cfg.smtp_port)
        wanted: list[contract.MailingList] = [] if document["state"] == "absent" or contract.is_alias(document) \
            else document.get("lists", [])
        aliases = lists.alias_names(db, domain) if wanted else []
        for document_list in wanted:
            if document_list.get("name") in applied_lists:
                lists.ensure_list(host, domain, document_list, aliases)
                list_members.sync_members(host, db, domain, document_list)
        lists.remove_unlisted(host, db, domain, applied_lists)
