"""The embedded broker (mailhost/broker.py) through real kombu connections in real processes.

A flood of large messages put by one process while two others poll must arrive whole and
exactly once: kombu's filesystem transport, used before, lost them (kombu issue 1551).
"""

from __future__ import annotations

import base64
import hashlib
import multiprocessing
import os
import sqlite3
import threading
import time
from collections import Counter
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Consumer, Exchange, Message, Producer, Queue

from mailhost import broker

COUNT = 1000
SIZE = 500_000  # characters of random base64 per message
OPTIONS = {"polling_interval": 0.1}  # the option the stock SQLAlchemy transport hands to create_engine
QUEUE = Queue("flood", Exchange("flood", type="direct"), routing_key="flood")


def produce(url: str, options: dict[str, Any], count: int, size: int, checksums: Any) -> None:
    """Put `count` messages of `size` characters; report each one's checksum."""
    with Connection(url, transport_options=options) as connection:
        producer = Producer(connection.channel(), exchange=QUEUE.exchange, routing_key=QUEUE.routing_key)
        producer.declare()
        QUEUE(producer.channel).declare()
        for number in range(count):
            data = base64.b64encode(os.urandom(size * 3 // 4)).decode()
            producer.publish({"number": number, "data": data}, serializer="json")
            checksums.put((number, hashlib.sha256(data.encode()).hexdigest()))


def consume(url: str, options: dict[str, Any], received: Any, stop: Event) -> None:
    """Take messages as a Celery worker does (prefetch 1, ack each) until told to stop."""

    def on_message(body: dict[str, Any], message: Message) -> None:
        received.put((body["number"], hashlib.sha256(body["data"].encode()).hexdigest()))
        message.ack()

    with Connection(url, transport_options=options) as connection:
        channel = connection.channel()
        channel.basic_qos(0, 1, False)
        with Consumer(channel, queues=[QUEUE], callbacks=[on_message], accept=["json"]):
            while not stop.is_set():
                try:
                    connection.drain_events(timeout=0.5)
                except TimeoutError:
                    continue


def flood(url: str, options: dict[str, Any], count: int = COUNT, size: int = SIZE,
          consumers: int = 2, stall: float = 120,
          ceiling: float = 1200) -> tuple[dict[int, str], list[tuple[int, str]]]:
    """Run the producer and the consumers in separate processes; return what was put (number →
    checksum) and what was received, in order of arrival. It waits as long as messages keep being
    put or received (a loaded machine is slow, not wrong): it gives up after `stall` seconds with
    no progress, or `ceiling` seconds in all."""
    context = multiprocessing.get_context("spawn")
    checksums, received, stop = context.Queue(), context.Queue(), context.Event()
    with Connection(url, transport_options=options) as connection:  # the queue exists before anyone polls
        QUEUE(connection.channel()).declare()
    takers = [context.Process(target=consume, args=(url, options, received, stop)) for _ in range(consumers)]
    putter = context.Process(target=produce, args=(url, options, count, size, checksums))
    for process in [*takers, putter]:
        process.start()
    put: dict[int, str] = {}
    got: list[tuple[int, str]] = []
    started = time.monotonic()
    progress = started
    try:
        while time.monotonic() - progress < stall and time.monotonic() - started < ceiling \
                and (len(got) < count or putter.is_alive()):
            while not checksums.empty():
                number, checksum = checksums.get()
                put[number] = checksum
                progress = time.monotonic()
            try:
                got.append(received.get(timeout=0.2))
                progress = time.monotonic()
            except Exception:  # noqa: BLE001, S112 - queue.Empty: nothing this time
                if not putter.is_alive() and not any(taker.is_alive() for taker in takers):
                    break
        time.sleep(1)  # anything delivered twice would arrive now
        while not received.empty():
            got.append(received.get())
        while not checksums.empty():
            number, checksum = checksums.get()
            put[number] = checksum
    finally:
        stop.set()
        for process in [putter, *takers]:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
    return put, got


def test_a_flood_of_large_messages_arrives_whole_and_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / broker.FILE_NAME
    started = time.monotonic()
    put, got = flood(broker.url_for(path), OPTIONS)
    elapsed = time.monotonic() - started
    assert len(put) == COUNT
    arrivals = Counter(number for number, _checksum in got)
    assert not [number for number, times in arrivals.items() if times > 1], "delivered twice"
    assert sorted(arrivals) == list(range(COUNT)), f"{COUNT - len(arrivals)} lost"
    assert dict(got) == put, "a message arrived changed"
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM kombu_message").fetchone() == (0,), "delivered rows kept"
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    print(f"{COUNT} messages of {SIZE} characters in {elapsed:.1f} s")  # noqa: T201


def test_a_put_waits_for_a_lock_longer_than_sqlites_default_timeout(tmp_path: Path) -> None:
    url = broker.url_for(tmp_path / broker.FILE_NAME)
    with Connection(url) as connection:
        queue = connection.SimpleQueue("waiting")
        queue.put("first")
        locked, release = threading.Event(), threading.Event()

        def hold_the_lock() -> None:
            db = sqlite3.connect(tmp_path / broker.FILE_NAME, isolation_level=None)
            db.execute("BEGIN IMMEDIATE")
            locked.set()
            release.wait(10)
            db.execute("ROLLBACK")
            db.close()

        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        locked.wait(5)
        threading.Timer(6, release.set).start()  # sqlite3's own default busy timeout is 5 s
        started = time.monotonic()
        queue.put("second")
        waited = time.monotonic() - started
        holder.join()
        assert waited > 5
        assert [queue.get(timeout=1).payload for _ in range(2)] == ["first", "second"]
        queue.close()


def test_declaring_and_counting_leave_no_transaction_open(tmp_path: Path) -> None:
    path = tmp_path / broker.FILE_NAME
    with Connection(broker.url_for(path)) as connection:
        queue = connection.SimpleQueue("open")  # declares it
        queue.put("x")
        assert queue.qsize() == 1
        other = sqlite3.connect(path, isolation_level=None, timeout=0)
        other.execute("BEGIN IMMEDIATE")  # would raise "database is locked" if one were open
        other.execute("ROLLBACK")
        queue.close()


def test_the_panel_and_the_agent_default_to_the_same_file(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.conf import settings

    monkeypatch.delenv("VAR_DIR", raising=False)
    project_var = Path(__file__).resolve().parent.parent / "var"
    assert broker.default_url() == broker.url_for(project_var / broker.FILE_NAME)
    monkeypatch.setenv("VAR_DIR", str(settings.VAR_DIR))
    if not settings.REDIS_URL:
        assert settings.CELERY_BROKER_URL == broker.default_url()
    assert broker.path_of(broker.default_url()) == Path(settings.VAR_DIR).resolve() / broker.FILE_NAME
