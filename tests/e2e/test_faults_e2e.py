"""Faults: the agent down while changes are made, the agent killed in the middle of an apply,
documents delivered twice or out of order, the broker restarted with messages lost. The durable
record (Domain.revision vs DomainSync.applied_revision) and the reconcile bring everything back."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from celery import current_app
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from hosting.models import Domain, Pack
from hostlink import push, snapshot
from mail.models import Mailbox
from mail.services import mailbox_set_access
from mailhost import broker, contract
from mailhost.passwords import hash_password
from mailhost.stack import tail
from provisioning.models import DomainSync, SyncState
from provisioning.revisions import domain_changed
from tests.conftest import login_mailbox
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import pop3_messages, send, wait_for
from tests.e2e.workers import Worker, make_beat

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def domain_rows(e2e: E2E, name: str) -> tuple[int | None, int]:
    db = sqlite3.connect(f"file:{e2e.stack.config.maps_db}?mode=ro", uri=True)
    try:
        revision = db.execute("SELECT revision FROM domains WHERE domain = ?", (name,)).fetchone()
        count = db.execute("SELECT count(*) FROM mailboxes WHERE domain = ?", (name,)).fetchone()[0]
    finally:
        db.close()
    return (revision[0] if revision else None), count


def test_agent_down_shows_pending_then_converges(e2e: E2E, client) -> None:
    domain = e2e.domain("down")
    e2e.wait_applied(domain)
    e2e.workers.agent.stop()
    try:
        olga = e2e.mailbox(domain, "olga")
        client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
        login_mailbox(client, olga)
        time.sleep(1)  # the panel worker has sent it; nobody applies it
        sync = DomainSync.objects.get(domain=domain)
        assert sync.state_of(Mailbox.objects.get(pk=olga.pk).revision) == SyncState.PENDING
        assert "being applied" in client.get(reverse("screens:me")).content.decode()
    finally:
        e2e.workers.agent.restart()
    e2e.wait_applied(domain)
    assert "All changes are live" in client.get(reverse("screens:me")).content.decode()
    send(e2e.stack, "x@outside.test", f"olga@{domain.name}", "after the outage", "x")
    wait_for(lambda: pop3_messages(e2e.stack, f"olga@{domain.name}", PASSWORD))


def bulk_mailboxes(domain, count: int, prefix: str) -> None:
    """Many mailboxes in one change (test data: one shared hash instead of one argon2 run each)."""
    shared = hash_password(PASSWORD)
    with transaction.atomic():
        revision = domain_changed(domain)
        Mailbox.objects.bulk_create(
            [Mailbox(domain=domain, local_part=f"{prefix}{i}", password_hash=shared, revision=revision)
             for i in range(count)]
        )


def test_agent_killed_mid_apply_leaves_old_or_new_never_a_mix(e2e: E2E) -> None:
    domain = e2e.domain("kill")
    e2e.wait_applied(domain)
    old_revision, old_count = domain_rows(e2e, domain.name)
    bulk_mailboxes(domain, 3000, "bulk")
    new_revision = domain.revision
    seen = set()
    agent = e2e.workers.agent
    for _ in range(3):  # kill it hard a few times while it works; the broker redelivers
        wait_for(lambda: domain_rows(e2e, domain.name)[0] is not None, timeout=5)
        time.sleep(0.05)
        os.killpg(agent.process.pid, signal.SIGKILL)
        agent.process.wait()
        state = domain_rows(e2e, domain.name)
        seen.add(state)
        assert state in {(old_revision, old_count), (new_revision, old_count + 3000)}, state
        agent.mark()
        agent.start()
    push.reconcile(stale_after=timedelta(0))  # in case the message died with the worker
    e2e.wait_applied(domain, timeout=60)
    assert domain_rows(e2e, domain.name) == (new_revision, old_count + 3000)


def test_documents_delivered_twice_or_out_of_order_change_nothing(e2e: E2E) -> None:
    domain = e2e.domain("order")
    paul = e2e.mailbox(domain, "paul")
    e2e.wait_applied(domain)
    old_document = snapshot.build(type(domain).objects.get(pk=domain.pk))
    mailbox_set_access(mailbox=paul, enabled=False, acting_user=e2e.operator)
    e2e.wait_applied(domain)
    current = domain_rows(e2e, domain.name)
    queue = e2e.host.queue
    for _ in range(2):  # the old document again, twice, after the newer one
        current_app.send_task(contract.APPLY, args=[old_document], queue=queue)
    new_document = snapshot.build(type(domain).objects.get(pk=domain.pk))
    current_app.send_task(contract.APPLY, args=[new_document], queue=queue)
    marker = e2e.mailbox(domain, "marker")  # processed after the three above (one queue, one worker)
    e2e.wait_applied(domain)
    assert domain_rows(e2e, domain.name)[1] == current[1] + 1
    db = sqlite3.connect(f"file:{e2e.stack.config.maps_db}?mode=ro", uri=True)
    assert db.execute("SELECT active FROM mailboxes WHERE email = ?", (f"paul@{domain.name}",)).fetchone() == (0,)
    assert marker.pk


def restart_broker() -> None:
    """Lose every queued message: restart Redis (it keeps nothing on disk here), or empty the
    embedded broker's file when no Redis is configured."""
    if settings.REDIS_URL:
        subprocess.run(["redis-cli", "-u", settings.REDIS_URL, "shutdown", "nosave"], check=False,
                       capture_output=True, timeout=30)
        subprocess.run(
            ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
             "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"],
            check=True, timeout=30,
        )
        wait_for(lambda: subprocess.run(["redis-cli", "-u", settings.REDIS_URL, "ping"],
                                        capture_output=True, check=False).returncode == 0)
    else:
        db = sqlite3.connect(broker.path_of(settings.CELERY_BROKER_URL), timeout=30)
        with db:
            db.execute("DELETE FROM kombu_message")
        db.close()


