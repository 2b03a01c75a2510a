"""Real Celery workers for the end-to-end tests: the panel's (queue "panel"), the panel's bulk
worker (queue "panel.bulk": member imports) and the mail-host agent's (queue "host.<name>"),
through the broker the settings select (Redis in CI, the embedded SQLite broker otherwise), on
the test database, driving the real mail stack."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection

from mailhost import contract
from mailhost.stack import Stack, tail

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).parent / "celery")


def database_url() -> str:
    """The test database, as the workers must open it."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    if connection.vendor == "postgresql":
        user = s.get("USER") or "postgres"
        auth = f"{user}:{s['PASSWORD']}@" if s.get("PASSWORD") else f"{user}@"
        return f"postgres://{auth}{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"
    raise RuntimeError(f"no worker support for {connection.vendor}")


@dataclass
class Worker:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    ready: str = " ready."  # what its log says once it is started (a worker's; a beat says its own)

    def start(self, timeout: float = 60) -> None:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own celery, fixed arguments
            self.argv, cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while self.ready not in self.log.read_text(errors="replace").split("--- start ---")[-1]:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} did not start:\n{tail(self.log, 40)}")
            time.sleep(0.1)

    def mark(self) -> None:
        with self.log.open("a") as handle:
            handle.write("\n--- start ---\n")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.mark()
        self.start()

    def death(self) -> str:
        """'' while the worker runs; else how it ended, with the tail of its log."""
        if self.process is None:
            return f"the {self.name} worker was never started"
        code = self.process.poll()
        if code is None:
            return ""
        return f"the {self.name} worker is dead (exit code {code}); the end of {self.log}:\n{tail(self.log, 40)}"


@dataclass
class Workers:
    host_name: str
    panel: Worker
    agent: Worker
    stack: Stack
    bulk: Worker | None = None  # the panel's long tasks (contract.BULK_QUEUE), as bin/run starts it


def make_workers(stack: Stack, log_dir: Path) -> Workers:
    host_name = f"e2e{secrets.token_hex(3)}"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MAILHOST_", "DATABASE_URL"))}
    panel_env = {**base, "DATABASE_URL": database_url(), "VAR_DIR": str(settings.VAR_DIR)}
    # The agent runs without Django, as on a mail host: with DJANGO_SETTINGS_MODULE set (pytest
    # sets it), Celery's Django fixup would load the whole panel into the agent's worker.
    agent_env = {
        **{k: v for k, v in base.items() if k != "DJANGO_SETTINGS_MODULE"},
        "MAILHOST_NAME": host_name,
        "MAILHOST_ROOT": str(stack.config.root),
        "MAILHOST_POSTFIX_DIR": str(stack.config.postfix_dir),
        "MAILHOST_BROKER_URL": settings.CELERY_BROKER_URL,  # the panel's: Redis or the embedded file
        "MAILHOST_SMTP_PORT": str(stack.config.smtp_port),
        "MAILHOST_LIST_SMTP_PORT": str(stack.config.list_smtp_port),  # mlmmj's own smtpd
    }
    common = ["worker", "--pool", "solo", "-l", "info", "--without-heartbeat", "--without-gossip",
              "--without-mingle", "-n"]
    panel = Worker("panel", [CELERY, "-A", "config", *common, f"panel-{host_name}@localhost",
                             "-Q", contract.PANEL_QUEUE], panel_env, log_dir / "panel-worker.log")
    agent = Worker("agent", [CELERY, "-A", "mailhost.agent", *common, f"agent-{host_name}@localhost",
                             "-Q", contract.host_queue(host_name)], agent_env, log_dir / "agent-worker.log")
    bulk = Worker("bulk", [CELERY, "-A", "config", *common, f"bulk-{host_name}@localhost",
                           "-Q", contract.BULK_QUEUE], panel_env, log_dir / "bulk-worker.log")
    return Workers(host_name, panel, agent, stack, bulk)


def started(workers: Workers) -> Iterator[Workers]:
    for worker in (workers.panel, workers.bulk, workers.agent):
        if worker is not None:
            worker.mark()
            worker.start()
    try:
        yield workers
    finally:
        workers.agent.stop()
        if workers.bulk is not None:
            workers.bulk.stop()
        workers.panel.stop()


def make_beat(workers: Workers, log_dir: Path) -> Worker:
    """The panel's Celery beat (the reconcile every RECONCILE_SECONDS), as a process of its own
    beside the panel's worker, which runs what it sends; for the tests that measure the healing."""
    return Worker("beat", [CELERY, "-A", "config", "beat", "-l", "info", "-s", str(log_dir / "celerybeat-schedule"),
                           "--pidfile="], workers.panel.env, log_dir / "beat.log", ready="beat: Starting")
