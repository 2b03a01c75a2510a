"""POP3 logins a second on the real stack (a script with figures, not a timed test): issue 18, item 7.

Each case starts from a fresh test stack (mailhost.stack: Postfix + Dovecot on 127.0.0.1), writes
MAILBOXES mailboxes into its maps database with one kind of password hash, sets Dovecot's auth
cache and auth worker count, then runs CLIENTS threads that each log in over POP3 (USER, PASS,
QUIT; a mailbox drawn at random) for SECONDS. Reported: logins a second, and the CPU one login
costs (the CPU time of the stack's Dovecot processes during the run, from /proc, divided by the
logins: the other loads of a shared machine are left out), hence the cores 10,000 mailboxes
polling every 5 minutes (33.3 logins a second) would keep busy.

Run as root (it starts Postfix and Dovecot), about 2 minutes:
    .venv/bin/python bench/logins_bench.py [--seconds 10] [--clients 8] [--write BENCHMARKS.md]
127.0.0.1 only; nothing of the panel's database is touched.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import poplib
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bcrypt  # noqa: E402
from argon2 import PasswordHasher  # noqa: E402
from passlib.hash import sha512_crypt  # noqa: E402

from mailhost.stack import StackConfig, dovecot_master_pid, down, templates, up  # noqa: E402
from mailhost.stack.processes import run  # noqa: E402

DOMAIN = "logins.test"
PASSWORD = "Bench-Password-2026"  # noqa: S105 - the bench's throwaway mailboxes
MAILBOXES = 200
POLLING_LOGINS_PER_SECOND = 10_000 / 300  # 10,000 mailboxes, every 5 minutes
PORTS = {"smtp_port": 42625, "submission_port": 42687, "pop3_port": 42610, "imap_port": 42643,
         "quota_policy_port": 42640, "doveadm_port": 42624}


@dataclass(frozen=True)
class Case:
    name: str
    scheme: str  # how the hashes are made (hash_of)
    cache: bool  # Dovecot's auth cache on (size 10M, ttl 1 hour, verified by the auth workers)
    workers: int = 0  # auth-worker process_limit (0: Dovecot's default, 30)
    login_reuse: bool = False  # pop3-login in Dovecot's "high-performance" mode (one process, many logins)


CASES_ALL = [
    Case("argon2id t=3 m=64MiB (before), no cache", "argon2id-t3-m64", cache=False),
    Case("argon2id t=3 m=64MiB, auth cache", "argon2id-t3-m64", cache=True),
    Case("argon2id t=2 m=19MiB (OWASP's minimum), no cache", "argon2id-t2-m19", cache=False),
    Case("argon2id t=2 m=19MiB, auth cache", "argon2id-t2-m19", cache=True),
    Case("argon2id t=1 m=16MiB, no cache", "argon2id-t1-m16", cache=False),
    Case("argon2id t=2 m=19MiB, auth cache, 2 auth workers", "argon2id-t2-m19", cache=True, workers=2),
    Case("BLF-CRYPT cost 10, no cache", "blf-10", cache=False),
    Case("SHA512-CRYPT 5000 rounds, no cache", "sha512-crypt", cache=False),
    Case("SHA512-CRYPT 5000 rounds, login processes reused", "sha512-crypt", cache=False, login_reuse=True),
    Case("argon2id t=2 m=19MiB, auth cache, login processes reused", "argon2id-t2-m19", cache=True, login_reuse=True),
]


CASES = [c for c in CASES_ALL if not os.environ.get("LOGINS_ONLY") or os.environ["LOGINS_ONLY"] in c.name]


def hash_of(scheme: str) -> str:
    if scheme == "argon2id-t3-m64":
        return "{ARGON2ID}" + PasswordHasher(time_cost=3, memory_cost=65536, parallelism=1).hash(PASSWORD)
    if scheme == "argon2id-t2-m19":
        return "{ARGON2ID}" + PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash(PASSWORD)
    if scheme == "sha512-crypt":
        return "{SHA512-CRYPT}" + sha512_crypt.using(rounds=5000).hash(PASSWORD)
    if scheme == "argon2id-t1-m16":
        return "{ARGON2ID}" + PasswordHasher(time_cost=1, memory_cost=16384, parallelism=1).hash(PASSWORD)
    if scheme == "blf-10":
        return "{BLF-CRYPT}" + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode()
    raise ValueError(scheme)


def auth_settings(case: Case) -> str:
    lines = []
    if case.cache:
        lines += ["auth_cache_size = 10M", "auth_cache_ttl = 1 hour", "auth_cache_negative_ttl = 0",
                  "auth_cache_verify_password_with_worker = yes"]
    else:
        lines += ["auth_cache_size = 0"]
    if case.workers:
        lines += ["service auth-worker {", f"  process_limit = {case.workers}", "}"]
    if case.login_reuse:
        lines += ["service pop3-login {", "  service_count = 0", "  process_min_avail = 2", "}"]
    return "\n".join(lines) + "\n"


def prepare(config: StackConfig, case: Case) -> None:
    """The case's Dovecot settings and mailboxes (every one with the same hash: the cost is the
    verification's, whatever the salt)."""
    text = templates.dovecot_conf(config).replace("auth_cache_size = 0\n", auth_settings(case))
    config.dovecot_conf.write_text(text)
    run(["doveadm", "-c", str(config.dovecot_conf), "reload"], "doveadm reload")
    stored = hash_of(case.scheme)
    db = sqlite3.connect(config.maps_db)
    with db:
        db.execute("DELETE FROM mailboxes WHERE domain = ?", (DOMAIN,))
        db.execute("INSERT OR REPLACE INTO domains(domain, active, revision) VALUES (?, 1, 1)", (DOMAIN,))
        db.executemany(
            "INSERT INTO mailboxes(email, domain, password_hash, home) VALUES (?, ?, ?, ?)",
            [(f"u{n}@{DOMAIN}", DOMAIN, stored, f"{config.vmail_root}/{DOMAIN}/u{n}") for n in range(MAILBOXES)])
    db.close()
    time.sleep(1.5)  # Dovecot's reload: new auth processes