def test_broker_restart_loses_nothing(e2e: E2E) -> None:
    domain = e2e.domain("broker")
    e2e.wait_applied(domain)
    e2e.workers.agent.stop()
    try:
        e2e.mailbox(domain, "quinn")
        sync = DomainSync.objects.get(domain=domain)
        wait_for(lambda: DomainSync.objects.get(pk=sync.pk).sent_revision >= domain.revision)
        restart_broker()  # the document for the stopped agent is gone with the queue
    finally:
        e2e.workers.agent.restart()
        e2e.workers.panel.restart()
    # No reconcile called: the agent's start heartbeat has the panel send again what the host had
    # not confirmed (issue 15, item 10; before, the test waited 1 s, saw the change still missing,
    # and called the reconcile as its beat would, a minute later).
    e2e.wait_applied(domain, timeout=15)
    send(e2e.stack, "x@outside.test", f"quinn@{domain.name}", "after the broker restart", "x")
    wait_for(lambda: pop3_messages(e2e.stack, f"quinn@{domain.name}", PASSWORD))


# --------------------------------------------------------------------------------------------------
# Healing in seconds (issue 15, item 10): a push lost with its panel worker, an apply killed with
# its agent. The panel's beat runs as a real process (`celery beat`, the reconcile every
# RECONCILE_SECONDS), the panel's worker runs what it sends; nothing here calls the reconcile.
# Heal times are printed (BENCHMARKS.md, "Faults that heal"); run once per broker.
# --------------------------------------------------------------------------------------------------

HEAL_WITHIN = 20.0  # seconds; the target is 15 (PUSH_LOST_AFTER or RESEND_AFTER, plus one beat, plus the apply)


@pytest.fixture
def beat(e2e: E2E, tmp_path) -> Iterator[Worker]:
    process = make_beat(e2e.workers, tmp_path)
    process.mark()
    process.start()
    try:
        yield process
    finally:
        process.stop()


def broker_name() -> str:
    return "Redis" if settings.REDIS_URL else "embedded SQLite"


def wait_in_log(worker: Worker, text: str, timeout: float = 30) -> None:
    try:
        wait_for(lambda: text in worker.log.read_text(errors="replace").split("--- start ---")[-1], timeout=timeout)
    except AssertionError as error:
        raise AssertionError(f"{text!r} not in the {worker.name} worker's log after {timeout} s; its end:\n"
                             f"{tail(worker.log, 40)}") from error


