"""Copy a moving domain's mail to its new host with Dovecot's own dsync (runs on the OLD host).

The panel asks for it once the new host has confirmed the domain (so the new host knows every
mailbox). Under the domain's lock (no apply of the domain meanwhile):

1. `doveadm sync -u ADDRESS tcp:NEW:PORT` for every mailbox, while the domain still takes mail
   here: two-way, so every message, folder and flag of this side goes to the new host and what
   the new host already holds (mail delivered there first) is kept; dsync renumbers messages
   delivered on both sides meanwhile. When both sides created INBOX on their own (different
   GUIDs) a two-way sync never converges ("Remote lost mailbox GUID", exit 2 at every run): then
   one-way (`-1`: this side's mail copied over, the new host's kept), this side being about to go.
2. Hold: this host's Postfix answers 4xx (never 5xx) to the domain's recipients (table `moving`,
   read by `check_recipient_access`), and we wait until its queue holds no mail for the domain,
   so nothing more is delivered into these maildirs.
3. A final sync copies what arrived meanwhile.

The maildirs stay here: they go when the panel, told the copy is done, sends the "absent"
document (whose apply also drops the hold). A failure drops the hold (mail is delivered here
again) and is reported; a retry runs the whole copy again, and dsync copies nothing twice.

Plain Python: no Django.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from mailhost import contract, maps, render

DOVEADM = "/usr/bin/doveadm"
POSTQUEUE = "/usr/sbin/postqueue"

# The hold: one row per domain being handed over. Created by the stack and the agent (idempotent).
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS moving ("
    " domain TEXT PRIMARY KEY,"  # IDNA (ASCII) form
    " reply  TEXT NOT NULL"  # Postfix access action, a 4xx reply
    ") WITHOUT ROWID"
)
# Postfix `check_recipient_access` looks up 'user@domain', then 'domain': the domain's row answers.
POSTFIX_QUERY = "SELECT reply FROM moving WHERE domain='%s'"
HOLD_REPLY = "450 4.2.1 This domain is moving to another server, try again later"

TARGET = re.compile(r"\Atcp:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?:[0-9]{1,5}\Z")
SYNC_TIMEOUT = 3600.0  # one mailbox
DESYNC, DESYNC_RETRIES = 2, 3  # doveadm's exit code asking for another run; runs per mode at most
QUEUE_TIMEOUT = 60.0  # the domain's mail already accepted by Postfix, delivered here


class MigrateError(RuntimeError):
    """The copy failed; the message says why (reported to the panel)."""


@dataclass
class Copied:
    domain: str
    copied: list[str] = field(default_factory=list)  # synced to the new host
    skipped: list[str] = field(default_factory=list)  # not on this host: nothing to copy
    seconds: float = 0.0


def create_schema(db: sqlite3.Connection) -> None:
    db.execute(SCHEMA)


def hold(db: sqlite3.Connection, domain: str) -> None:
    """From now on this host defers (4xx) mail for `domain` at RCPT TO."""
    create_schema(db)
    db.execute("INSERT OR REPLACE INTO moving(domain, reply) VALUES (?, ?)", (domain, HOLD_REPLY))


def release(db: sqlite3.Connection, domain: str) -> None:
    create_schema(db)
    db.execute("DELETE FROM moving WHERE domain = ?", (domain,))


def held(db: sqlite3.Connection, domain: str) -> bool:
    create_schema(db)
    return db.execute("SELECT 1 FROM moving WHERE domain = ?", (domain,)).fetchone() is not None


def dsync(address: str, target: str, dovecot_conf: Path | None) -> None:
    """Copy one mailbox to the same mailbox behind `target` (tcp:HOST:PORT); keep what is there."""
    config = ["-c", str(dovecot_conf)] if dovecot_conf else []
    for mode in ([], ["-1"]):  # two-way; one-way when two-way cannot converge (see above)
        for _attempt in range(DESYNC_RETRIES):
            try:
                proc = subprocess.run(  # noqa: S603 - fixed program; address from the maps, target checked
                    [DOVEADM, *config, "sync", *mode, "-u", address, target],
                    stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=SYNC_TIMEOUT, check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as error:
                raise MigrateError(f"doveadm sync of {address}: {error}") from error
            # 2: "Mailbox changes caused a desync, run dsync again".
            if proc.returncode != DESYNC:
                break
        if proc.returncode != DESYNC:
            break
    if proc.returncode != 0:
        output = " ".join((proc.stderr + proc.stdout).split())[-1000:]
        raise MigrateError(f"doveadm sync of {address} to {target} exited with {proc.returncode}: {output}")


def queued_for(postfix_dir: Path, domain: str) -> int:
    """How many recipients of `domain` wait in this host's Postfix queue."""
    proc = subprocess.run(  # noqa: S603 - fixed program, the host's own config directory
        [POSTQUEUE, "-c", str(postfix_dir), "-j"], capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        raise MigrateError(f"postqueue -j exited with {proc.returncode}: {proc.stderr.strip()[-500:]}")
    suffix = "@" + domain
    count = 0
    for line in proc.stdout.splitlines():
        for recipient in json.loads(line).get("recipients", []):
            if str(recipient.get("address", "")).lower().endswith(suffix):
                count += 1
    return count


def wait_queue_empty(postfix_dir: Path | None, domain: str, timeout: float = QUEUE_TIMEOUT) -> None:
    if postfix_dir is None:
        return
    deadline = time.monotonic() + timeout
    while (left := queued_for(postfix_dir, domain)) > 0:
        if time.monotonic() > deadline:
            raise MigrateError(f"{left} message(s) for {domain} still in Postfix's queue after {timeout:.0f} s")
        time.sleep(0.2)


def migrate(request: contract.CopyRequest, *, maps_db: Path, vmail_root: Path, postfix_dir: Path | None,
            dovecot_conf: Path | None) -> Copied:
    """Copy the mailboxes of `request["domain"]` to `request["target"]` (steps in the module's
    docstring). The caller checked the request against the contract and holds the domain's lock."""
    t0 = time.monotonic()
    domain = render.domain_name(request["domain"])
    target = request["target"]
    if not TARGET.match(target):
        raise MigrateError(f"invalid doveadm target: {target!r}")
    wanted = {address.lower() for address in request["mailboxes"]}
    db = maps.connect(maps_db)
    try:
        here = dict(db.execute("SELECT email, active FROM mailboxes WHERE domain = ?", (domain,)))
        disabled = sorted(e for e in wanted if here.get(e) == 0 and _has_mail(vmail_root, domain, e))
        if disabled:
            # Dovecot cannot open a disabled mailbox: its mail would stay behind and be removed.
            raise MigrateError("disabled mailboxes cannot be copied (enable or delete them): " + ", ".join(disabled))
        result = Copied(domain, copied=sorted(e for e in wanted if here.get(e) == 1),
                        skipped=sorted(e for e in wanted if e not in here))
        for address in result.copied:
            dsync(address, target, dovecot_conf)
        hold(db, domain)
        try:
            wait_queue_empty(postfix_dir, domain)
            for address in result.copied:
                dsync(address, target, dovecot_conf)
        except BaseException:
            release(db, domain)
            raise
    finally:
        db.close()
    result.seconds = round(time.monotonic() - t0, 3)
    return result


def _has_mail(vmail_root: Path, domain: str, address: str) -> bool:
    return (vmail_root / domain / render.local_part(address.rsplit("@", 1)[0]) / "Maildir").is_dir()
