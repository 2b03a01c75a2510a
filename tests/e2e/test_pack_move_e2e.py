"""A pack moved between two real mail hosts keeps its mail.

Two stacks (the session's and a second one on other ports and folders, sharing the doveadm
password), each with its own agent worker, one panel worker. Messages delivered on the old host
before the move, and during it, are read by POP3 and IMAP on the new host after it; a sender
that meets the hold gets a 4xx (never a 5xx) and its retry reaches the new host; the old host's
maildirs stay until the panel has the copy's confirmation, then go.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.db import connection

from hosting.models import MailHost
from hostlink import push
from mailhost import maps, migrate
from mailhost.stack import PORT_FIELDS, Stack, StackConfig, down, up
from provisioning.domains import pack_move
from provisioning.models import DomainMove, MoveState, RetiredDomain
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import SMTPRefused, imap_login, imap_subjects, pop3_messages, send, wait_for
from tests.e2e.workers import Worker, make_workers

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def second_stack(mail_stack: Stack) -> Iterator[Stack]:
    """Another mail host on this machine: its own root, ports, Postfix, Dovecot; the doveadm
    password of the first (hosts that mail moves between share it)."""
    root = Path(tempfile.mkdtemp(prefix="mailpanel-e2e2-"))
    root.chmod(0o755)
    config = StackConfig(root=root, hostname="mx2.panel.test", **{name: _free_port() for name in PORT_FIELDS})
    config.doveadm_password_file.parent.mkdir(parents=True)
    shutil.copy(mail_stack.config.doveadm_password_file, config.doveadm_password_file)
    stack = up(config)
    try:
        yield stack
    finally:
        down(config)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class SecondHost:
    name: str
    agent: Worker
    stack: Stack


@pytest.fixture(scope="module")
def second_host(second_stack: Stack, workers: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecondHost]:
    """The second host's agent, as the e2e workers start theirs (same broker, same settings)."""
    made = make_workers(second_stack, tmp_path_factory.mktemp("workers-mx2"))
    made.agent.mark()
    made.agent.start()
    try:
        yield SecondHost(made.host_name, made.agent, second_stack)
    finally:
        made.agent.stop()


def hosts(e2e: E2E, second: SecondHost) -> MailHost:
    MailHost.objects.filter(pk=e2e.host.pk).update(doveadm_port=e2e.stack.config.doveadm_port)
    new, _created = MailHost.objects.get_or_create(
        name=second.name, defaults={"fqdn": "127.0.0.1", "doveadm_port": second.stack.config.doveadm_port}
    )
    return new


def maildir_files(stack: Stack, domain: str, local: str) -> int:
    maildir = stack.config.vmail_root / domain / local / "Maildir"
    return sum(1 for sub in ("new", "cur") if (maildir / sub).is_dir() for _f in (maildir / sub).iterdir())


def move_state(move_id: int) -> str:
    return DomainMove.objects.values_list("state", flat=True).get(pk=move_id)


@dataclass
class Stream:
    """Mail sent all through a move, as a sender's MTA would: to the old host (the domain's MX)
    until the move is over for senders (the copy confirmed: the MX now names the new host); a
    4xx is retried a moment later, a 5xx would be a bounce."""

    old: Stack
    new: Stack
    domain: str
    move_id: int
    accepted_old: list[str] = field(default_factory=list)
    accepted_new: list[str] = field(default_factory=list)
    deferred: list[tuple[int, str]] = field(default_factory=list)
    bounced: list[tuple[int, str]] = field(default_factory=list)
    early_removal: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            self._run()
        finally:
            connection.close()  # this thread's own database connection

    def _run(self) -> None:
        n = 0
        retry: str | None = None
        old_home = self.old.config.vmail_root / self.domain / "alice"
        while not self.stop.is_set():
            state = move_state(self.move_id)
            over = state in (MoveState.REMOVING, MoveState.DONE)
            if not over and not old_home.is_dir():
                self.early_removal.append(state)  # the old maildir went before the copy was confirmed
            if retry is None:
                n += 1
            subject, retry = retry or f"stream {n}", None
            target = self.new if over else self.old
            try:
                send(target, "sender@outside.test", f"alice@{self.domain}", subject, "during the move")
            except SMTPRefused as refused:
                if refused.code >= 500:
                    self.bounced.append((refused.code, refused.text))
                else:
                    self.deferred.append((refused.code, refused.text))
                    retry = subject
            else:
                (self.accepted_new if over else self.accepted_old).append(subject)
            if state == MoveState.DONE and retry is None:
                return
            time.sleep(0.05)