@contextmanager
def sync_row_locked(domain_id: int) -> Iterator[None]:
    """Another connection holds what the push writes first (the domain's DomainSync row; with
    SQLite, the database's write lock): a push that starts now blocks there."""
    if connection.vendor == "sqlite":
        db = sqlite3.connect(connection.settings_dict["NAME"], timeout=30, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            db.execute("ROLLBACK")
            db.close()
        return
    other = connection.copy()
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {DomainSync._meta.db_table} WHERE domain_id = %s FOR UPDATE",  # noqa: S608
                           [domain_id])
        yield
    finally:
        other.rollback()
        other.close()


def drop_orphaned_statements() -> None:
    """On PostgreSQL the statement a killed worker had sent still runs once the lock it waits for
    is released (the server notices the dead client only when it answers): its UPDATE of the flag
    would then commit after all, and the test would race it. Ending that server process before the
    lock goes makes the fault the one the test means: the worker died before its UPDATE ran."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for _ in range(100):
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                           " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                           " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.05)
    raise AssertionError("the killed worker's statement still waits on its lock")


def kill_9(worker: Worker) -> None:
    assert worker.process is not None
    os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait()


def holds_what_a_change_needs(domain: Domain) -> bool:
    """True when another connection holds what a change of the domain writes: with SQLite the
    database's write lock, with PostgreSQL the domain's, its pack's or its DomainSync's row."""
    if connection.vendor == "sqlite":
        db = sqlite3.connect(connection.settings_dict["NAME"], timeout=0.2, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            db.close()
    other = connection.copy()
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            for table, column, value in ((Domain._meta.db_table, "id", domain.pk),
                                         (Pack._meta.db_table, "id", domain.pack_id),
                                         (DomainSync._meta.db_table, "domain_id", domain.pk)):
                cursor.execute(f"SELECT 1 FROM {table} WHERE {column} = %s FOR UPDATE NOWAIT", [value])  # noqa: S608
        return False
    except DatabaseError:
        return True
    finally:
        other.rollback()
        other.close()


def stop_holding_nothing(worker: Worker, domain: Domain) -> None:
    """SIGSTOP the worker at a moment it holds nothing a change of the domain needs. Stopped inside
    a transaction (a report or a reconcile it was running), it would keep its lock while stopped:
    with SQLite every write waits on it, and the test's own change failed with "database is
    locked" (seen in CI)."""
    assert worker.process is not None
    for _ in range(100):
        os.killpg(worker.process.pid, signal.SIGSTOP)
        if not holds_what_a_change_needs(domain):
            return
        os.killpg(worker.process.pid, signal.SIGCONT)
        time.sleep(0.1)
    raise AssertionError(f"the {worker.name} worker held the domain's lock at each of 100 tries; its log:\n"
                         f"{tail(worker.log, 40)}")


def push_killed_in_flight(e2e: E2E, panel: Worker, domain: Domain, local: str) -> bool:
    """Kill -9 the panel's worker while it holds the push of a new change (it took the message
    and blocks on the domain's record, locked here). False, nothing killed, when the worker did
    not take that push within 15 s (it was busy with another task)."""
    assert panel.process is not None
    stop_holding_nothing(panel, domain)  # so that the push waits for the lock below
    try:
        e2e.mailbox(domain, local)  # its push claims the flag and goes to the broker
        assert DomainSync.objects.get(domain=domain).queued
        panel.mark()
        with sync_row_locked(domain.pk):
            os.killpg(panel.process.pid, signal.SIGCONT)
            try:
                wait_in_log(panel, f"{contract.PUSH_DOMAIN}[", timeout=15)  # received: it blocks on the record
            except AssertionError:
                return False
            time.sleep(0.3)
            kill_9(panel)
            drop_orphaned_statements()
        return True
    finally:
        if panel.process is not None and panel.process.poll() is None:
            os.killpg(panel.process.pid, signal.SIGCONT)