def dovecot_jiffies(master: int) -> int:
    """CPU jiffies (user + system) of this stack's Dovecot: its master with every child it reaped
    (cutime, cstime: the POP3 sessions that ended), and its living children (auth, auth workers,
    login processes). Other loads of the machine are not counted; the clients are not either."""
    def times(pid: int) -> list[int]:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return [int(v) for v in fields[11:15]]  # utime stime cutime cstime

    total = sum(times(master))
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == master:  # ppid
                total += sum(times(int(entry.name)))
        except (OSError, ValueError):
            continue  # ended meanwhile: counted in the master's cutime
    return total


def load(config: StackConfig, clients: int, seconds: float) -> tuple[int, int, float]:
    """(logins, failures, CPU seconds busy) of `clients` threads logging in for `seconds`."""
    done = [0] * clients
    failed = [0] * clients
    stop = time.monotonic() + seconds

    def client(k: int) -> None:
        rng = random.Random(k)  # noqa: S311 - which mailbox logs in next, nothing secret
        while time.monotonic() < stop:
            try:
                pop = poplib.POP3("127.0.0.1", config.pop3_port, timeout=30)
                pop.user(f"u{rng.randrange(MAILBOXES)}@{DOMAIN}")
                pop.pass_(PASSWORD)
                pop.quit()
                done[k] += 1
            except (poplib.error_proto, OSError):
                failed[k] += 1

    hz = os.sysconf("SC_CLK_TCK")
    master = dovecot_master_pid(config)
    assert master is not None, "Dovecot is not running"
    busy0 = dovecot_jiffies(master)
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    busy1 = dovecot_jiffies(master)
    return sum(done), sum(failed), (busy1 - busy0) / hz


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--write", type=Path, help="append the table to this Markdown file")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root: it starts Postfix and Dovecot", file=sys.stderr)
        return 1
    cores = os.cpu_count() or 1
    root = Path(tempfile.mkdtemp(prefix="logins-bench-", dir="/tmp"))
    root.chmod(0o755)
    fields = {field.name for field in dataclasses.fields(StackConfig)}
    extra = {"list_smtp_port": 42626} if "list_smtp_port" in fields else {}  # a stack with mlmmj's own port
    config = StackConfig(root=root, **PORTS, **extra)
    rows = []
    try:
        up(config)
        for case in CASES:
            prepare(config, case)
            load(config, 2, 1.0)  # warm-up: first logins, the cache's first entries
            logins, failed, busy = load(config, args.clients, args.seconds)
            rate = logins / args.seconds
            per_login_ms = 1000 * busy / logins if logins else float("nan")
            polling_cores = POLLING_LOGINS_PER_SECOND * busy / logins if logins else float("nan")
            rows.append((case.name, rate, per_login_ms, polling_cores, failed))
            print(f"{case.name}: {rate:.0f} logins/s, {per_login_ms:.1f} ms CPU a login, "
                  f"{polling_cores:.2f} cores for 33 logins/s ({failed} failed)", flush=True)
    finally:
        down(config)
        shutil.rmtree(root, ignore_errors=True)
    table = [
        f"POP3 logins on the test stack ({cores} cores, {args.clients} clients, {args.seconds:.0f} s a case, "
        f"{MAILBOXES} mailboxes; CPU: Dovecot's processes' time / logins):",
        "",
        "| case | logins/s | CPU a login | cores for 10,000 mailboxes every 5 min (33 logins/s) | failed |",
        "|---|---|---|---|---|",
        *[f"| {name} | {rate:.0f} | {ms:.1f} ms | {need:.2f} | {failed} |" for name, rate, ms, need, failed in rows],
    ]
    print("\n".join(table))
    if args.write:
        with args.write.open("a", encoding="utf-8") as out:
            out.write("\n" + "\n".join(table) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
