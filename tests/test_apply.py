"""mailhost/apply.py on a temporary root: the rows a document writes, revisions (idempotent, out of
order, absent/present), what happens to maildirs and Sieve files, and atomicity when the apply
crashes in the middle (in-process, and a real `kill -9` of a subprocess).

No Django, no database server, no Postfix (postfix_dir=None): plain files under tmp_path.
The tests at the end pin bugs these tests found, fixed since (redelivery, symlinks, parallel
applies, list addresses).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mailhost import apply as agent_apply
from mailhost import contract, maps, render
from mailhost.apply import SIEVE_DIR, HostConfig, apply
from mailhost.contract import DocumentError
from mailhost.render import DISCARD_ADDRESS, RenderError

PROJECT = Path(__file__).resolve().parent.parent
HASH = "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA"
D = "example.test"
OTHER = "other.test"
TABLES = ("meta", "domains", "mailboxes", "aliases", "transports")


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def cfg(tmp_path: Path) -> HostConfig:
    config = HostConfig(name="t", root=tmp_path)
    (tmp_path / "db").mkdir()
    maps.create(config.maps_db)
    return config


def mailbox(local: str, **changes: Any) -> dict[str, Any]:
    m = {
        "local_part": local, "password_hash": HASH, "quota_bytes": 0, "active": True, "allow_pop3": True,
        "allow_imap": True, "allow_smtp": True, "routing": "standard", "forward_to": [], "keep_copy": False,
        "vacation": None,
    }
    m.update(changes)
    return m


def vacation(message: str = "back on monday", **changes: Any) -> dict[str, Any]:
    return {"subject": "away", "message": message, "days": 7, "start": None, "end": None, **changes}


def document(domain: str = D, revision: int = 1, state: str = "present", **parts: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"format": contract.FORMAT, "domain": domain, "revision": revision, "state": state}
    if state == "present":
        doc.update({"mailboxes": [], "forwards": [], "robots": [], "lists": [],
                    "catchall": {"mode": "bounce", "target": ""}})
        doc.update(parts)
    return doc


def dump(cfg: HostConfig) -> dict[str, list[tuple[Any, ...]]]:
    db = sqlite3.connect(cfg.maps_db)
    try:
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}  # noqa: S608
    finally:
        db.close()


def query(cfg: HostConfig, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(cfg.maps_db)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def domain_rows(cfg: HostConfig, domain: str) -> dict[str, list[tuple[Any, ...]]]:
    return {t: [r for r in rows if len(r) > 1 and r[1] == domain or t == "domains" and r[0] == domain]
            for t, rows in dump(cfg).items() if t != "meta"}


def mailboxes(cfg: HostConfig, domain: str = D) -> dict[str, tuple[Any, ...]]:
    rows = query(cfg, "SELECT email, password_hash, quota_bytes, active, allow_pop3, allow_imap, allow_smtp, "
                      "home, sieve FROM mailboxes WHERE domain = ?", domain)
    return {r[0]: r[1:] for r in rows}


def aliases(cfg: HostConfig, domain: str = D) -> dict[str, str]:
    rows = query(cfg, "SELECT source, destination, active FROM aliases WHERE domain = ?", domain)
    assert all(active == 1 for _, _, active in rows)
    return {source: destination for source, destination, _ in rows}


def home(cfg: HostConfig, local: str, domain: str = D) -> Path:
    return (cfg.vmail_root / domain / local).resolve()


def sieve_of(cfg: HostConfig, local: str, domain: str = D) -> Path | None:
    rows = query(cfg, "SELECT sieve FROM mailboxes WHERE email = ?", f"{local}@{domain}")
    assert rows, f"no row for {local}@{domain}"
    return Path(rows[0][0]) if rows[0][0] else None


def deliver(cfg: HostConfig, local: str, domain: str = D, text: str = "Subject: hi\n\nbody\n") -> Path:
    """A message in the mailbox's maildir, the way Dovecot would store it."""
    folder = cfg.vmail_root / domain / local / "Maildir" / "cur"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "1700000000.M1P1.host:2,S"
    path.write_text(text)
    return path