def test_a_push_lost_with_its_panel_worker_heals_in_seconds(e2e: E2E, beat: Worker) -> None:
    """The panel's worker is killed holding a push (it took the message and blocks on the
    domain's record): the flag stays taken, the push is gone (the embedded broker deleted the
    message when the worker claimed it; Redis keeps it unacknowledged for an hour). A later change
    finds the flag taken and queues nothing: before, it waited for the reconcile's 60 s (60–90 s
    in all); now the reconcile frees a flag older than PUSH_LOST_AFTER and sends the push."""
    domain = e2e.domain("lost")
    e2e.wait_applied(domain)
    panel = e2e.workers.panel
    for attempt in range(3):
        if push_killed_in_flight(e2e, panel, domain, f"first{attempt}"):
            break
        # The worker ran something else first, which then blocked on the lock (seen in two CI runs
        # under load, cause not pinned down: perhaps a push already inside it, waiting for its
        # PUSH_INTERVAL_MS turn): the lock is gone, that goes through; the fault is set up again.
        print(f"\nattempt {attempt}: the push was not the worker's next task; its log:\n{tail(panel.log, 15)}")
        e2e.wait_applied(domain, timeout=60)
    else:
        raise AssertionError(f"the panel worker never took the push; its log:\n{tail(panel.log, 40)}")
    killed = time.monotonic()
    assert DomainSync.objects.get(domain=domain).queued  # the flag outlived its push
    e2e.mailbox(domain, "second")  # finds the flag taken: queues no push of its own
    changed = time.monotonic()
    panel.mark()
    panel.start()  # as bin/run restarts it
    restarted = time.monotonic()
    e2e.wait_applied(domain, timeout=120)
    live = time.monotonic()
    print(f"\n[{broker_name()}] push lost with its panel worker (kill -9): the next change live "
          f"{live - changed:.1f} s after its commit, {live - killed:.1f} s after the kill "
          f"(the worker's restart took {restarted - changed:.1f} s of it)")
    assert live - changed < HEAL_WITHIN
    send(e2e.stack, "x@outside.test", f"second@{domain.name}", "healed", "x")
    wait_for(lambda: pop3_messages(e2e.stack, f"second@{domain.name}", PASSWORD))


def test_an_apply_killed_with_its_agent_heals_in_seconds(e2e: E2E, beat: Worker) -> None:
    """The agent is killed in the middle of the apply of a whole domain (60,000 mailboxes): the
    document is gone with it (nothing reports). Before, the reconcile sent it again once it was
    60 s old (75–82 s in all); now as soon as the agent's worker is back (its start heartbeat),
    RESEND_AFTER after it went at the latest."""
    domain = e2e.domain("apply")
    e2e.wait_applied(domain)
    old_revision, old_count = domain_rows(e2e, domain.name)
    agent = e2e.workers.agent
    # The rows first, stamped with the revision of the change below (their long insert outside it)...
    shared, revision = hash_password(PASSWORD), Domain.objects.get(pk=domain.pk).revision + 1
    Mailbox.objects.bulk_create([Mailbox(domain=domain, local_part=f"whole{i}", password_hash=shared,
                                         revision=revision) for i in range(60000)], batch_size=5000)
    DomainSync.objects.filter(domain=domain).update(needs_full=True)  # ...then the whole domain, as to a new host
    agent.mark()
    e2e.mailbox(domain, "trigger")
    wait_in_log(agent, f"{contract.APPLY}[", timeout=60)  # the agent has the document
    time.sleep(0.5)
    kill_9(agent)
    killed = time.monotonic()
    assert domain_rows(e2e, domain.name) == (old_revision, old_count), "applied before the kill"
    agent.mark()
    agent.start()
    e2e.wait_applied(domain, timeout=180)
    healed = time.monotonic() - killed
    print(f"\n[{broker_name()}] agent killed during a whole-domain apply (60,000 mailboxes): live "
          f"{healed:.1f} s after the kill")
    assert domain_rows(e2e, domain.name) == (Domain.objects.get(pk=domain.pk).revision, old_count + 60000 + 1)
    assert healed < HEAL_WITHIN
