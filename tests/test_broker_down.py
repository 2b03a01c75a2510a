"""A broker that is down never turns a saved change into a 500 (issue 15, item 9).

The push of a change is sent after its commit (provisioning.revisions.enqueue_push): with the
broker down, the send fails when the change is already saved. The failure is logged and left to
the reconcile; the page answers as for any saved change, the object shows "pending", and once the
broker is back the reconcile sends the push.

Real brokers, really down: a Redis server of the test's own, stopped (nothing listens on its
port any more), and the embedded SQLite broker on a file system remounted read-only. The panel's
Celery app is pointed at them for the test (its producer pool dropped, as after a fork). Needs
root (mount) for the embedded case, and redis-server for the other.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from kombu import Connection

from config.celery import app as panel_app
from hosting.models import Domain
from hostlink import push
from lists import imports
from lists import reports as list_reports
from lists.models import ImportState, MailingList, MemberImport, Posting
from mail.models import Forward
from mailhost import broker, contract
from provisioning.models import DomainSync, SyncState
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisBroker:
    """A redis-server of this test's own on 127.0.0.1, stopped and started again at will."""

    def __init__(self, folder: Path) -> None:
        self.port, self.folder = free_port(), folder
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def up(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
             "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def down(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


class SqliteBroker:
    """The embedded broker's file on a tmpfs of its own, remounted read-only when "down"."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)], check=True)
        self.url = broker.url_for(folder / broker.FILE_NAME)

    def up(self) -> None:
        subprocess.run(["mount", "-o", "remount,rw", str(self.folder)], check=True)

    def down(self) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(self.folder)], check=True)

    def remove(self) -> None:
        subprocess.run(["umount", "-l", str(self.folder)], check=False)


@pytest.fixture(params=["redis", "sqlite"])
def down_broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisBroker | SqliteBroker]:
    if request.param == "redis":
        if not shutil.which("redis-server"):
            pytest.skip("redis-server is not installed")
        real: RedisBroker | SqliteBroker = RedisBroker(tmp_path)
    else:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        real = SqliteBroker(tmp_path / "broker")
    saved = panel_app.conf.broker_url
    point_panel_at(real.url)
    real.up()
    try:
        yield real
    finally:
        real.down() if isinstance(real, RedisBroker) else real.remove()
        point_panel_at(saved)


def point_panel_at(url: str) -> None:
    """The panel's Celery app sends to `url` from now on (its pools dropped, as Celery does after a fork)."""
    panel_app.conf.broker_url = url
    panel_app._pool = None
    panel_app.amqp._producer_pool = None


def drain(url: str, queue: str) -> list[tuple[str, list[Any]]]:
    """The tasks waiting on `queue` of the broker at `url` (name, args), taken off it."""
    found = []
    with Connection(url) as connection:
        simple = connection.SimpleQueue(queue)
        try:
            while True:
                try:
                    message = simple.get(timeout=1)
                except simple.Empty:
                    return found
                args, _kwargs, _embed = message.decode()
                found.append((message.headers["task"], args))
                message.ack()
        finally:
            simple.close()


def create_forward(client: Client, cast: Cast, name: str) -> Any:
    return client.post(reverse("screens:forward_create", args=[cast.a.domain.pk]),
                       {"local_part": name, "destinations": "someone@elsewhere.test"})


def test_a_change_saved_while_the_broker_is_down_answers_as_usual_and_is_sent_once_it_is_back(
    cast: Cast, down_broker: RedisBroker | SqliteBroker, caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    client = client_for(cast, "domain_admin_a")
    domain = cast.a.domain
    # The broker up: the change's push is on the panel's queue (the test's wiring is the real one).
    assert create_forward(client, cast, "before").status_code == 302
    assert drain(down_broker.url, contract.PANEL_QUEUE) == [(contract.PUSH_DOMAIN, [domain.pk])]
    DomainSync.objects.filter(domain=domain).update(queued=False)  # as the push task would

    down_broker.down()
    caplog.set_level(logging.ERROR, logger="provisioning.revisions")
    started = time.monotonic()
    response = create_forward(client, cast, "during")
    seconds = time.monotonic() - started
    assert response.status_code == 302, response.content.decode()[:500]  # not the 500 of before
    forward = Forward.objects.get(domain=domain, local_part="during")  # saved
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "provisioning.revisions"]
    assert len(errors) == 1 and f"push of domain {domain.pk} could not be queued" in errors[0].getMessage()
    assert "Error" in errors[0].getMessage()  # the cause, named
    # The page that follows says it is saved, and the object's page says "pending".
    assert "The forward during@alpha-domain.test was created." in client.get(response["Location"]).content.decode()
    page = client.get(reverse("screens:forward_modify", args=[domain.pk, forward.pk]))
    assert page.status_code == 200
    sync = DomainSync.objects.get(domain=domain)
    assert sync.state_of(forward.revision) == SyncState.PENDING and not sync.queued  # the flag blocks nothing
    print(f"\n{type(down_broker).__name__} down: the page answered 302 in {seconds:.2f} s")

    down_broker.up()
    assert drain(down_broker.url, contract.PANEL_QUEUE) == []  # nothing went while it was down
    push.reconcile()  # the beat's, every RECONCILE_SECONDS: the change was never sent
    assert drain(down_broker.url, contract.PANEL_QUEUE) == [(contract.PUSH_DOMAIN, [domain.pk])]
    # ... and that push sends the host the change.
    with django_capture_on_commit_callbacks(execute=True):
        assert push.push(domain.pk) == Domain.objects.get(pk=domain.pk).revision
    [(task, [packed])] = drain(down_broker.url, cast.host.queue)
    document = contract.unpack(packed)
    assert task == contract.APPLY and document["revision"] == forward.revision
    assert any(f["local_part"] == "during" for f in document["forwards"])


def test_a_moderation_decision_saved_while_the_broker_is_down_answers_as_usual_and_is_sent_again(
    cast: Cast, down_broker: RedisBroker | SqliteBroker, caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    """The decision on a held post is sent after its commit too: saved, logged, no 500, and the
    host's next report of the list (the item still held) sends it again."""
    news = MailingList.objects.create(domain=cast.a.domain, name="news", owner="owner@alpha-domain.test",
                                      posting=Posting.MODERATED)
    key = "0123456789abcdef"
    item = {"kind": "post", "key": key, "sender": "someone@outside.test", "subject": "Hello",
            "received_at": "2026-01-02T03:04:05+00:00", "preview": "Hello"}
    report = {"host": cast.host.name, "lists": [{"domain": news.domain.name, "list": "news", "items": [item]}]}
    list_reports.record_held(**report, complete=False)
    held = news.held.get(key=key)
    client = client_for(cast, "domain_admin_a")

    down_broker.down()
    caplog.set_level(logging.ERROR, logger="lists.moderation")
    response = client.post(reverse("screens:held_decide", args=[cast.a.domain.pk, news.pk, held.pk]),
                           {"decision": "approve"})
    assert response.status_code == 302, response.content.decode()[:500]  # not a 500
    assert news.held.get(key=key).decision == "approve"  # saved
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "lists.moderation"]
    assert len(errors) == 1 and key in errors[0].getMessage() and "Error" in errors[0].getMessage()

    down_broker.up()
    assert drain(down_broker.url, cast.host.queue) == []  # nothing went while it was down
    with django_capture_on_commit_callbacks(execute=True):
        list_reports.record_held(**report, complete=True)  # the host's next beat report: still held
    [(task, [request])] = drain(down_broker.url, cast.host.queue)
    assert task == contract.MODERATE and (request["key"], request["decision"]) == (key, "approve")


def test_a_long_import_asked_while_the_broker_is_down_says_it_could_not_start(
    cast: Cast, down_broker: RedisBroker | SqliteBroker, caplog: pytest.LogCaptureFixture,
) -> None:
    """A long import's task is queued after its commit: with the broker down the page answers as
    usual, the import is marked failed with nothing read, and its page says it could not start."""
    news = MailingList.objects.create(domain=cast.a.domain, name="news", owner="owner@alpha-domain.test")
    client = client_for(cast, "domain_admin_a")
    text = "\n".join(f"member{n}@outside.test" for n in range(imports.INLINE_LINES + 1))
    down_broker.down()
    caplog.set_level(logging.ERROR, logger="lists.imports")
    response = client.post(reverse("screens:member_import", args=[cast.a.domain.pk, news.pk]),
                           {"kind": "subscriber", "text": text})
    assert response.status_code == 302, response.content.decode()[:500]  # not a 500
    job = MemberImport.objects.get(mailing_list=news)
    assert job.state == ImportState.FAILED and job.done == 0 and job.error.startswith("not queued: ")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "lists.imports"]
    assert len(errors) == 1 and "could not be queued" in errors[0].getMessage()
    page = client.get(response["Location"])
    assert "The import could not start: nothing was added." in page.content.decode()
    assert not news.members.exclude(address="owner@alpha-domain.test").exists()