def tree(path: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry under `path` (not following symlinks): kind, content digest, mtime."""
    out: dict[str, tuple[Any, ...]] = {}
    if not path.exists() and not path.is_symlink():
        return out
    for entry in sorted(path.rglob("*")):
        st = entry.lstat()
        if entry.is_symlink():
            out[str(entry.relative_to(path))] = ("link", os.readlink(entry))
        elif entry.is_dir():
            out[str(entry.relative_to(path))] = ("dir",)
        else:
            out[str(entry.relative_to(path))] = ("file", hashlib.sha256(entry.read_bytes()).hexdigest(), st.st_mtime_ns)
    return out


def scripts_in(cfg: HostConfig, local: str, domain: str = D) -> list[str]:
    folder = cfg.vmail_root / domain / local / SIEVE_DIR
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# --------------------------------------------------------------------------------------------------
# rows
# --------------------------------------------------------------------------------------------------


def full_document(revision: int = 1) -> dict[str, Any]:
    return document(
        revision=revision,
        mailboxes=[
            mailbox("alice", quota_bytes=1024 * 1024, allow_pop3=False),
            mailbox("bob", routing="forward", forward_to=["x@remote.test"], keep_copy=True),
            mailbox("carol", routing="forward", forward_to=["x@remote.test", "y@remote.test"]),
            mailbox("dave", routing="forward", forward_to=["x@remote.test"], vacation=vacation()),
            mailbox("erin", routing="forward", forward_to=["x@remote.test"], active=False),
            mailbox("frank", routing="delete", allow_smtp=False),
        ],
        forwards=[{"local_part": "sales", "destinations": ["alice@example.test", "z@remote.test"]}],
        robots=[{"local_part": "robot", "copy_to": "copy@remote.test", "subject": "auto", "message": "thanks"}],
        lists=[{"name": "news", "owner": "owner@example.test"}],
    )


def test_present_document_writes_the_rows(cfg: HostConfig) -> None:
    doc = full_document()
    outcome = apply(doc, cfg)
    assert (outcome.applied, outcome.reloaded, outcome.removed_homes) == (True, False, [])
    assert query(cfg, "SELECT domain, active, revision FROM domains") == [(D, 1, 1)]

    got = mailboxes(cfg)
    expected = {
        # email: (hash, quota, active, pop3, imap, smtp)
        "alice@example.test": (HASH, 1024 * 1024, 1, 0, 1, 1),
        "bob@example.test": (HASH, 0, 1, 1, 1, 1),
        "carol@example.test": (HASH, 0, 1, 1, 1, 1),
        "dave@example.test": (HASH, 0, 1, 1, 1, 1),
        "erin@example.test": (HASH, 0, 0, 1, 1, 1),  # disabled: active=0
        "frank@example.test": (HASH, 0, 1, 1, 1, 0),
        "robot@example.test": ("!", 0, 1, 0, 0, 0),
    }
    assert {email: row[:6] for email, row in got.items()} == expected
    for email, row in got.items():
        assert row[6] == str(home(cfg, email.split("@")[0]))
    assert aliases(cfg) == {
        "bob@example.test": "x@remote.test,bob@example.test",  # forward + copy: itself too
        "carol@example.test": "x@remote.test,y@remote.test",  # forward only: destinations only
        "dave@example.test": "x@remote.test,dave@example.test",  # forward + vacation: answered here
        "sales@example.test": "alice@example.test,z@remote.test",
        "news@example.test": "news@example.test.mlmmj.invalid",
        **{f"{sub}@example.test": f"news+{command}@example.test.mlmmj.invalid"  # news-subscribe@...
           for sub, command in render.list_sub_addresses("news").items() if command},
        "news-request@example.test": "news-request@example.test.mlmmj.invalid",
    }  # erin (disabled) has no forward row; no catch-all row (bounce)
    assert sorted(query(cfg, "SELECT address, domain, transport FROM transports")) == [
        ("discard.invalid", "", "discard:"),
        ("news-request@example.test.mlmmj.invalid", D, "mlmmjrequest:example.test/news"),
        ("news@example.test.mlmmj.invalid", D, "mlmmj:example.test/news"),
    ]
    # Sieve: only where something is to be done, content exactly as rendered
    by_local = {m["local_part"]: m for m in doc["mailboxes"]}
    for local in ("alice", "bob"):
        assert sieve_of(cfg, local) is None
    for local in ("carol", "dave", "erin", "frank"):
        path = sieve_of(cfg, local)
        assert path is not None and path.read_text() == render.mailbox_sieve(by_local[local], f"{local}@{D}")
    robot = sieve_of(cfg, "robot")
    assert robot is not None and robot.read_text() == render.robot_sieve(doc["robots"][0], f"robot@{D}")
    assert sieve_of(cfg, "frank").read_text() == "discard;\n"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("catchall", "row"),
    [
        ({"mode": "bounce", "target": ""}, None),
        (None, None),
        ({"mode": "delete", "target": ""}, DISCARD_ADDRESS),
        ({"mode": "mailbox", "target": "alice"}, "alice@example.test"),
        ({"mode": "mailbox", "target": "alice@elsewhere.test"}, "alice@elsewhere.test"),
        ({"mode": "remote", "target": "someone@remote.test"}, "someone@remote.test"),
        ({"mode": "domain", "target": "other.test"}, "@other.test"),
    ],
)
def test_catchall_modes(cfg: HostConfig, catchall: dict[str, str] | None, row: str | None) -> None:
    apply(document(mailboxes=[mailbox("alice")], catchall=catchall), cfg)
    got = aliases(cfg)
    if row is None:
        assert got == {}
    else:
        assert got == {"@example.test": row}


@pytest.mark.parametrize(
    "catchall",
    [{"mode": "remote", "target": ""}, {"mode": "domain", "target": "../etc"}, {"mode": "mailbox", "target": "a b"},
     {"mode": "nonsense", "target": ""}],
)
def test_invalid_catchall_is_refused_before_anything_changes(cfg: HostConfig, catchall: dict[str, str]) -> None:
    apply(full_document(), cfg)
    before, files = dump(cfg), tree(cfg.root / "vmail")
    with pytest.raises(RenderError):
        apply(document(revision=2, mailboxes=[mailbox("alice")], catchall=catchall), cfg)
    assert dump(cfg) == before and tree(cfg.root / "vmail") == files


# --------------------------------------------------------------------------------------------------
# revisions
# --------------------------------------------------------------------------------------------------


def test_same_revision_twice_changes_nothing(cfg: HostConfig) -> None:
    assert apply(full_document(), cfg).applied
    before, files = dump(cfg), tree(cfg.root)
    again = apply(full_document(), cfg)
    assert not again.applied
    assert dump(cfg) == before and tree(cfg.root) == files


def test_older_revision_after_newer_changes_nothing(cfg: HostConfig) -> None:
    apply(full_document(revision=5), cfg)
    before, files = dump(cfg), tree(cfg.root)
    older = document(revision=3, mailboxes=[mailbox("zed", vacation=vacation("old"))])
    assert not apply(older, cfg).applied
    same = document(revision=5, mailboxes=[mailbox("zed")])  # same revision, other content: ignored too
    assert not apply(same, cfg).applied
    assert not apply(document(revision=4, state="absent"), cfg).applied
    assert dump(cfg) == before and tree(cfg.root) == files


def test_absent_then_present_again(cfg: HostConfig) -> None:
    apply(full_document(revision=1), cfg)
    apply(document(OTHER, revision=1, mailboxes=[mailbox("alice", vacation=vacation())],
                   catchall={"mode": "delete", "target": ""}), cfg)
    for local in ("alice", "dave"):
        deliver(cfg, local)
    deliver(cfg, "alice", OTHER)
    present_rows = domain_rows(cfg, D)
    other_rows, other_files = domain_rows(cfg, OTHER), tree(cfg.vmail_root / OTHER)

    gone = apply(document(revision=2, state="absent"), cfg)
    assert gone.applied and sorted(gone.removed_homes) == ["alice", "carol", "dave", "erin", "frank", "robot"]
    assert domain_rows(cfg, D) == {"domains": [(D, 0, 2)], "mailboxes": [], "aliases": [], "transports": []}
    assert [p.name for p in (cfg.vmail_root / D).iterdir()] == []  # maildirs and scripts removed
    assert domain_rows(cfg, OTHER) == other_rows and tree(cfg.vmail_root / OTHER) == other_files

    # an older present (delivered late) after the absent: ignored, the tombstone stays
    tombstone = dump(cfg)
    assert not apply(full_document(revision=1), cfg).applied
    assert dump(cfg) == tombstone and [p.name for p in (cfg.vmail_root / D).iterdir()] == []

    back = apply(full_document(revision=3), cfg)
    assert back.applied
    again = domain_rows(cfg, D)
    assert again["domains"] == [(D, 1, 3)]
    assert {k: v for k, v in again.items() if k != "domains"} == {k: v for k, v in present_rows.items()
                                                                  if k != "domains"}
    for local in ("carol", "dave", "erin", "frank", "robot"):
        assert sieve_of(cfg, local).is_file()  # type: ignore[union-attr]
    assert domain_rows(cfg, OTHER) == other_rows and tree(cfg.vmail_root / OTHER) == other_files


def test_invalid_documents_are_refused(cfg: HostConfig) -> None:
    apply(full_document(), cfg)
    before = dump(cfg)
    for doc in (  # refused by the contract's check (shape) or by render (values); the format: test_contract
        {**full_document(2), "revision": -1},
        {**full_document(2), "revision": True},
        {**full_document(2), "revision": "3"},
        {**full_document(2), "state": "gone"},
        {**full_document(2), "domain": "../etc"},
        document(revision=2, mailboxes=[mailbox("alice"), mailbox("alice")]),
        document(revision=2, mailboxes=[mailbox("alice")],
                 forwards=[{"local_part": "alice", "destinations": ["a@b.cd"]}]),
        document(revision=2, mailboxes=[mailbox("a/../b")]),
        document(revision=2, mailboxes=[mailbox("alice", password_hash="plain")]),
        document(revision=2, mailboxes=[mailbox("alice", quota_bytes=-1)]),
    ):
        with pytest.raises(DocumentError):
            apply(doc, cfg)
    assert dump(cfg) == before


# --------------------------------------------------------------------------------------------------
# maildirs: removal, archive, siblings, symlinks
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("removal", ["delete", "archive"])
def test_removed_mailbox_home_is_deleted_or_archived(tmp_path: Path, removal: str) -> None:
    cfg = HostConfig(name="t", root=tmp_path, removal=removal)
    (tmp_path / "db").mkdir()
    maps.create(cfg.maps_db)
    apply(document(revision=1, mailboxes=[mailbox("alice"), mailbox("bob", vacation=vacation())]), cfg)
    apply(document(OTHER, revision=1, mailboxes=[mailbox("bob")]), cfg)
    apply(document("example.test.other", revision=1, mailboxes=[mailbox("bob")]), cfg)
    deliver(cfg, "alice")
    message = deliver(cfg, "bob", text="Subject: keep me\n\nprecious\n")
    for sibling in (OTHER, "example.test.other"):
        deliver(cfg, "bob", sibling)
    (cfg.vmail_root / "example.tes").mkdir()
    deliver(cfg, "bob", "example.tes")  # a directory of no domain at all, prefix of ours
    untouched = {name: tree(cfg.vmail_root / name) for name in (OTHER, "example.test.other", "example.tes")}
    alice = tree(cfg.vmail_root / D / "alice")

    outcome = apply(document(revision=2, mailboxes=[mailbox("alice")]), cfg)
    assert outcome.removed_homes == ["bob"]
    assert not (cfg.vmail_root / D / "bob").exists()
    assert tree(cfg.vmail_root / D / "alice") == alice
    assert {name: tree(cfg.vmail_root / name) for name in untouched} == untouched
    archived = sorted((cfg.archive_root / D).glob("bob.*")) if cfg.archive_root.exists() else []
    if removal == "delete":
        assert archived == [] and not cfg.archive_root.exists()
    else:
        assert len(archived) == 1
        kept = archived[0] / message.relative_to(cfg.vmail_root / D / "bob")
        assert kept.read_text() == "Subject: keep me\n\nprecious\n"
        assert (archived[0] / SIEVE_DIR).is_dir()
    assert mailboxes(cfg, OTHER).keys() == {"bob@other.test"}


@pytest.mark.parametrize("removal", ["delete", "archive"])
def test_symlink_planted_in_the_domain_dir_is_not_followed(tmp_path: Path, removal: str) -> None:
    cfg = HostConfig(name="t", root=tmp_path, removal=removal)
    (tmp_path / "db").mkdir()
    maps.create(cfg.maps_db)
    outside = tmp_path / "outside"
    (outside / "Maildir" / "cur").mkdir(parents=True)
    (outside / "Maildir" / "cur" / "secret").write_text("not yours")
    apply(document(revision=1, mailboxes=[mailbox("alice", vacation=vacation())]), cfg)
    (cfg.vmail_root / D / "evil").symlink_to(outside, target_is_directory=True)
    (cfg.vmail_root / D / "evil-file").symlink_to(outside / "Maildir" / "cur" / "secret")
    before = tree(outside)

    apply(document(revision=2, mailboxes=[mailbox("bob")]), cfg)  # alice removed, evil* not ours
    assert (cfg.vmail_root / D / "evil").is_symlink() and (cfg.vmail_root / D / "evil-file").is_symlink()
    apply(document(revision=3, state="absent"), cfg)
    assert (cfg.vmail_root / D / "evil").is_symlink()
    assert tree(outside) == before
    assert not cfg.archive_root.exists() or not any(p.name.startswith("evil") for p in cfg.archive_root.rglob("*"))


def test_mailbox_home_that_is_a_symlink_outside_is_refused(cfg: HostConfig, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (cfg.vmail_root / D).mkdir(parents=True)
    (cfg.vmail_root / D / "alice").symlink_to(outside, target_is_directory=True)
    before = dump(cfg)
    with pytest.raises(RenderError):
        apply(document(mailboxes=[mailbox("alice", vacation=vacation())]), cfg)
    assert dump(cfg) == before and list(outside.iterdir()) == []


def test_domain_dir_that_is_a_symlink_outside_is_refused(cfg: HostConfig, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "victim").mkdir(parents=True)
    (outside / "victim" / "data").write_text("x")
    cfg.vmail_root.mkdir()
    (cfg.vmail_root / D).symlink_to(outside, target_is_directory=True)
    before, files = dump(cfg), tree(outside)
    with pytest.raises(RenderError):
        apply(document(mailboxes=[mailbox("alice", vacation=vacation())]), cfg)
    assert dump(cfg) == before and tree(outside) == files
    # an absent document does not compute homes; its sweep must still refuse to touch `outside`
    with pytest.raises(RenderError):
        apply(document(revision=2, state="absent"), cfg)
    assert tree(outside) == files


# --------------------------------------------------------------------------------------------------
# Sieve script files
# --------------------------------------------------------------------------------------------------


def test_sieve_script_files_follow_the_rows(cfg: HostConfig) -> None:
    def doc(revision: int, alice: dict[str, Any]) -> dict[str, Any]:
        return document(revision=revision, mailboxes=[alice, mailbox("bob", routing="forward",
                                                                        forward_to=["x@remote.test"])])

    alice = mailbox("alice", vacation=vacation("first"))
    apply(doc(1, alice), cfg)
    first = sieve_of(cfg, "alice")
    assert first is not None and first.is_file()
    assert home(cfg, "alice") in first.parents
    assert first.read_text() == render.mailbox_sieve(alice, "alice@example.test")
    bob = sieve_of(cfg, "bob")
    assert bob is not None and home(cfg, "bob") in bob.parents and bob.read_text() == "discard;\n"
    # Pigeonhole compiles the script next to it (<name>.svbin): it belongs to the script
    svbin = first.with_suffix(".svbin")
    svbin.write_bytes(b"compiled")
    old = time.time() - 86400 * 30
    os.utime(first, (old, old))
    mtime = first.stat().st_mtime_ns

    apply(doc(2, {**alice, "quota_bytes": 10}), cfg)  # script unchanged
    assert sieve_of(cfg, "alice") == first and first.stat().st_mtime_ns == mtime
    assert scripts_in(cfg, "alice") == sorted([first.name, svbin.name])

    changed = {**alice, "vacation": vacation("second")}
    apply(doc(3, changed), cfg)
    second = sieve_of(cfg, "alice")
    assert second is not None and second != first and second.is_file()
    assert second.read_text() == render.mailbox_sieve(changed, "alice@example.test")
    assert not first.exists() and not svbin.exists()
    assert scripts_in(cfg, "alice") == [second.name]
    assert sieve_of(cfg, "bob") == bob and bob.is_file()

    apply(doc(4, mailbox("alice")), cfg)  # no script any more
    assert sieve_of(cfg, "alice") is None and scripts_in(cfg, "alice") == []


# --------------------------------------------------------------------------------------------------
# crash atomicity, in-process
# --------------------------------------------------------------------------------------------------


def die_after_commit(*args: Any, **kwargs: Any) -> list[str]:
    """Stands for the sweep after COMMIT: the worker dies right there."""
    raise Crash


class Crash(BaseException):
    """Stands for the process dying (not an Exception: nothing may swallow it)."""


def _start(cfg: HostConfig) -> tuple[dict[str, list[tuple[Any, ...]]], list[Path]]:
    apply(full_document(revision=1), cfg)
    apply(document(OTHER, revision=1, forwards=[{"local_part": "alias", "destinations": ["a@b.cd"]}]), cfg)
    scripts = [p for p in (sieve_of(cfg, local) for local in ("carol", "dave", "erin", "frank", "robot")) if p]
    return dump(cfg), scripts


def _changed(revision: int = 2) -> dict[str, Any]:
    doc = full_document(revision)
    doc["mailboxes"][3] = mailbox("dave", routing="forward", forward_to=["x@remote.test"], vacation=vacation("new"))
    doc["mailboxes"].append(mailbox("zoe", quota_bytes=5))
    return doc


def _assert_old_state(cfg: HostConfig, before: dict[str, Any], scripts: list[Path]) -> None:
    assert dump(cfg) == before
    assert all(p.is_file() for p in scripts)
    db = maps.connect(cfg.maps_db)  # the write lock was released
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
    finally:
        db.close()


def test_failing_insert_rolls_back_to_the_old_state(cfg: HostConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The transaction's last write (the domain's revision) fails after the domain's mailbox rows
    were really updated (dave) and inserted (zoe) inside it: none of those writes stays."""
    before, scripts = _start(cfg)
    db = maps.connect(cfg.maps_db)
    db.execute(  # a trigger of the test, in the host's own database: refuses revision 2 of the domain
        "CREATE TRIGGER refuse_revision_2 BEFORE UPDATE OF revision ON domains "
        "WHEN NEW.domain = 'example.test' AND NEW.revision = 2 BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    db.close()
    statements: list[str] = []
    real_connect = maps.connect

    def traced(path: str | Path) -> sqlite3.Connection:
        connection = real_connect(path)
        connection.set_trace_callback(statements.append)
        return connection

    monkeypatch.setattr(maps, "connect", traced)
    with pytest.raises(sqlite3.IntegrityError, match="refused"):
        apply(_changed(), cfg)
    monkeypatch.undo()

    _assert_old_state(cfg, before, scripts)
    begin = statements.index("BEGIN IMMEDIATE")  # and the writes did run inside the transaction
    written = [s for s in statements[begin:] if s.startswith(("UPDATE mailboxes", "INSERT INTO mailboxes"))]
    assert any("dave@example.test" in s for s in written) and any("zoe@example.test" in s for s in written)
    assert statements[-1] == "ROLLBACK"
    db = maps.connect(cfg.maps_db)
    db.execute("DROP TRIGGER refuse_revision_2")
    db.close()
    assert apply(_changed(), cfg).applied
    assert "zoe@example.test" in mailboxes(cfg)


def test_failure_after_the_rows_were_replaced_rolls_back(cfg: HostConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The aliases INSERT fails after the DELETEs and the mailboxes INSERT already ran."""
    before, scripts = _start(cfg)
    real_rows = render.rows

    def colliding(doc: dict[str, Any]) -> render.DomainRows:
        rows = real_rows(doc)
        return render.DomainRows(rows.mailboxes, {**rows.aliases, "alias@other.test": ["x@y.zz"]}, rows.transports,
                                 rows.names)

    monkeypatch.setattr(render, "rows", colliding)
    with pytest.raises(sqlite3.IntegrityError):
        apply(_changed(), cfg)
    _assert_old_state(cfg, before, scripts)


def test_process_dying_inside_the_transaction_leaves_the_old_state(
    cfg: HostConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, scripts = _start(cfg)
    real_connect = maps.connect
    inside: list[bool] = []

    class Dying:
        """A connection whose process dies at the first write of aliases inside the transaction."""

        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __getattr__(self, name: str) -> Any:
            return getattr(self.db, name)

        def executemany(self, sql: str, rows: Any) -> Any:
            if self.db.in_transaction and "aliases" in sql:
                inside.append(True)
                raise Crash
            return self.db.executemany(sql, rows)

    monkeypatch.setattr(maps, "connect", lambda path: Dying(real_connect(path)))
    with pytest.raises(Crash):
        apply(_changed(), cfg)
    assert inside == [True]  # it did die between BEGIN IMMEDIATE and COMMIT, after the mailbox rows
    _assert_old_state(cfg, before, scripts)
    monkeypatch.undo()
    assert apply(_changed(), cfg).applied  # and the next apply goes through


# --------------------------------------------------------------------------------------------------
# crash atomicity: kill -9 of a real process
# --------------------------------------------------------------------------------------------------

CHILD = r"""
import json, sys, time
from pathlib import Path
from mailhost import maps
from mailhost.apply import HostConfig, apply

_connect = maps.connect

def traced(path):
    db = _connect(path)
    def trace(sql):
        if sql.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            print(sql.split()[0], time.monotonic(), flush=True)
    db.set_trace_callback(trace)
    return db

maps.connect = traced
outcome = apply(json.loads(Path(sys.argv[2]).read_text()), HostConfig(name="t", root=Path(sys.argv[1])))
print("DONE", time.monotonic(), outcome.applied, flush=True)
"""
BIG = 5000


def generation(g: int) -> dict[str, Any]:
    """Generation g of a big domain: its own names, its own size, revision g + 1."""
    count = BIG if g % 2 == 0 else BIG - 500
    boxes = []
    for i in range(count):
        extra: dict[str, Any] = {}
        if i % 100 == 0:
            extra = {"routing": "forward", "forward_to": [f"g{g}x{i}@remote.test"], "keep_copy": True}
        if i % 250 == 0:
            extra["vacation"] = vacation(f"gen {g}")
        boxes.append(mailbox(f"g{g}u{i}", **extra))
    return document("big.test", revision=g + 1, mailboxes=boxes)


def state_of(cfg: HostConfig) -> tuple[int, int, set[str], int, set[str]]:
    (revision,) = query(cfg, "SELECT revision FROM domains WHERE domain = 'big.test'")[0]
    emails = [e for (e,) in query(cfg, "SELECT email FROM mailboxes WHERE domain = 'big.test'")]
    sources = [s for (s,) in query(cfg, "SELECT source FROM aliases WHERE domain = 'big.test'")]
    return (revision, len(emails), {e.split("u")[0] for e in emails}, len(sources),
            {s.split("u")[0] for s in sources})


def expected_state(g: int) -> tuple[int, int, set[str], int, set[str]]:
    count = BIG if g % 2 == 0 else BIG - 500
    return (g + 1, count, {f"g{g}"}, len(range(0, count, 100)), {f"g{g}"})


def run_child(cfg: HostConfig, doc_file: Path, kill_after: float | None) -> tuple[float, dict[str, float], int]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    start = time.monotonic()
    child = subprocess.Popen(  # noqa: S603 - this interpreter, our own script
        [sys.executable, "-c", CHILD, str(cfg.root), str(doc_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(cfg.root),
    )
    if kill_after is not None:
        try:
            child.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            os.kill(child.pid, signal.SIGKILL)
    out, err = child.communicate(timeout=120)
    if kill_after is None:
        assert child.returncode == 0, err.decode()
    assert child.returncode in (0, -signal.SIGKILL), err.decode()
    marks: dict[str, float] = {}
    for line in out.decode().splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] in ("BEGIN", "COMMIT", "ROLLBACK", "DONE"):
            marks.setdefault(fields[0], float(fields[1]) - start)
    return time.monotonic() - start, marks, child.returncode


def test_kill_9_during_apply_leaves_the_old_or_the_new_domain(cfg: HostConfig, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()

    def doc_file(g: int) -> Path:
        path = docs / f"gen{g}.json"
        if not path.exists():
            path.write_text(json.dumps(generation(g)))
        return path

    # calibration: one full run (generation 0 on the empty database), with the moments BEGIN and COMMIT happen
    duration, marks, _ = run_child(cfg, doc_file(0), None)
    assert state_of(cfg) == expected_state(0)
    begin, commit = marks["BEGIN"], marks["COMMIT"]
    print(f"\napply of {BIG} mailboxes in a subprocess: {duration:.2f}s, "
          f"BEGIN at {begin:.2f}s, COMMIT at {commit:.2f}s")

    seed = random.randrange(2**32)
    rng = random.Random(seed)
    current, landed = 0, {"before BEGIN": 0, "inside the transaction": 0, "after COMMIT": 0, "finished": 0}
    for attempt in range(10):
        # every other kill aimed at the transaction, the others anywhere in the run
        delay = rng.uniform(begin - 0.05, commit + 0.05) if attempt % 2 else rng.uniform(0, duration)
        _, marks, code = run_child(cfg, doc_file(current + 1), max(delay, 0.0))
        got = state_of(cfg)
        if code == 0:
            where = "finished"
        elif "BEGIN" not in marks:
            where = "before BEGIN"
        elif "COMMIT" not in marks:
            where = "inside the transaction"
        else:
            where = "after COMMIT"
        landed[where] += 1
        assert got in (expected_state(current), expected_state(current + 1)), (
            f"seed {seed}, kill {attempt} after {delay:.3f}s ({where}): mixed state {got[:2]}"
        )
        if got == expected_state(current + 1):
            current += 1
    print(f"kills (seed {seed}): {landed}")
    assert query(cfg, "PRAGMA integrity_check") == [("ok",)]
    # whatever was interrupted, the next apply finishes the job
    run_child(cfg, doc_file(current + 1), None)
    assert state_of(cfg) == expected_state(current + 1)
    homes = {p.name.split("u")[0] for p in (cfg.vmail_root / "big.test").iterdir()}
    assert homes <= {f"g{current + 1}"}


# --------------------------------------------------------------------------------------------------
# a big domain: one change
# --------------------------------------------------------------------------------------------------


def test_one_mailbox_change_on_a_10000_mailbox_domain(cfg: HostConfig) -> None:
    boxes = [mailbox(f"user{i:05d}", vacation=vacation(f"v{i}") if i % 500 == 0 else None) for i in range(10_000)]
    started = time.perf_counter()
    apply(document("big.test", revision=1, mailboxes=boxes), cfg)
    first = time.perf_counter() - started
    before = mailboxes(cfg, "big.test")

    boxes[4321] = mailbox("user04321", quota_bytes=2 * 1024**3, vacation=vacation("now away"))
    started = time.perf_counter()
    outcome = apply(document("big.test", revision=2, mailboxes=boxes), cfg)
    second = time.perf_counter() - started
    print(f"\n10,000 mailboxes: first apply {first:.2f}s, one-mailbox change {second:.2f}s")

    assert outcome.applied and outcome.removed_homes == []
    after = mailboxes(cfg, "big.test")
    assert len(after) == 10_000
    changed = after.pop("user04321@big.test")
    assert changed[1] == 2 * 1024**3
    assert Path(changed[7]).read_text() == render.mailbox_sieve(boxes[4321], "user04321@big.test")
    del before["user04321@big.test"]
    assert after == before
    assert query(cfg, "SELECT revision FROM domains WHERE domain = 'big.test'") == [(2,)]


# --------------------------------------------------------------------------------------------------
# bugs found by these tests, fixed since
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["present", "absent"])
def test_redelivery_finishes_an_interrupted_sweep(
    cfg: HostConfig, monkeypatch: pytest.MonkeyPatch, state: str
) -> None:
    apply(document(revision=1, mailboxes=[mailbox("alice"), mailbox("bob", vacation=vacation())]), cfg)
    deliver(cfg, "bob")
    doc = document(revision=2, mailboxes=[mailbox("alice")]) if state == "present" else document(
        revision=2, state="absent")

    monkeypatch.setattr(agent_apply, "_sweep_homes", die_after_commit)
    with pytest.raises(Crash):
        apply(doc, cfg)
    monkeypatch.undo()
    apply(doc, cfg)  # the broker redelivers the unacknowledged task (task_acks_late=True)
    assert not (cfg.vmail_root / D / "bob").exists(), "the removed mailbox's mail is still on disk"


def test_symlinked_sieve_folder_is_not_followed(cfg: HostConfig, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "important.conf").write_text("keep")
    (cfg.vmail_root / D / "alice").mkdir(parents=True)
    (cfg.vmail_root / D / "alice" / SIEVE_DIR).symlink_to(outside, target_is_directory=True)
    before = tree(outside)
    try:
        apply(document(mailboxes=[mailbox("alice", vacation=vacation())]), cfg)
    except RenderError:
        pass  # refusing is fine
    assert tree(outside) == before, f"outside the mail root now: {sorted(tree(outside))}"


def test_planted_tmp_symlink_is_not_followed(cfg: HostConfig, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    alice = mailbox("alice", vacation=vacation())
    script = render.mailbox_sieve(alice, "alice@example.test") or ""
    folder = cfg.vmail_root / D / "alice" / SIEVE_DIR
    folder.mkdir(parents=True)
    (folder / (hashlib.sha256(script.encode()).hexdigest()[:24] + ".tmp")).symlink_to(victim)
    try:
        apply(document(mailboxes=[alice]), cfg)
    except (RenderError, OSError):
        pass  # refusing is fine
    assert victim.read_text() == "precious"


def test_parallel_applies_keep_the_script_files_of_the_newest(
    cfg: HostConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    def doc(revision: int) -> dict[str, Any]:
        return document(revision=revision, mailboxes=[mailbox("alice", vacation=vacation(f"v{revision}"))])

    apply(doc(4), cfg)
    both_written = threading.Barrier(2, timeout=30)
    older_done = threading.Event()
    real_connect = maps.connect

    class Gated:
        """The agent's connection, pausing at BEGIN IMMEDIATE: both applies have written their scripts."""

        def __init__(self, db: sqlite3.Connection) -> None:
            self._db = db

        def execute(self, sql: str, *args: Any) -> Any:
            if sql == "BEGIN IMMEDIATE":
                try:
                    both_written.wait()
                except threading.BrokenBarrierError:
                    pass  # applies serialised by a fix: nothing to interleave
                if threading.current_thread().name == "newer":
                    older_done.wait(timeout=30)
            return self._db.execute(sql, *args)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._db, name)

    monkeypatch.setattr(maps, "connect", lambda path: Gated(real_connect(path)))
    errors: list[BaseException] = []

    def run(revision: int) -> None:
        try:
            apply(doc(revision), cfg)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            if revision == 5:
                older_done.set()

    threads = [threading.Thread(target=run, args=(5,), name="older"),
               threading.Thread(target=run, args=(6,), name="newer")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert not errors, errors
    assert query(cfg, "SELECT revision FROM domains") == [(6,)]
    script = sieve_of(cfg, "alice")
    assert script is not None
    assert script.is_file(), f"the row points to {script.name}, which is gone: {scripts_in(cfg, 'alice')}"


def test_list_addresses_of_two_domains_never_collide(cfg: HostConfig) -> None:
    apply(document("shop.xn", lists=[{"name": "p1ai--news", "owner": "owner@example.test"}]), cfg)
    try:
        apply(document("shop.xn--p1ai", lists=[{"name": "news", "owner": "owner@example.test"}]), cfg)  # shop.рф
    except RenderError:
        return
    assert aliases(cfg, "shop.xn--p1ai")["news@shop.xn--p1ai"] == "news@shop.xn--p1ai.mlmmj.invalid"


def test_the_cycle_collector_is_paused_during_an_apply_and_back_after_it(
    cfg: HostConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    real_rows = render.rows
    monkeypatch.setattr(render, "rows", lambda doc: seen.append(gc.isenabled()) or real_rows(doc))
    apply(document(revision=1, mailboxes=[mailbox("alice")]), cfg)
    assert seen == [False] and gc.isenabled()
    monkeypatch.setattr(render, "rows", lambda doc: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        apply(document(revision=2), cfg)
    assert gc.isenabled()


def test_a_redelivered_delta_finishes_the_sweep_of_its_own_names_only(
    cfg: HostConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(document(revision=1, mailboxes=[mailbox("alice"), mailbox("bob")]), cfg)
    deliver(cfg, "bob")
    stray = cfg.vmail_root / D / "stray"  # no mailbox owns it: a whole document would remove it
    stray.mkdir()
    delta = {"format": contract.FORMAT, "domain": D, "revision": 2, "base": 1, "state": "present",
             "removed": ["bob"]}

    monkeypatch.setattr(agent_apply, "_sweep_homes", die_after_commit)
    with pytest.raises(Crash):
        apply(delta, cfg)
    monkeypatch.undo()
    assert apply(delta, cfg).removed_homes == ["bob"]  # redelivered: bob's maildir goes, nothing else
    assert not (cfg.vmail_root / D / "bob").exists() and stray.is_dir()
