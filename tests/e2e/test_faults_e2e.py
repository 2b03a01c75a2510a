"""Faults: the agent down while changes are made, the agent killed in the middle of an apply,
documents delivered twice or out of order, the broker restarted with messages lost. The durable
record (Domain.revision vs DomainSync.applied_revision) and the reconcile bring everything back."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from datetime import timedelta

import pytest
from celery import current_app
from django.conf import settings
from django.db import transaction
from django.urls import reverse

from mail.models import Mailbox
from mail.services import mailbox_set_access
from mailhost import broker, contract
from mailhost.passwords import hash_password
from provisioning import services, snapshot
from provisioning.models import DomainSync, SyncState
from provisioning.revisions import domain_changed
from tests.conftest import login_mailbox
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import pop3_messages, send, wait_for

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
        assert "being applied" in client.get(reverse("mail:me")).content.decode()
    finally:
        e2e.workers.agent.restart()
    e2e.wait_applied(domain)
    assert "All changes are live" in client.get(reverse("mail:me")).content.decode()
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
    services.reconcile(stale_after=timedelta(0))  # in case the message died with the worker
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
    time.sleep(1)
    assert DomainSync.objects.get(pk=sync.pk).applied_revision < domain.revision
    services.reconcile(stale_after=timedelta(0))  # what the periodic reconcile does
    e2e.wait_applied(domain)
    send(e2e.stack, "x@outside.test", f"quinn@{domain.name}", "after the broker restart", "x")
    wait_for(lambda: pop3_messages(e2e.stack, f"quinn@{domain.name}", PASSWORD))
