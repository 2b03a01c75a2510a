"""The embedded Celery broker: one SQLite file that the panel's processes and the local agent share.

kombu's filesystem transport, used before, loses messages and kills the worker: it renames a
message file away and reads it without a lock, so it can read a file its writer has created but
not yet written (kombu issue 1551); the message is gone and the worker dies on JSONDecodeError.
Here every message is a row, written and claimed in SQLite transactions: a put is committed or
not there at all, and a claim reads and deletes the row in one transaction, so no two consumers
get it and no one reads half of it.

This is kombu's SQLAlchemy transport (its tables, queue rows and engine cache) with what it
lacks for several processes on one SQLite file:

- the engine is built here (the stock transport hands every transport option, `polling_interval`
  too, to `create_engine`); no connection pool, so nothing is carried over a worker's fork;
- WAL journal (readers never block the writer) and a busy timeout on every connection: a put or
  a claim that meets the lock waits for it instead of failing;
- every transaction begins IMMEDIATE (takes the write lock first), puts and claims alike: two
  transactions never both read the same row and then fight to change it;
- a claimed message is deleted in the transaction that claims it (the stock `_get` keeps every
  delivered message forever), so the file stays as small as the backlog;
- every operation commits or rolls back before it returns (the stock one leaves the session's
  transaction, and with it the write lock, open after a queue declaration or a size query).

Like every kombu virtual transport, a message a worker has taken but not yet acknowledged lives
in that worker's memory: it is put back on a warm shutdown, lost with a killed worker (the
panel's reconcile re-sends what a mail host has not confirmed).

Importing this module registers the URL scheme `sqlite`: the broker URL is the SQLAlchemy URL of
the file, e.g. `sqlite:////srv/panel/var/broker.sqlite3`. Plain Python, no Django (the agent
uses it too).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from json import dumps, loads
from pathlib import Path
from queue import Empty
from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import sqlalchemy as sqla
from sqlalchemy import Connection, Engine, create_engine, delete, event, func, insert, select
from sqlalchemy.engine.url import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

SCHEME = "sqlite"
FILE_NAME = "broker.sqlite3"
POLL_SECONDS = 0.1
BUSY_TIMEOUT_SECONDS = 30


def url_for(path: str | os.PathLike[str]) -> str:
    """The broker URL of the SQLite file at `path` (made absolute)."""
    return f"{SCHEME}:///{Path(path).resolve()}"


def default_url() -> str:
    """The file the panel uses without REDIS_URL: broker.sqlite3 in VAR_DIR (default: var/ of
    the project), so that a local agent started beside the panel finds the same file."""
    var_dir = os.environ.get("VAR_DIR") or Path(__file__).resolve().parent.parent / "var"
    return url_for(Path(var_dir) / FILE_NAME)


def path_of(url: str) -> Path:
    """The SQLite file a broker URL names."""
    database = make_url(url).database
    if not database or url.split(":", 1)[0] != SCHEME:
        raise ValueError(f"not an embedded broker URL: {url}")
    return Path(database)


def _on_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
    dbapi_connection.isolation_level = None  # no implicit BEGIN from sqlite3: _on_begin says which
    dbapi_connection.execute("PRAGMA journal_mode = WAL")


def _on_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


class Channel(sqla.Channel):
    _engines: dict[str, tuple[Engine, sessionmaker[Session]]] = {}  # noqa: RUF012 - kombu's per-URL engine cache, ours alone

    def _engine_from_config(self) -> Engine:
        client = self.connection.client
        url = client.hostname if client is not None else None  # the whole URL, for this transport
        if not url:
            raise ValueError("the embedded broker needs the URL of its file")
        path_of(url).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})
        event.listen(engine, "connect", _on_connect)
        event.listen(engine, "begin", _on_begin)
        return engine

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        engine, _sessions = self._open()
        with engine.begin() as connection:
            yield connection

    def _queue_id(self, connection: Connection, queue: str) -> int:
        table = self.queue_cls.__table__
        found = connection.execute(select(table.c.id).where(table.c.name == queue)).scalar()
        if found is None:
            inserted = connection.execute(insert(table).values(name=queue)).inserted_primary_key
            assert inserted is not None  # an INSERT's (SQLAlchemy types it for any statement)
            found = inserted[0]
        return int(found)

    def _new_queue(self, queue: str, **kwargs: Any) -> None:
        with self._transaction() as connection:
            self._queue_id(connection, queue)

    # kombu's two bases name the message differently (virtual: `message`, sqlalchemy: `payload`,
    # which we follow); kombu's stubs ignore the same conflict in sqlalchemy.Channel.
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        table = self.message_cls.__table__
        with self._transaction() as connection:
            connection.execute(insert(table).values(
                queue_id=self._queue_id(connection, queue), payload=dumps(payload), visible=True, version=1,
            ))

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        """The oldest message of `queue`, removed from it (kombu polls this, without `timeout`;
        Empty when none)."""
        table = self.message_cls.__table__
        with self._transaction() as connection:
            row = connection.execute(
                select(table.c.id, table.c.payload)
                .where(table.c.queue_id == self._queue_id(connection, queue), table.c.visible.is_(True))
                .order_by(table.c.id).limit(1)
            ).first()
            if row is None:
                raise Empty
            connection.execute(delete(table).where(table.c.id == row.id))
        message: dict[str, Any] = loads(row.payload)  # a kombu message: what _put wrote
        return message

    def _purge(self, queue: str) -> int:
        table = self.message_cls.__table__
        with self._transaction() as connection:
            return connection.execute(
                delete(table).where(table.c.queue_id == self._queue_id(connection, queue))
            ).rowcount

    def _size(self, queue: str) -> int:
        table = self.message_cls.__table__
        with self._transaction() as connection:
            return int(connection.execute(
                select(func.count()).select_from(table)
                .where(table.c.queue_id == self._queue_id(connection, queue), table.c.visible.is_(True))
            ).scalar_one())


class Transport(sqla.Transport):
    """kombu transport `sqlite://`: see the module's docstring."""

    Channel = Channel
    driver_name = "sqlite"
    polling_interval = POLL_SECONDS


TRANSPORT_ALIASES[SCHEME] = f"{__name__}:Transport"