def test_a_moved_pack_takes_its_mail_to_the_new_host(e2e: E2E, second_host: SecondHost) -> None:
    new_host = hosts(e2e, second_host)
    old, new = e2e.stack, second_host.stack
    domain = e2e.domain("move")
    for local in ("alice", "bob"):
        e2e.mailbox(domain, local)
    e2e.wait_applied(domain)
    before = {"alice": [f"before {i}" for i in range(4)], "bob": [f"before {i}" for i in range(2)]}
    for local, subjects in before.items():
        for subject in subjects:
            send(old, "sender@outside.test", f"{local}@{domain.name}", subject, "delivered before the move")
    wait_for(lambda: maildir_files(old, domain.name, "alice") == 4 and maildir_files(old, domain.name, "bob") == 2)
    imap = imap_login(old, f"alice@{domain.name}", PASSWORD)
    try:  # a flag set on the old host travels too
        imap.select("INBOX")
        imap.store(b"1", "+FLAGS", "\\Seen")
    finally:
        imap.logout()

    # The old host's agent is stopped: the move stays in progress as long as we look at it.
    e2e.workers.agent.stop()
    try:
        started = time.monotonic()
        pack_move(pack=e2e.pack, mail_host=new_host, acting_user=e2e.operator)
        move = DomainMove.objects.get(domain=domain)
        wait_for(lambda: move_state(move.pk) == MoveState.COPYING, timeout=30)  # the new host has it
        during = ["during 0", "during 1", "during 2"]
        for subject in during:  # still delivered on the old host
            send(old, "sender@outside.test", f"alice@{domain.name}", subject, "delivered during the move")
        send(new, "sender@outside.test", f"bob@{domain.name}", "on the new host", "the new MX already")
        wait_for(lambda: maildir_files(old, domain.name, "alice") == 7)
        time.sleep(1)
        assert (old.config.vmail_root / domain.name / "alice" / "Maildir").is_dir()
        assert not RetiredDomain.objects.filter(name=domain.name).exists()
        assert move_state(move.pk) == MoveState.COPYING
    finally:
        stream = Stream(old, new, domain.name, move.pk)
        sender = threading.Thread(target=stream.run, daemon=True)
        sender.start()
        e2e.workers.agent.restart()
        resumed = time.monotonic()
    try:
        wait_for(lambda: move_state(move.pk) == MoveState.DONE, timeout=90, interval=0.1)
        seconds = time.monotonic() - started
        copy_seconds = time.monotonic() - resumed
    finally:
        stream.stop.set()
        sender.join(timeout=30)
    move.refresh_from_db()

    # Nothing bounced, nothing removed early; the old host holds nothing of the domain now.
    assert stream.bounced == [] and stream.early_removal == []
    assert all(code // 100 == 4 for code, _text in stream.deferred)
    old_domain_dir = old.config.vmail_root / domain.name
    assert not old_domain_dir.exists() or not any(old_domain_dir.iterdir())
    assert move.copied == [f"{local}@{domain.name}" for local in ("alice", "bob", "postmaster")]
    db = maps.connect(old.config.maps_db)
    try:
        assert db.execute("SELECT count(*) FROM mailboxes WHERE domain = ?", (domain.name,)).fetchone()[0] == 0
        assert not migrate.held(db, domain.name)
    finally:
        db.close()

    # Every message, on the new host, by IMAP and by POP3 (which marks them seen: IMAP first).
    imap = imap_login(new, f"alice@{domain.name}", PASSWORD)
    try:
        imap.select("INBOX", readonly=True)
        _typ, seen = imap.search(None, "SEEN")
    finally:
        imap.logout()
    assert len(seen[0].split()) == 1  # the flag set on the old host
    alice_expected = sorted(before["alice"] + during + stream.accepted_old + stream.accepted_new)
    bob_expected = sorted([*before["bob"], "on the new host"])
    alice_imap = sorted(imap_subjects(new, f"alice@{domain.name}", PASSWORD))
    # (extra, missing): a duplicate or a loss
    assert alice_imap == alice_expected, (Counter(alice_imap) - Counter(alice_expected),
                                          Counter(alice_expected) - Counter(alice_imap))
    alice_pop = sorted(str(m["Subject"]) for m in pop3_messages(new, f"alice@{domain.name}", PASSWORD))
    bob_pop = sorted(str(m["Subject"]) for m in pop3_messages(new, f"bob@{domain.name}", PASSWORD))
    assert alice_pop == alice_expected and bob_pop == bob_expected
    print(
        f"\npack move: {sum(map(len, before.values()))} messages before, {len(during) + 1} during with the old "
        f"agent stopped, then a stream: {len(stream.accepted_old)} accepted by the old host during the copy, "
        f"{len(stream.deferred)} deferred there with 4xx during the hold and retried, {len(stream.accepted_new)} "
        f"accepted by the new host once the copy was confirmed, 0 bounced; "
        f"{len(alice_pop) + len(bob_pop)} read by POP3 and IMAP on the new host; move {seconds:.1f} s in all "
        f"(the old agent stopped on purpose for a while), {copy_seconds:.2f} s from the old agent's restart to "
        f"done (copy, hold, final copy, removal confirmed)"
    )


def test_the_hold_defers_the_domains_mail_with_4xx(e2e: E2E) -> None:
    domain = e2e.domain("hold")
    e2e.mailbox(domain, "carol")
    e2e.wait_applied(domain)
    db = maps.connect(e2e.stack.config.maps_db)
    try:
        migrate.hold(db, domain.name)
        with pytest.raises(SMTPRefused) as deferred:
            send(e2e.stack, "sender@outside.test", f"carol@{domain.name}", "held", "try later")
        assert deferred.value.code == 450 and deferred.value.stage == "RCPT"
        migrate.release(db, domain.name)
    finally:
        db.close()
    send(e2e.stack, "sender@outside.test", f"carol@{domain.name}", "released", "taken again")
    wait_for(lambda: pop3_messages(e2e.stack, f"carol@{domain.name}", PASSWORD))


def test_a_failed_copy_keeps_the_old_hosts_mail_until_a_retry_succeeds(e2e: E2E, second_host: SecondHost) -> None:
    new_host = hosts(e2e, second_host)
    MailHost.objects.filter(pk=new_host.pk).update(doveadm_port=_free_port())  # nobody listens there
    old, new = e2e.stack, second_host.stack
    domain = e2e.domain("fail")
    e2e.mailbox(domain, "dave")
    e2e.wait_applied(domain)
    send(old, "sender@outside.test", f"dave@{domain.name}", "kept", "x")
    wait_for(lambda: maildir_files(old, domain.name, "dave") == 1)
    pack_move(pack=e2e.pack, mail_host=new_host, acting_user=e2e.operator)
    move = DomainMove.objects.get(domain=domain)
    wait_for(lambda: move_state(move.pk) == MoveState.FAILED, timeout=30)
    move.refresh_from_db()
    assert "doveadm sync of dave@" in move.error or "doveadm sync of postmaster@" in move.error
    # The old host keeps the domain, takes its mail (no hold left) and keeps the maildirs.
    send(old, "sender@outside.test", f"dave@{domain.name}", "after the failure", "x")
    wait_for(lambda: maildir_files(old, domain.name, "dave") == 2)
    assert not RetiredDomain.objects.filter(name=domain.name).exists()
    # The port mended, the reconcile asks again and the move finishes.
    MailHost.objects.filter(pk=new_host.pk).update(doveadm_port=new.config.doveadm_port)
    DomainMove.objects.filter(pk=move.pk).update(copy_sent_at=move.copy_sent_at.replace(year=2000))
    push.reconcile()
    wait_for(lambda: move_state(move.pk) == MoveState.DONE, timeout=60, interval=0.1)
    subjects = sorted(str(m["Subject"]) for m in pop3_messages(new, f"dave@{domain.name}", PASSWORD))
    assert subjects == ["after the failure", "kept"]
    assert maildir_files(old, domain.name, "dave") == 0
