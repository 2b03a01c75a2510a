"""A real DNS server for the tests: Debian's dnsmasq on 127.0.0.1, on a free port, answering with
the records a test gives it (`bin/setup --dev` installs package dnsmasq-base).

`dns_server` (a fixture: import it into a test module) starts one with no record and points the
panel's resolver (setting DNS_RESOLVER) at it; `publish(txt=..., mx=...)` restarts it with those
records. It answers only from them (`--local`: no other server is asked, a name it has no record
of does not exist); the server stops with the test.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import pytest

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
HOST = "127.0.0.1"


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (dnsmasq listens on both)."""
    for _attempt in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((HOST, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((HOST, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port for the DNS server")


class DnsServer:
    """dnsmasq serving fixed records for the zones `local` (names under them that have no record
    do not exist: NXDOMAIN)."""

    def __init__(self, log_dir: Path, local: tuple[str, ...] = ("test",)) -> None:
        self.port = free_port()
        self.local = local
        self.log = log_dir / "dnsmasq.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """The value of the DNS_RESOLVER setting that asks this server."""
        return f"{HOST}:{self.port}"

    def publish(self, *, txt: dict[str, list[str]] | None = None, mx: dict[str, list[str]] | None = None,
                a: dict[str, list[str]] | None = None) -> None:
        """Serve exactly these records (every previous one is forgotten): TXT texts by name, MX
        hosts by domain (preference in the order given), A and AAAA addresses by name."""
        args = [
            DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
            "--no-poll", f"--port={self.port}", f"--listen-address={HOST}", "--bind-interfaces",
            "--pid-file=", "--cache-size=0", f"--log-facility={self.log}", "--log-queries",
            *(f"--local=/{zone}/" for zone in self.local),
        ]
        for name, texts in (txt or {}).items():
            args += [f"--txt-record={name},{text}" for text in texts]
        for domain, hosts in (mx or {}).items():
            args += [f"--mx-host={domain},{host},{10 * (i + 1)}" for i, host in enumerate(hosts)]
        for name, found in (a or {}).items():
            args += [f"--host-record={name},{address}" for address in found]
        self.stop()
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 10
        query = dns.message.make_query("ready.invalid.", "A")
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                detail = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"dnsmasq exited: {detail}")
            try:
                dns.query.udp(query, HOST, port=self.port, timeout=0.2)
                return
            except (OSError, dns.exception.Timeout):
                time.sleep(0.05)
        raise RuntimeError("dnsmasq did not answer within 10 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


@pytest.fixture
def dns_server(tmp_path: Path, settings: object) -> Iterator[DnsServer]:
    """A real DNS server for this test, the panel's resolver pointed at it; no record until
    `publish`."""
    if not Path(DNSMASQ).exists():
        pytest.skip("dnsmasq is not installed (bin/setup --dev installs the Debian package dnsmasq-base)")
    server = DnsServer(tmp_path)
    server.publish()
    settings.DNS_RESOLVER = server.address  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()
