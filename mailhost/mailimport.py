"""Bring an old server's Maildir++ (vpopmail, QmailAdmin, Courier-IMAP or Dovecot) into mailboxes
this host already has, through Doveadm (runs on the NEW host, where the old tree was copied).

For each mailbox of the request, on its own (one bad mailbox never stops the others; a few at a
time):

1. The mailbox must be one of this host's (the maps database, active), and the old Maildir must
   lie under the import root (MAILHOST_IMPORT_ROOT, by default the agent's ROOT/old) once every
   symlink is resolved: a path, or a symlink, leading anywhere else is refused.
2. The old tree is never written to. Each message not brought in before is copied into a staging
   Maildir++ of ours (ROOT/import/...), its name (hence its flags, `:2,FRST` and `D`, and an old
   Dovecot's keywords a-z with its `dovecot-keywords`) and its mtime (Dovecot's received date,
   IMAP INTERNALDATE) kept; symlinked files and folders are skipped. Dovecot may write what it
   likes there (dovecot-uidlist, indexes, new/ to cur/); the stage is removed after the run.
3. `doveadm import -u ADDRESS maildir:STAGE "" all` saves them into the mailbox: every folder
   (Maildir++ `.A.B` is IMAP A/B with this host's separator), every byte, the flags, the received
   date, and the message's GUID: the old file's base name. It only adds: mail delivered to the
   new mailbox meanwhile is never touched (`doveadm backup` would delete it; `doveadm sync -1`
   renumbers messages once both sides have new mail, so clients fetch them again).
4. What was brought in is recorded (ROOT/import/DOMAIN/LOCAL/imported: folder and base name a
   line), and before staging, when an old message is not in the record and the mailbox has a
   home (mail under `~`), what the mailbox holds is asked too (`doveadm fetch` of each message's
   folder and GUID), so a second run copies nothing, a run after new mail reached the old Maildir
   copies only that, and a run after a crash between the import and the record does not copy
   twice. A message deleted on the new host after its import does not come back.
5. The old server's subscriptions (Courier's `courierimapsubscribed`, `INBOX.A.B`; Dovecot's
   `subscriptions`) are subscribed here, for the folders the old Maildir has.

POP3 UIDLs: qmail-pop3d's UIDL was the message file's base name, which the imported file keeps
as its name (and GUID). Dovecot's POP3 answers with `pop3_uidl_format`, one setting for the whole
host: with `%f` (the file name) it gives every imported message exactly its old UIDL (tried on
the test stack), so POP3 clients that leave mail on the server do not fetch it again; with the
default (UID and UIDVALIDITY, the test stack's) they fetch it once more after the switch. Set it
on a host before its first POP3 user: changing it later changes every UIDL of the host once.

Plain Python: no Django.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import os
import secrets
import shutil
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from mailhost import contract, maps, render
from mailhost.apply import mail_owner

DOVEADM = "/usr/bin/doveadm"
DOVECONF = "/usr/bin/doveconf"
IMPORT_TIMEOUT = 3600.0  # one mailbox
CONCURRENCY = 4  # mailboxes imported at once
COPY_CHUNK = 1 << 20
RECORD = "imported"  # under the mailbox's work folder: "folder<TAB>base name" a line
COURIER_SUBSCRIPTIONS = "courierimapsubscribed"
DOVECOT_SUBSCRIPTIONS = "subscriptions"
KEYWORDS = "dovecot-keywords"  # an old Dovecot's keyword names for the letters a-z of the file names


class ImportError_(RuntimeError):  # noqa: N801 - ImportError is Python's own
    """One mailbox's import failed; the message says why (reported to the panel)."""


@dataclass
class ImportConfig:
    maps_db: Path
    work_root: Path  # ROOT/import: staging Maildirs and the records of what came in
    source_root: Path | None  # MAILHOST_IMPORT_ROOT (ROOT/old): where old trees may be read; None: nowhere
    dovecot_conf: Path | None = None
    mail_user: str = "mail"
    concurrency: int = CONCURRENCY


@dataclass
class Folder:
    """One folder of an old Maildir++: its Maildir++ name ("INBOX", or "A.B" for `.A.B`)."""

    name: str
    path: Path

    def imap_name(self, separator: str) -> str:
        """As this host's IMAP and doveadm name it: levels joined by `separator`, in UTF-8."""
        return "INBOX" if self.name == "INBOX" else separator.join(map(decode_mutf7, self.name.split(".")))


