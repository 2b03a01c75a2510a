"""The agent tells the panel the real reason an apply failed (issue 15, item 11): a full disk, a
read-only or forbidden maps database, a lock held by another process; never the error of its own
ROLLBACK ("cannot rollback - no transaction is active", which SQLite answers when it has already
ended the transaction itself on a full disk).

Through the real components: the agent's task (`mailhost.agent.apply_document`) runs in its own
process, as on a mail host, on a root whose maps database lives on a small tmpfs mounted for the
test and filled up; its report travels through a real embedded broker file, read back here as the
panel's worker would receive it. Needs root (mount); skipped without it.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailhost import broker, contract, maps
from tests.test_apply import document, mailbox, vacation

PROJECT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")

# The agent's process: one long-lived worker applies the documents it is given one after the
# other (its folders and schema prepared at the first, as a real worker's are).
RUN_AGENT = """
import sys
from mailhost import agent
for line in sys.stdin:
    agent.apply_document(open(line.strip()).read())
    print("done", flush=True)
"""


def mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)], check=True)


def unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def fill(folder: Path) -> None:
    """Write a file in `folder` until its file system has no byte left."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass
    try:
        while True:
            os.write(fd, b"\0")
    except OSError:
        pass
    finally:
        os.close(fd)


class Host:
    """A mail host's root for the agent process, and the broker file its reports go to."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.broker_file = root.parent / "broker" / broker.FILE_NAME
        self.broker_file.parent.mkdir(exist_ok=True)
        self.process: subprocess.Popen[str] | None = None

    @property
    def maps_db(self) -> Path:
        return self.root / "db" / "maps.sqlite"

    def start(self, *, bound_by_permissions: bool = False) -> None:
        """Start the agent's process; `bound_by_permissions`: root without the capabilities that
        override file permissions (as a mail host's agent user: what it may not write, it cannot).
        Still root, so it reads the project and its virtualenv wherever the checkout is (a private
        folder in a fresh clone: another user could not even import the agent)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILHOST_", "DJANGO_"))}
        env.update(MAILHOST_NAME="t", MAILHOST_ROOT=str(self.root),
                   MAILHOST_BROKER_URL=broker.url_for(self.broker_file), PYTHONPATH=str(PROJECT))
        argv = [sys.executable, "-c", RUN_AGENT]
        if bound_by_permissions:
            argv = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", *argv]
        with (self.root.parent / "agent.log").open("a") as log:
            self.process = subprocess.Popen(argv, cwd=PROJECT, env=env, stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=log, text=True)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def apply(self, doc: dict[str, Any]) -> None:
        """The agent's apply task on `doc`, in the agent's process."""
        packed = self.root.parent / f"doc-{doc['revision']}.txt"
        packed.write_text(contract.pack(doc))
        packed.chmod(0o644)
        assert self.process is not None and self.process.stdin and self.process.stdout
        self.process.stdin.write(f"{packed}\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "done", (self.root.parent / "agent.log").read_text()

    def reports(self) -> list[dict[str, Any]]:
        """The reports the agent sent the panel (the kwargs of each task on the panel's queue)."""
        db = sqlite3.connect(self.broker_file)
        try:
            payloads = db.execute(
                "SELECT m.payload FROM kombu_message m JOIN kombu_queue q ON q.id = m.queue_id "
                "WHERE q.name = ? ORDER BY m.id", (contract.PANEL_QUEUE,)).fetchall()
        finally:
            db.close()
        found = []
        for (payload,) in payloads:
            message = json.loads(payload)
            _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            if message["headers"]["task"] == contract.REPORT:
                found.append(kwargs)
        return found

    def last_error(self, doc: dict[str, Any]) -> str:
        self.apply(doc)
        report = self.reports()[-1]
        assert report["domain"] == doc["domain"] and report["revision"] == doc["revision"], report
        return str(report.get("error", ""))


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    tmp_path.chmod(0o755)
    root = tmp_path / "root"
    mount_tmpfs(root / "db", "2m")
    host = Host(root)
    try:
        maps.create(root / "db" / "maps.sqlite")
        host.start()
        yield host
    finally:
        host.stop()
        for folder in (root / "vmail", root / "db"):
            unmount(folder)


def reader(path: Path) -> sqlite3.Connection:
    """A connection that stays open, as Postfix's proxymap and Dovecot keep theirs: the WAL and its
    index stay on the disk between two applies."""
    db = sqlite3.connect(path)
    db.execute("SELECT count(*) FROM domains").fetchall()
    return db


def many(count: int) -> list[dict[str, Any]]:
    return [mailbox(f"m{i:05d}") for i in range(count)]


def test_full_disk_under_the_maps_database_is_reported_as_such(host: Host) -> None:
    postfix = reader(host.maps_db)
    try:
        assert host.last_error(document(revision=1, mailboxes=[mailbox("a")])) == ""
        fill(host.maps_db.parent)
        error = host.last_error(document(revision=2, mailboxes=many(3000)))
    finally:
        postfix.close()
    assert "database or disk is full" in error, error
    assert "rollback" not in error
    (host.maps_db.parent / "filler").unlink()
    db = sqlite3.connect(host.maps_db)
    try:  # nothing half-done: the old domain whole
        assert db.execute("SELECT revision FROM domains").fetchall() == [(1,)]
        assert db.execute("SELECT count(*) FROM mailboxes").fetchone() == (1,)
    finally:
        db.close()
    assert host.last_error(document(revision=2, mailboxes=many(3000))) == ""  # room again: it applies


def test_an_agent_started_on_a_full_disk_reports_it(host: Host) -> None:
    """Its first task prepares the folders and the schema, on a full disk too: that error is
    reported like any other (before, the task died there and the panel was told nothing)."""
    postfix = reader(host.maps_db)
    try:
        assert host.last_error(document(revision=1, mailboxes=[mailbox("a")])) == ""
        fill(host.maps_db.parent)
        host.stop()
        host.start()
        error = host.last_error(document(revision=2, mailboxes=many(100)))
    finally:
        postfix.close()
    assert "database or disk is full" in error, error


def test_full_disk_under_the_maildirs_is_reported_as_such(host: Host) -> None:
    mount_tmpfs(host.root / "vmail", "256k")
    fill(host.root / "vmail")
    error = host.last_error(document(revision=1, mailboxes=[mailbox("a", vacation=vacation())]))
    assert "No space left on device" in error and "rollback" not in error, error


def test_a_maps_database_the_agent_may_not_write_is_reported_as_such(host: Host) -> None:
    assert host.last_error(document(revision=1, mailboxes=[mailbox("a")])) == ""
    host.stop()
    host.start(bound_by_permissions=True)
    nobody = pwd.getpwnam("nobody")
    for path in [host.maps_db.parent, *host.maps_db.parent.iterdir()]:  # the database may not be written
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
        path.chmod(0o755 if path.is_dir() else 0o644)
    # The homes (root's) may be made, and its reports sent (the broker file is root's).
    error = host.last_error(document(revision=2, mailboxes=many(10)))
    assert "readonly database" in error and "rollback" not in error, error


def test_a_maps_database_locked_by_another_process_is_reported_as_such(host: Host) -> None:
    assert host.last_error(document(revision=1, mailboxes=[mailbox("a")])) == ""
    holder = subprocess.Popen(  # another process holds the write lock (longer than the agent waits)
        [sys.executable, "-c", "import sqlite3, sys, time\n"
         "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
         "db.execute('BEGIN IMMEDIATE'); print('held', flush=True); time.sleep(120)", str(host.maps_db)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        error = host.last_error(document(revision=2, mailboxes=many(10)))
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert "database is locked" in error and "rollback" not in error, error
    assert waited >= 25  # it waited for the lock (maps.connect's busy timeout) before giving up
