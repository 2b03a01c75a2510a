"""The mailbox-login throttle against a real server: gunicorn (2 processes × 8 threads) on the
test database, hit by parallel wrong passwords. Each request comes from its own connection,
from a client address of our choice on the loopback network (127.0.0.x), all released at once.

The limits are set for the server process by environment: 5 failures per address, 10 per IP.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings

from mail.models import LoginThrottle
from mailhost.stack import tail
from tests.e2e.workers import database_url
from tests.factories import MAILBOX_PASSWORD, MailboxFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)  # committed rows: the server reads them

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
MAX_PER_ADDRESS = 5
MAX_PER_IP = 10
WRONG = "Invalid login."
REFUSED = "Too many failed attempts"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"the server died (exit {self.process.returncode}):\n{tail(self.log, 60)}")

    def connection(self, client_ip: str = "127.0.0.1") -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60, source_address=(client_ip, 0))

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def _wait_until_serving(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server.check_alive()
        try:
            conn = server.connection()
            conn.request("GET", "/login/")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the server did not answer within {timeout} s:\n{tail(server.log, 60)}")


@pytest.fixture(scope="module")
def server(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """gunicorn serving the panel on the test database; stopped at the end of the module."""
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "MAILBOX_LOGIN_"))}
    env.update({
        "DATABASE_URL": database_url(),
        "VAR_DIR": str(settings.VAR_DIR),
        "DEBUG": "1",  # static files without a collectstatic manifest; nothing else differs here
        "SECRET_KEY": secrets.token_urlsafe(32),
        "ALLOWED_HOSTS": "127.0.0.1",
        "MAILBOX_LOGIN_MAX_FAILURES": str(MAX_PER_ADDRESS),
        "MAILBOX_LOGIN_MAX_FAILURES_PER_IP": str(MAX_PER_IP),
        "MAILBOX_LOGIN_WINDOW_SECONDS": "300",
    })
    port = _free_port()
    argv = [GUNICORN, "config.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2",
            "--worker-class", "gthread", "--threads", "8", "--timeout", "120", "--access-logfile", "-"]
    with log.open("ab") as handle:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    running = Server(port, process, log)
    try:
        _wait_until_serving(running)
        yield running
    finally:
        running.stop()


@pytest.fixture
def live(server: Server) -> Server:
    server.check_alive()
    return server


def csrf_pair(server: Server) -> tuple[str, str]:
    """The CSRF cookie and the form's token, from one GET of the login page."""
    conn = server.connection()
    conn.request("GET", "/login/", headers={"Accept-Language": "en"})
    response = conn.getresponse()
    body = response.read().decode()
    cookie = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie") or "").group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1)
    return cookie, token


def parallel_logins(server: Server, attempts: list[tuple[str, str, str]]) -> Counter[str]:
    """POST every (client IP, account, password) at the same moment; count the answers."""
    cookie, token = csrf_pair(server)
    barrier = threading.Barrier(len(attempts))
    answers: list[str] = []

    def attempt(client_ip: str, account: str, password: str) -> None:
        conn = server.connection(client_ip)
        conn.connect()
        body = urlencode({"account": account, "domain": "", "password": password,
                          "csrfmiddlewaretoken": token})
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={cookie}",
                   "Accept-Language": "en"}
        barrier.wait()
        conn.request("POST", "/login/", body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode()
        answers.append(
            "wrong password" if WRONG in text else "too many attempts" if REFUSED in text
            else f"HTTP {response.status}"
        )

    threads = [threading.Thread(target=attempt, args=args) for args in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    server.check_alive()
    return Counter(answers)


def test_parallel_wrong_passwords_for_one_address_verify_at_most_the_limit(live, cast):
    MailboxFactory(domain=cast.a.domain, local_part="parallel")
    address = "parallel@alpha-domain.test"
    attempts = [(f"127.0.0.{10 + i}", address, f"Wrong-Password-{i}") for i in range(20)]  # 20 IPs

    answers = parallel_logins(live, attempts)

    stored = LoginThrottle.objects.get(key=f"addr:{address}").count
    print(f"\nper address: {len(attempts)} attempts sent, {answers['wrong password']} verified, "
          f"{answers['too many attempts']} refused, limit {MAX_PER_ADDRESS}, stored counter {stored}")
    assert answers == {"wrong password": MAX_PER_ADDRESS, "too many attempts": 20 - MAX_PER_ADDRESS}
    assert stored == 20


def test_parallel_wrong_passwords_from_one_ip_verify_at_most_the_ip_limit(live, cast):
    attempts = [("127.0.0.50", f"ghost{i}@alpha-domain.test", f"Wrong-Password-{i}") for i in range(40)]

    answers = parallel_logins(live, attempts)

    stored = LoginThrottle.objects.get(key="ip:127.0.0.50").count
    print(f"\nper IP: {len(attempts)} attempts sent, {answers['wrong password']} verified, "
          f"{answers['too many attempts']} refused, limit {MAX_PER_IP}, stored counter {stored}")
    assert answers == {"wrong password": MAX_PER_IP, "too many attempts": 40 - MAX_PER_IP}
    assert stored == 40


def test_the_right_password_logs_in_through_the_server_and_gives_its_slot_back(live, cast):
    attempts = [("127.0.0.60", "postmaster@alpha-domain.test", MAILBOX_PASSWORD)] * 3

    cookie, token = csrf_pair(live)
    statuses = []
    for client_ip, account, password in attempts:
        conn = live.connection(client_ip)
        conn.request("POST", "/login/", headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={cookie}",
        }, body=urlencode({"account": account, "password": password, "csrfmiddlewaretoken": token}))
        statuses.append(conn.getresponse().status)

    assert statuses == [302, 302, 302]
    assert LoginThrottle.objects.get(key="ip:127.0.0.60").count == 0
