"""What rspamd (Postfix's milter: DKIM signing, ARC, its scan) adds to a delivery on the test stack
(a script with figures, not a timed test).

Brings up a test stack of its own (Postfix, Dovecot, rspamd on free 127.0.0.1 ports), gives the
host a domain with a DKIM key (the agent's own apply: key file and maps), waits until rspamd has
read its maps, then sends RUNS messages from 127.0.0.1 ("local" mail: signed) from that domain to
an outside address (the sink), one SMTP transaction each, and times each transaction (connect to
the server's answer to the end of DATA: where the milter works). Then the same without the
milter (`smtpd_milters` emptied, Postfix reloaded). Prints p50 / p95 / max of both and the
difference; every message of the first run is checked signed at the sink.

Run as root (it starts the daemons), about a minute:
    .venv/bin/python bench/rspamd_bench.py [--runs 300]
"""

from __future__ import annotations

import argparse
import shutil
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from mailhost import contract  # noqa: E402
from mailhost.apply import HostConfig, apply  # noqa: E402
from mailhost.stack import PORT_FIELDS, StackConfig, down, up  # noqa: E402
from mailhost.stack.config import sink_dirname  # noqa: E402
from mailhost.stack.processes import run_postfix  # noqa: E402

DOMAIN = "bench-signed.test"
SELECTOR = "mp20261208"
SINK = "reader@elsewhere.test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def message(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"writer@{DOMAIN}"
    msg["To"] = SINK
    msg["Subject"] = f"bench {n}"
    msg["Message-ID"] = f"<bench.{n}.{time.time_ns()}@{DOMAIN}>"
    msg.set_content("A line of text.\n" * 40)
    return msg.as_bytes()


def timed_sends(config: StackConfig, runs: int, start: int) -> list[float]:
    seconds = []
    for n in range(start, start + runs):
        data = message(n)
        t0 = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", config.smtp_port, "bench.client", timeout=30) as smtp:
            smtp.sendmail(f"writer@{DOMAIN}", [SINK], data)
        seconds.append(time.perf_counter() - t0)
    return seconds


def summary(name: str, seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    p50 = statistics.median(ordered) * 1000
    p95 = ordered[int(len(ordered) * 0.95) - 1] * 1000
    print(f"{name}: {len(ordered)} messages, p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {ordered[-1] * 1000:.1f} ms")
    return p50, p95


def wait(predicate, timeout: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="rspamd-bench-", dir="/tmp"))
    root.chmod(0o755)
    config = StackConfig(root=root, **{name: free_port() for name in PORT_FIELDS})
    t0 = time.monotonic()
    up(config)
    print(f"stack up in {time.monotonic() - t0:.1f} s (rspamd's first start on a machine compiles its expressions)")
    try:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
        apply({"format": contract.FORMAT, "domain": DOMAIN, "revision": 1, "state": "present", "verified": True,
               "mailboxes": [], "dkim": {"selector": SELECTOR, "private_key": key}},
              HostConfig(name="bench", root=root, postfix_dir=config.postfix_dir))
        log = root / "log" / "rspamd.log"
        if not wait(lambda: log.read_text(errors="replace").count("read hash of 1 elements") >= 2, 30):
            print("rspamd did not read the DKIM maps", file=sys.stderr)
            return 1
        timed_sends(config, 20, 0)  # warm-up (connections, caches)
        with_milter = timed_sends(config, args.runs, 100)
        sink = config.sink_root / sink_dirname(SINK)
        wait(lambda: len(list(sink.glob("*.eml"))) >= args.runs + 20, 60)
        signed = sum(b"DKIM-Signature:" in path.read_bytes() for path in sink.glob("*.eml"))
        print(f"signed at the sink: {signed} of {len(list(sink.glob('*.eml')))}")
        subprocess.run(["/usr/sbin/postconf", "-c", str(config.postfix_dir), "-e", "smtpd_milters="], check=True)  # noqa: S603
        run_postfix(config, "reload")
        time.sleep(2)
        timed_sends(config, 20, 10_000)
        without = timed_sends(config, args.runs, 20_000)
        p50a, p95a = summary("with rspamd (DKIM signing, ARC, scan)", with_milter)
        p50b, p95b = summary("without the milter", without)
        print(f"rspamd adds: p50 {p50a - p50b:+.1f} ms, p95 {p95a - p95b:+.1f} ms")
    finally:
        down(config)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