def decode_mutf7(name: str) -> str:
    """A folder name of Maildir++ (IMAP's modified UTF-7, RFC 3501: "Re&AOc-us") in Unicode; a
    name that is not valid modified UTF-7 is kept as it is."""
    if "&" not in name:
        return name
    out, rest = [], name
    while "&" in rest:
        head, _amp, tail = rest.partition("&")
        encoded, dash, rest = tail.partition("-")
        if not dash:
            return name
        out.append(head)
        if not encoded:
            out.append("&")
            continue
        data = encoded.replace(",", "/")
        try:
            out.append(base64.b64decode(data + "=" * (-len(data) % 4), validate=True).decode("utf-16-be"))
        except (binascii.Error, UnicodeDecodeError):
            return name
    return "".join(out) + rest


@dataclass
class Staged:
    keys: set[tuple[str, str]] = field(default_factory=set)  # (host folder name, base name)
    skipped: set[tuple[str, str]] = field(default_factory=set)  # brought in before (recorded or in the mailbox)

    @property
    def present(self) -> int:
        return len(self.skipped)


def base_name(file_name: str) -> str:
    """The Maildir file name without its info (`:2,FS`): qmail's unique name, Dovecot's GUID."""
    return file_name.split(":", 1)[0]


def _doveadm(cfg: ImportConfig, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    config = ["-c", str(cfg.dovecot_conf)] if cfg.dovecot_conf else []
    try:
        return subprocess.run(  # noqa: S603 - fixed program; the address from the maps, paths our own
            [DOVEADM, *config, *args], input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True, text=True, timeout=IMPORT_TIMEOUT, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ImportError_(f"doveadm {args[0]}: {error}") from error


def _failed(proc: subprocess.CompletedProcess[str], what: str) -> ImportError_:
    output = " ".join((proc.stderr + proc.stdout).split())[-1000:]
    return ImportError_(f"{what} exited with {proc.returncode}: {output}")


def _doveconf(cfg: ImportConfig, setting: str) -> str:
    """One setting of this host's Dovecot ('' when doveconf cannot say)."""
    config = ["-c", str(cfg.dovecot_conf)] if cfg.dovecot_conf else []
    try:
        proc = subprocess.run(  # noqa: S603 - fixed program
            [DOVECONF, *config, "-h", setting], capture_output=True, text=True, timeout=60, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def host_separator(cfg: ImportConfig) -> str:
    """The hierarchy separator of this host's inbox namespace; Maildir++'s "." when none is set."""
    value = _doveconf(cfg, "namespace/inbox/separator")
    return value if len(value) == 1 else "."


def mail_in_home(cfg: ImportConfig) -> bool:
    """Whether this host keeps a mailbox's mail under its home (`mail_location = maildir:~/...`, the
    stack's): then a mailbox whose home does not exist holds no mail, and Dovecot need not be asked."""
    return _doveconf(cfg, "mail_location").startswith(("maildir:~/", "maildir:%h/"))


def source_maildir(cfg: ImportConfig, path: str) -> Path:
    """The old Maildir at `path`, symlinks resolved, when it lies under the import root."""
    if cfg.source_root is None:
        raise ImportError_("this host has no import root (MAILHOST_IMPORT_ROOT): no old Maildir may be read")
    if not path.startswith("/") or "\0" in path:
        raise ImportError_(f"not an absolute path: {path!r}")
    root = cfg.source_root.resolve()
    try:
        real = Path(path).resolve(strict=True)
    except (OSError, RuntimeError) as error:
        raise ImportError_(f"old Maildir {path}: {error}") from error
    if real != root and root not in real.parents:
        raise ImportError_(f"old Maildir {path} leads to {real}, outside the import root {root}: refused")
    if not real.is_dir() or not ((real / "cur").is_dir() or (real / "new").is_dir()):
        raise ImportError_(f"old Maildir {path}: not a Maildir (no cur/ nor new/)")
    return real


def folders(maildir: Path) -> list[Folder]:
    """INBOX, then every Maildir++ folder (`.A.B`) of `maildir`, by name; symlinked ones skipped."""
    found = [Folder("INBOX", maildir)]
    with os.scandir(maildir) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            name = entry.name
            if (not name.startswith(".") or name in (".", "..") or name.strip(".") == ""
                    or not entry.is_dir(follow_symlinks=False)):
                continue
            path = Path(entry.path)
            if (path / "cur").is_dir() or (path / "new").is_dir():
                found.append(Folder(name[1:], path))
    return found


def messages(folder: Folder) -> Iterator[tuple[str, Path]]:
    """(sub-folder "cur" or "new", file) of each regular file of the folder (symlinks skipped)."""
    for sub in ("new", "cur"):
        directory = folder.path / sub
        if directory.is_symlink() or not directory.is_dir():
            continue
        with os.scandir(directory) as entries:
            for entry in entries:
                if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
                    yield sub, Path(entry.path)


def copy_message(source: Path, target: Path, owner: tuple[int, int] | None) -> None:
    """Copy one message file, never following a symlink, its mtime (the received date) kept."""
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ImportError_(f"{source}: not a regular file")
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            while chunk := os.read(fd, COPY_CHUNK):
                os.write(out, chunk)
            if owner is not None:
                os.fchown(out, *owner)
        finally:
            os.close(out)
    finally:
        os.close(fd)
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns), follow_symlinks=False)


def _mkdir(path: Path, owner: tuple[int, int] | None) -> None:
    path.mkdir(mode=0o700, parents=False, exist_ok=True)
    if owner is not None:
        os.chown(path, *owner)


def read_record(path: Path) -> set[tuple[str, str]]:
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return set()
    keys = set()
    for line in text.splitlines():
        folder, _tab, base = line.partition("\t")
        if base:
            keys.add((folder, base))
    return keys


def append_record(path: Path, keys: Iterable[tuple[str, str]]) -> None:
    lines = "".join(f"{folder}\t{base}\n" for folder, base in sorted(keys))
    if lines:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        with open(fd, "a", encoding="utf-8", errors="surrogateescape") as out:
            out.write(lines)
            out.flush()
            os.fsync(out.fileno())


def held(cfg: ImportConfig, address: str) -> set[tuple[str, str]]:
    """(folder, GUID) of every message the mailbox holds now."""
    proc = _doveadm(cfg, "-f", "tab", "fetch", "-u", address, "mailbox guid", "all")
    if proc.returncode != 0:
        raise _failed(proc, f"doveadm fetch of {address}")
    keys = set()
    for line in proc.stdout.splitlines()[1:]:  # the first line names the fields
        folder, _tab, guid = line.partition("\t")
        if guid:
            keys.add((folder, guid))
    return keys


def read_subscriptions(maildir: Path, separator: str) -> list[str]:
    """The folders the old server had subscribed, as this host names them: Courier's
    `courierimapsubscribed` ("INBOX.A.B" a line) and Dovecot's `subscriptions` (its version 2
    file: a tab between levels; version 1: the names as the old namespace wrote them, ".")."""
    names: list[str] = []
    for file_name in (COURIER_SUBSCRIPTIONS, DOVECOT_SUBSCRIPTIONS):
        path = maildir / file_name
        if path.is_symlink() or not path.is_file():
            continue
        lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
        if lines and lines[0].startswith("V\t"):
            levels = [line.split("\t") for line in lines[1:] if line]
        else:
            levels = [line.split(".") for line in lines if line]
        for parts in levels:
            if parts and parts[0].upper() == "INBOX" and len(parts) > 1:
                parts = parts[1:]  # Courier's (and Dovecot's, with an INBOX. prefix) namespace
            name = separator.join(map(decode_mutf7, parts))
            if name and name not in names:
                names.append(name)
    return names


def old_keys(found: list[Folder], separator: str) -> set[tuple[str, str]]:
    """(host folder name, base name) of every message of the old Maildir's folders `found`."""
    return {(folder.imap_name(separator), base_name(source.name))
            for folder in found for _sub, source in messages(folder)}


def stage(maildir: Path, found: list[Folder], separator: str, stage_root: Path, skip: set[tuple[str, str]],
          owner: tuple[int, int] | None) -> Staged:
    """Copy into the staging Maildir++ `stage_root` every message of the old Maildir whose
    (folder, base name) is not in `skip`; return what was staged, and how many were skipped."""
    staged = Staged()
    _mkdir(stage_root, owner)
    for folder in found:
        name = folder.imap_name(separator)
        target = stage_root if folder.name == "INBOX" else stage_root / ("." + folder.name)
        made = False
        for sub, source in messages(folder):
            key = (name, base_name(source.name))
            if key in skip:
                staged.skipped.add(key)
                continue
            if key in staged.keys:
                continue  # the same message in new/ and cur/ (a rename caught half-way): once
            if not made:
                if target != stage_root:
                    _mkdir(target, owner)
                for part in ("cur", "new", "tmp"):
                    _mkdir(target / part, owner)
                keywords = folder.path / KEYWORDS
                if keywords.is_file() and not keywords.is_symlink():  # an old Dovecot's: flag letters a-z
                    copy_message(keywords, target / KEYWORDS, owner)
                made = True
            copy_message(source, target / sub / source.name, owner)
            staged.keys.add(key)
    return staged


def import_mailbox(cfg: ImportConfig, domain: str, address: str, path: str, separator: str,
                   in_home: bool = False) -> contract.MailboxImported:
    """Bring one old Maildir into one mailbox (the module's steps); errors reported, never raised."""
    result: contract.MailboxImported = {"address": address, "copied": 0, "present": 0, "folders": []}
    stage_root: Path | None = None
    try:
        local = render.local_part(address.rsplit("@", 1)[0])
        home = _mailbox_here(cfg, domain, address)
        maildir = source_maildir(cfg, path)
        found = folders(maildir)
        result["folders"] = [folder.imap_name(separator) for folder in found]
        owner = mail_owner(cfg.mail_user)
        work = cfg.work_root / domain / local
        for directory in (cfg.work_root / domain, work):  # Dovecot (user mail) passes through to the stage
            directory.mkdir(mode=0o711, exist_ok=True)
        with open(os.open(work / "lock", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one import of a mailbox at a time (a redelivered request)
            for stale in work.glob("stage-*"):  # left by a run that was killed
                shutil.rmtree(stale, ignore_errors=True)
            record = work / RECORD
            recorded = read_record(record)
            old = old_keys(found, separator)
            # Dovecot is asked what the mailbox holds only when some old message is not recorded
            # (a run after a crash between the copy and the record), and only when the mailbox
            # may hold mail: one doveadm process less a mailbox, both on a first run (no home yet)
            # and on a run with nothing new (everything recorded). Measured: bench/vpopmail_bench.py.
            ask = bool(old - recorded) and not (in_home and not os.path.lexists(home))
            stage_root = work / f"stage-{secrets.token_hex(6)}"
            staged = stage(maildir, found, separator, stage_root, recorded | (held(cfg, address) if ask else set()),
                           owner)
            result["present"] = staged.present
            # Found in the mailbox but not recorded (a crash after the copy): recorded now, so
            # that deleting it on this host later does not bring it back.
            append_record(record, staged.skipped - recorded)
            if staged.keys:
                proc = _doveadm(cfg, "import", "-u", address, f"maildir:{stage_root}", "", "all")
                if proc.returncode != 0:
                    failure = _failed(proc, f"doveadm import into {address}")
                    try:  # what came in before the failure, recorded; doveadm's error is the one reported
                        came = staged.keys & held(cfg, address)
                    except ImportError_:
                        raise failure from None
                    append_record(record, came)
                    result["copied"] = len(came)
                    raise failure
                append_record(record, staged.keys)
                result["copied"] = len(staged.keys)
        names = set(result["folders"])
        wanted = [name for name in read_subscriptions(maildir, separator) if name in names]
        if wanted:
            proc = _doveadm(cfg, "mailbox", "subscribe", "-u", address, *wanted)
            if proc.returncode != 0:
                raise _failed(proc, f"doveadm mailbox subscribe of {address}")
            result["subscribed"] = wanted
    except (ImportError_, render.RenderError, OSError, ValueError, KeyError) as error:
        text = str(error) if isinstance(error, ImportError_) else f"{type(error).__name__}: {error}"
        result["error"] = text[:2000]
    finally:
        if stage_root is not None:
            shutil.rmtree(stage_root, ignore_errors=True)
    return result


def _mailbox_here(cfg: ImportConfig, domain: str, address: str) -> str:
    """The mailbox's home, when it is one of this host's and enabled."""
    if not address.endswith("@" + domain):
        raise ImportError_(f"{address} is not an address of {domain}")
    db = maps.connect(cfg.maps_db)
    try:
        row = db.execute("SELECT active, home FROM mailboxes WHERE email = ? AND domain = ?",
                         (address, domain)).fetchone()
    except sqlite3.Error as error:
        raise ImportError_(f"the maps database: {error}") from error
    finally:
        db.close()
    if row is None:
        raise ImportError_(f"{address} is not a mailbox of this host (not applied here yet, or removed)")
    if row[0] != 1:
        raise ImportError_(f"{address} is disabled: Dovecot cannot open it (enable it, then import again)")
    return str(row[1])


def import_mail(request: object, cfg: ImportConfig, host: str) -> contract.MailImported:
    """Run an import request (its shape checked here first) and say what came of each mailbox."""
    started = time.monotonic()
    raw_id = request.get("id") if isinstance(request, dict) else None
    raw_domain = request.get("domain") if isinstance(request, dict) else None
    try:
        checked = contract.check(request, contract.MailImportRequest)
        domain = render.domain_name(checked["domain"])
    except (contract.DocumentError, render.RenderError) as error:
        return {"host": host, "id": raw_id, "domain": str(raw_domain), "mailboxes": [],
                "error": f"refused: {error}"[:2000]}
    separator = host_separator(cfg)
    in_home = mail_in_home(cfg)
    cfg.work_root.mkdir(mode=0o711, parents=True, exist_ok=True)
    pairs = [(source["address"].lower(), source["path"]) for source in checked["mailboxes"]]
    with ThreadPoolExecutor(max_workers=max(1, cfg.concurrency)) as pool:
        done = list(pool.map(lambda pair: import_mailbox(cfg, domain, pair[0], pair[1], separator, in_home),
                              pairs))
    return {"host": host, "id": checked["id"], "domain": domain, "mailboxes": done,
            "seconds": round(time.monotonic() - started, 3)}
