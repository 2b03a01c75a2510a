"""Benchmark: parallel creates of POP accounts in ONE pack, through the page, on a real server
(issue 15, item 12). A script with figures, not a timed test.

gunicorn (2 processes × 25 threads) serves the panel of the checkout this file is in, on its own
PostgreSQL database (made afresh); 50 client threads, each with its own connection and the
domain admin's session, are released together and each POSTs the "new POP account" page once
(a new name, a password argon2id hashes). Measured: each request's time until its answer (302:
created), p50 / p95 / p99 / max, the wall time of the 50, the sessions waiting on a lock
(`pg_stat_activity.wait_event_type = 'Lock'`, sampled every 20 ms during the run), and a change
that hashes nothing made in the same pack meanwhile (a new forward through its page, five one
after the other from 0.5 s after the release: it takes the pack's lock too). The machine's load
average is recorded beside: the hashing is CPU work, so other load moves every figure.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/mailpanel_bench_create \\
        .venv/bin/python bench/create_bench.py [--clients 50] [--label after] [--json out.json]
    .venv/bin/python bench/create_bench.py --report before.json after.json --write BENCHMARKS.md

"Before" is measured by copying this file into a checkout of the older commit (`git worktree add`)
and running it there: the server is always the checkout the script is in.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/mailpanel_bench_create"
PASSWORD = "Bench-Password-2026!"  # noqa: S105 - throw-away accounts of the benchmark
SECTION = "## Parallel creates in one pack, through the page (issue 15, item 12)"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_tenant(env: dict[str, str]) -> dict[str, object]:
    """Migrate and make one customer, one pack (no limit), one domain with its postmaster: in a
    child process (Django set up on the bench's database), printing the ids as JSON."""
    code = f"""
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from hosting.models import MailHost, Plan, User
from hosting.services import customer_create, pack_create
from mail.services import mailbox_create
from provisioning import domains
operator = User.objects.create_superuser(email="bench@panel.test", password=None)
host = MailHost.objects.create(name="mx-bench", fqdn="127.0.0.1")
plan = Plan.objects.create(name="Bench", max_domains=-1, max_mailboxes=-1, max_forwards=-1, max_robots=-1,
                           max_lists=-1, default_quota_mb=100)
customer = customer_create(reseller=None, name="Bench customer", acting_user=operator)
pack = pack_create(customer=customer, plan=plan, mail_host=host, acting_user=operator)
domain = domains.domain_create(pack=pack, name="bench-create.test", acting_user=operator)
if hasattr(domains, "domain_verify"):
    domains.domain_verify(domain=domain, acting_user=operator)
mailbox_create(domain=domain, local_part="postmaster", password={PASSWORD!r}, is_admin=True, acting_user=operator)
print(json.dumps({{"domain": domain.pk}}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,  # noqa: S603
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


class Server:
    def __init__(self, env: dict[str, str], log: Path, workers: int, threads: int) -> None:
        self.port = _free_port()
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        argv = [gunicorn, "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
                "--worker-class", "gthread", "--threads", str(threads), "--timeout", "120",
                "--backlog", "256"]
        self.log = log
        with log.open("ab") as handle:
            self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=handle,  # noqa: S603 - our argv
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn died:\n{log.read_text()[-3000:]}")
            try:
                conn = self.connection()
                conn.request("GET", "/login/")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit("gunicorn did not answer within 60 s")

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def login(server: Server) -> tuple[str, str]:
    """The domain admin's session cookie and a CSRF pair, from the login page."""
    conn = server.connection()
    conn.request("GET", "/login/")
    response = conn.getresponse()
    body = response.read().decode()
    csrf = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie") or "").group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1)
    conn = server.connection()
    conn.request("POST", "/login/", body=urlencode({
        "account": "postmaster@bench-create.test", "password": PASSWORD, "csrfmiddlewaretoken": token,
    }), headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={csrf}"})
    response = conn.getresponse()
    response.read()
    assert response.status == 302, response.status
    session = re.search(r"sessionid=([^;]+)", response.getheader("Set-Cookie") or "").group(1)
    return f"csrftoken={csrf}; sessionid={session}", token


def create(server: Server, url: str, cookie: str, token: str, name: str) -> tuple[float, int]:
    conn = server.connection()
    conn.connect()
    body = urlencode({"local_part": name, "password1": PASSWORD, "password2": PASSWORD, "csrfmiddlewaretoken": token})
    start = time.perf_counter()
    conn.request("POST", url, body=body, headers={"Content-Type": "application/x-www-form-urlencoded",
                                                  "Cookie": cookie})
    response = conn.getresponse()
    response.read()
    return time.perf_counter() - start, response.status


def forwards_meanwhile(server: Server, url: str, cookie: str, token: str, times: list[float]) -> None:
    time.sleep(0.5)
    for i in range(5):
        conn = server.connection()
        conn.connect()
        body = urlencode({"local_part": f"fwd{i}", "destinations": "someone@elsewhere.test",
                          "csrfmiddlewaretoken": token})
        start = time.perf_counter()
        conn.request("POST", url, body=body, headers={"Content-Type": "application/x-www-form-urlencoded",
                                                      "Cookie": cookie})
        response = conn.getresponse()
        response.read()
        assert response.status == 302, response.status
        times.append(time.perf_counter() - start)


def lock_waiters(database_url: str, stop: threading.Event, samples: list[int]) -> None:
    import psycopg

    name = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(database_url, autocommit=True) as conn:
        while not stop.is_set():
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                               (name,)).fetchone()
            samples.append(int(row[0]))
            time.sleep(0.02)


def run(args: argparse.Namespace) -> dict[str, object]:
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    fresh_database(database_url)
    Path(args.var_dir).mkdir(parents=True, exist_ok=True)
    log = Path(args.log or Path(args.var_dir) / "gunicorn.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "MAILBOX_LOGIN_"))}
    env.update({"DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "1",
                "SECRET_KEY": secrets.token_urlsafe(32), "ALLOWED_HOSTS": "127.0.0.1",
                "VAR_DIR": args.var_dir, "MAILBOX_LOGIN_MAX_FAILURES_PER_IP": "1000"})
    ids = setup_tenant(env)
    server = Server(env, log, args.workers, args.threads)
    try:
        cookie, token = login(server)
        url = f"/domains/{ids['domain']}/accounts/new/"
        for i in range(3):  # warm: every process's imports, templates, connections
            create(server, url, cookie, token, f"warm{i}")
        barrier = threading.Barrier(args.clients)
        results: list[tuple[float, int]] = []
        lock = threading.Lock()

        def client(i: int) -> None:
            barrier.wait()
            result = create(server, url, cookie, token, f"user{i:03d}")
            with lock:
                results.append(result)

        stop, samples, forward_times = threading.Event(), [], []
        sampler = threading.Thread(target=lock_waiters, args=(database_url, stop, samples))
        sampler.start()
        forwarder = threading.Thread(target=forwards_meanwhile, args=(
            server, f"/domains/{ids['domain']}/forwards/new/", cookie, token, forward_times))
        load_before = os.getloadavg()[0]
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        forwarder.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
        forwarder.join()
        stop.set()
        sampler.join()
    finally:
        server.stop()
    times = [t for t, _status in results]
    statuses = sorted({status for _t, status in results})
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,  # noqa: S607
                            capture_output=True, text=True).stdout.strip()
    return {
        "label": args.label, "commit": commit, "clients": args.clients, "statuses": statuses,
        "created": sum(1 for _t, s in results if s == 302), "p50": statistics.median(times), "p95": pct(times, 95),
        "p99": pct(times, 99), "max": max(times), "wall": wall,
        "lock_waiters_mean": statistics.mean(samples) if samples else 0.0,
        "lock_waiters_max": max(samples) if samples else 0,
        "server": f"gunicorn {args.workers} × {args.threads} threads",
        "forward_p50": statistics.median(forward_times), "forward_max": max(forward_times),
        "load": load_before,
    }


def table(results: list[dict[str, object]]) -> list[str]:
    lines = ["| code | created (302) | p50 | p95 | p99 | max | the 50, wall | sessions waiting on a lock: "
             "mean (max) | a new forward meanwhile: p50 (max) | load average |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['label']} ({r['commit']}) | {r['created']}/{r['clients']} | {r['p50']:.2f} s | "
                     f"{r['p95']:.2f} s | {r['p99']:.2f} s | {r['max']:.2f} s | {r['wall']:.2f} s | "
                     f"{r['lock_waiters_mean']:.1f} ({r['lock_waiters_max']}) | "
                     f"{r['forward_p50']:.2f} s ({r['forward_max']:.2f} s) | {r['load']:.1f} |")
    return lines


def write(path: Path, results: list[dict[str, object]]) -> None:
    text = path.read_text() if path.exists() else ""
    section = [SECTION, "", *table(results), "", f"Server: {results[-1]['server']}, PostgreSQL, one pack; "
               f"`bench/create_bench.py` (see its docstring for how to rerun both)."]
    if SECTION in text:
        before, _sep, rest = text.partition(SECTION)
        after = rest.split("\n## ", 1)
        text = before + "\n".join(section) + "\n" + (("\n## " + after[1]) if len(after) > 1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(section) + "\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=25)
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--var-dir", default=str(ROOT / "var" / "bench-create"))
    parser.add_argument("--log", help="gunicorn's log (default: gunicorn.log in --var-dir)")
    parser.add_argument("--report", nargs="+", help="JSON files of earlier runs, in order")
    parser.add_argument("--write", help="replace or append the section in this Markdown file")
    args = parser.parse_args()
    results = [json.loads(Path(p).read_text()) for p in args.report] if args.report else [run(args)]
    if args.json and not args.report:
        Path(args.json).write_text(json.dumps(results[0], indent=1))
    print("\n".join(table(results)))
    if args.write:
        write(Path(args.write), results)


if __name__ == "__main__":
    main()
