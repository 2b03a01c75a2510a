"""The real mail stack (Postfix + Dovecot + mlmmj on 127.0.0.1), up once per test session.

As root the Debian packages are installed when missing; without root the e2e tests are skipped
with the precise reason (root is needed to start Postfix and Dovecot). Ports differ from the
developer defaults of `bin/mailstack` so that both can run at once (and when they are taken, by
another session's stack, the kernel picks free ones); override them with
MAILSTACK_E2E_SMTP_PORT, MAILSTACK_E2E_SUBMISSION_PORT, MAILSTACK_E2E_POP3_PORT,
MAILSTACK_E2E_IMAP_PORT, MAILSTACK_E2E_QUOTA_POLICY_PORT.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db.models import F

from hosting.models import Domain, MailHost, Pack, Plan, User
from hosting.services import customer_create, pack_create
from mail.models import Mailbox
from mail.services import mailbox_create
from mailhost.stack import (
    PORT_FIELDS,
    Stack,
    StackConfig,
    StackError,
    check_ports_free,
    down,
    install_packages,
    missing_packages,
    up,
)
from provisioning.dkim import dkim_key_ensure
from provisioning.domains import domain_create, domain_verify
from provisioning.models import DomainSync
from tests.e2e.mailclient import wait_for
from tests.e2e.workers import Workers, make_workers, started

E2E_PORTS = {
    "smtp_port": 22525,
    "submission_port": 22587,
    "pop3_port": 22110,
    "imap_port": 22143,
    "quota_policy_port": 32340,
    "list_smtp_port": 22526,
}


def _open_up(path: Path) -> None:
    """chmod 755 `path` and the parents pytest created 0700, so that users mail, postfix, list and
    dovecot can reach the stack root."""
    for directory in [path, *path.parents]:
        if directory.stat().st_mode & 0o001:
            break
        directory.chmod(0o755)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _e2e_config(root: Path) -> StackConfig:
    """E2E_PORTS (or MAILSTACK_E2E_* from the environment); when one of the defaults is taken
    (another session's stack), free ports chosen by the kernel instead."""
    ports = dict(E2E_PORTS)
    overridden = False
    for name in PORT_FIELDS:
        value = os.environ.get(f"MAILSTACK_E2E_{name.upper()}")
        if value:
            ports[name] = int(value)
            overridden = True
    config = StackConfig(root=root, **ports)
    if not overridden:
        try:
            check_ports_free(config)
        except StackError:
            config = StackConfig(root=root, **{name: _free_port() for name in PORT_FIELDS})
    return config


@pytest.fixture(scope="package")
def mail_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if os.geteuid() != 0:
        missing = missing_packages()
        reason = "the e2e mail stack needs root to start Postfix and Dovecot"
        if missing:
            reason += f"; Debian packages missing: {' '.join(missing)}"
        pytest.skip(reason)
    install_packages()  # a failure here is an error of the session, never a skip
    # Not under pytest's temporary folder: another pytest run on the machine makes that 0700
    # again, and the mail daemons (users mail, postfix, list, dovecot) would lose their way in.
    root = Path(tempfile.mkdtemp(prefix="mailpanel-e2e-"))
    _open_up(root)
    config = _e2e_config(root)
    stack = up(config)
    try:
        yield stack
    finally:
        down(config)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="package")
def workers(mail_stack: Stack, django_db_setup: None, django_db_blocker: object,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    """The panel's worker and the agent of this session's mail host, started once for the e2e
    tests and stopped after them: a worker left running would hold locks in the test database
    while later tests flush it."""
    log_dir = tmp_path_factory.mktemp("workers")
    yield from started(make_workers(mail_stack, log_dir))


@pytest.fixture(autouse=True)
def workers_alive(request: pytest.FixtureRequest) -> None:
    """Before each test that uses the workers: all alive (panel, bulk, agent), or the test fails at once with the
    dead one's log (rather than waiting for a report that cannot come)."""
    if "workers" not in request.fixturenames:
        return
    workers: Workers = request.getfixturevalue("workers")
    alive = [w for w in (workers.panel, workers.bulk, workers.agent) if w is not None]
    deaths = [death for death in (w.death() for w in alive) if death]
    if deaths:
        pytest.fail("\n\n".join(deaths), pytrace=False)


PASSWORD = "Panel-Password-2026"


@dataclass
class E2E:
    """One test's tenant on the real stack: an operator's customer with a pack on the session's
    mail host, and helpers to wait for the host's confirmation."""

    workers: Workers
    stack: Stack
    host: MailHost
    pack: Pack
    operator: User

    def domain(self, label: str = "") -> Domain:
        name = f"{label or 'd'}{secrets.token_hex(4)}.test"
        domain = domain_create(pack=self.pack, name=name, acting_user=self.operator)
        # Served by the stack: proven by hand (tests/e2e/test_ownership_e2e.py: unproven ones).
        domain_verify(domain=domain, acting_user=self.operator)
        self.mailbox(domain, "postmaster", is_admin=True)
        # Its DKIM key now (the bulk worker may be making it too: made once), so that no later
        # revision of the test's domain comes from that background task.
        dkim_key_ensure(domain)
        domain.refresh_from_db()
        return domain

    def mailbox(self, domain: Domain, local: str, password: str = PASSWORD, **fields: Any) -> Mailbox:
        return mailbox_create(domain=domain, local_part=local, password=password, real_name=local.title(),
                              acting_user=self.operator, **fields)

    def wait_applied(self, domain: Domain, timeout: float = 30) -> int:
        """Wait until the host confirms the domain's current revision; return it."""
        revision = Domain.objects.values_list("revision", flat=True).get(pk=domain.pk)

        def confirmed() -> bool:
            sync = DomainSync.objects.filter(domain_id=domain.pk).first()
            if sync and sync.error and sync.error_revision >= revision:
                raise AssertionError(f"the host failed: {sync.error}")
            return bool(sync and sync.applied_revision >= revision)

        wait_for(confirmed, timeout=timeout)
        return revision



@pytest.fixture
def e2e(workers: Workers, transactional_db: None) -> Iterator[E2E]:
    host, _created = MailHost.objects.get_or_create(name=workers.host_name, defaults={"fqdn": "127.0.0.1"})
    operator = User.objects.create_superuser(email=f"op{secrets.token_hex(3)}@panel.test", password=None)
    customer = customer_create(reseller=None, name="E2E customer", acting_user=operator)
    plan = Plan.objects.create(name=f"E2E {secrets.token_hex(3)}", max_domains=-1, max_mailboxes=-1,
                               max_forwards=-1, max_robots=-1, max_lists=-1, default_quota_mb=100)
    pack = pack_create(customer=customer, plan=plan, mail_host=host, acting_user=operator)
    yield E2E(workers, workers.stack, host, pack, operator)
    quiesce()


def quiesce(timeout: float = 15) -> None:
    """Before the test database is flushed: let the workers finish what the test set going
    (no push queued, every domain confirmed), so that no worker holds a lock during the flush."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = DomainSync.objects.filter(queued=True).exists() or DomainSync.objects.filter(
            applied_revision__lt=F("domain__revision"), error=""
        ).exists()
        if not busy:
            break
        time.sleep(0.1)
    time.sleep(0.3)  # the last report's transaction
