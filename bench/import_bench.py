"""Member imports benchmark (issue 15, item 4): a script with figures, not a timed test.

Measures:
  1. the address parser on the hostile paste (2,000 lines of `a`, spaces, `b`): the time to
     read it (lists.imports.candidates + normalize on every line, what the request does before
     writing) with the parser before (the backtracking pattern, kept here) and now, and the whole
     import in the request now;
  2. isolation, on the real stack with real workers: another tenant's change (one mailbox's
     access switched by its service function) until the host confirms it, with no import, with
     one import of about 5 MB running, and with that one running and 4 more queued. "Before":
     imports on the panel's queue and its one worker, as before issue 15; "after": imports on the
     bulk queue (contract.BULK_QUEUE) and its own worker, as bin/run starts them.

Run as root (it starts Postfix, Dovecot and the Celery workers):
    .venv/bin/python bench/import_bench.py [--lines 190000] [--write BENCHMARKS.md]
It uses its own database (BENCH_DATABASE_URL, default a SQLite file under VAR_DIR) and the broker
the settings select (REDIS_URL for Redis, else the embedded SQLite broker under VAR_DIR).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VAR = Path(os.environ.get("VAR_DIR", ROOT / "var"))
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{VAR / 'import-bench.sqlite3'}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "0")  # as in production (its workers too)
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))
os.environ["IMPORTS_IN_FLIGHT"] = "10"  # five imports of one customer at once, for the queued case

import django  # noqa: E402

django.setup()

from django.core.exceptions import ValidationError  # noqa: E402
from django.core.management import call_command  # noqa: E402

from hosting.models import Domain, MailHost, Plan, User  # noqa: E402
from hosting.services import customer_create, pack_create  # noqa: E402
from lists import imports  # noqa: E402
from lists.models import ImportState, MemberImport  # noqa: E402
from lists.services import list_create  # noqa: E402
from mail.services import mailbox_create, mailbox_set_access  # noqa: E402
from mailhost import contract  # noqa: E402
from mailhost.stack import PORT_FIELDS, StackConfig, down, install_packages, up  # noqa: E402
from provisioning.domains import domain_create  # noqa: E402
from provisioning.models import DomainSync  # noqa: E402
from tests.e2e.workers import make_workers  # noqa: E402

try:  # issue 15 item 2: a domain is served once proven; the benchmark's are, by hand
    from provisioning.domains import domain_verify  # noqa: E402
except ImportError:  # pragma: no cover - before ownership proofs
    domain_verify = None

OLD_ANGLE = re.compile(r'^(?:"[^"]*"|[^"<>]*)\s*<([^<>]*)>$')  # the parser's pattern before issue 15
PASSWORD = "Bench-Password-2026"  # noqa: S105 - a throw-away mailbox of the benchmark
QUEUED = 4


def best_of(runs: int, call: Callable[[], Any]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def read_all(text: str, source: str) -> int:
    invalid = 0
    for _number, line in imports.candidates(text, source):
        try:
            imports.normalize(line) if len(line) <= imports.MAX_LINE else None
        except ValidationError:
            invalid += 1
    return invalid


def old_angle(text: str) -> str | None:
    match = OLD_ANGLE.match(text)
    return match.group(1) if match else None


def bench_parser(operator: User, pack: Any) -> dict[str, float]:
    hostile = "\n".join(["a" + " " * 998 + "b"] * imports.INLINE_LINES)
    new = imports.angle_address
    figures = {}
    for source in ("paste", "csv"):
        figures[f"new_{source}"] = best_of(3, lambda source=source: read_all(hostile, source))
        imports.angle_address = old_angle
        try:
            figures[f"old_{source}"] = best_of(3, lambda source=source: read_all(hostile, source))
        finally:
            imports.angle_address = new
    domain = make_domain(pack, operator, "parse")
    news = list_create(domain=domain, name="hostile", owner=f"postmaster@{domain.name}", acting_user=operator)
    figures["request"] = best_of(3, lambda: imports.member_import(mailing_list=news, kind="subscriber", text=hostile,
                                                                  acting_user=operator))
    figures["bytes"] = len(hostile)
    return figures


def make_domain(pack: Any, operator: User, label: str) -> Domain:
    domain = domain_create(pack=pack, name=f"{label}{secrets.token_hex(3)}.test", acting_user=operator)
    if domain_verify is not None:
        domain_verify(domain=domain, acting_user=operator)
    mailbox_create(domain=domain, local_part="postmaster", password=PASSWORD, is_admin=True, acting_user=operator)
    return domain


def wait_applied(domain_id: int, timeout: float = 900) -> float:
    revision = Domain.objects.values_list("revision", flat=True).get(pk=domain_id)
    deadline = time.monotonic() + timeout
    while not DomainSync.objects.filter(domain_id=domain_id, applied_revision__gte=revision).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"domain {domain_id} not applied in {timeout} s")
        time.sleep(0.02)
    return time.monotonic()


class Change:
    """Another tenant's change: one mailbox's POP3 switch, until its host confirms it."""

    def __init__(self, pack: Any, operator: User) -> None:
        self.operator = operator
        self.domain = make_domain(pack, operator, "other")
        self.mailbox = mailbox_create(domain=self.domain, local_part="alice", password=PASSWORD,
                                      acting_user=operator)
        self.pop3 = True
        wait_applied(self.domain.pk)

    def timed(self) -> float:
        self.pop3 = not self.pop3
        start = time.monotonic()
        mailbox_set_access(mailbox=self.mailbox, allow_pop3=self.pop3, acting_user=self.operator)
        return wait_applied(self.domain.pk) - start


def bench_isolation(mode: str, stack: Any, log_dir: Path, lines: int, runs: int) -> dict[str, Any]:
    """One mode's figures: "before" (imports on the panel's queue and its one worker) or "after"
    (the bulk queue and its worker)."""
    workers = make_workers(stack, log_dir / mode)
    (log_dir / mode).mkdir(parents=True, exist_ok=True)
    started = [workers.panel, workers.agent] + ([workers.bulk] if mode == "after" and workers.bulk else [])
    send_task = imports.panel_app.send_task
    if mode == "before":  # as the code was: the import task on the panel's queue
        def old_send(name: str, *rest: Any, **options: Any) -> Any:
            if name == imports.TASK:
                options["queue"] = contract.PANEL_QUEUE
            return send_task(name, *rest, **options)

        imports.panel_app.send_task = old_send
    for worker in started:
        worker.mark()
        worker.start()
    try:
        host, _ = MailHost.objects.get_or_create(name=workers.host_name, defaults={"fqdn": "127.0.0.1"})
        operator = User.objects.get(email="bench@panel.test")
        plan = Plan.objects.get(name="Import bench")
        tenant = pack_create(customer=customer_create(reseller=None, name=f"Importer {mode}", acting_user=operator),
                             plan=plan, mail_host=host, acting_user=operator)
        other = pack_create(customer=customer_create(reseller=None, name=f"Other {mode}", acting_user=operator),
                            plan=plan, mail_host=host, acting_user=operator)
        change = Change(other, operator)
        idle = [change.timed() for _ in range(runs)]
        text = "\n".join(f"reader{n}@example{n % 97}.test" for n in range(lines))
        lists_domain = make_domain(tenant, operator, "lists")
        lists = [list_create(domain=lists_domain, name=f"news{i}", owner=f"postmaster@{lists_domain.name}",
                             acting_user=operator) for i in range(1 + QUEUED)]
        wait_applied(lists_domain.pk)

        def run(count: int) -> tuple[float, float]:
            jobs = [imports.member_import(mailing_list=ml, kind="subscriber", text=text, acting_user=operator)
                    for ml in lists[:count]]
            start = time.monotonic()
            while not MemberImport.objects.filter(pk__in=[j.pk for j in jobs], done__gt=0).exists():
                time.sleep(0.05)
            waited = change.timed()
            while MemberImport.objects.filter(pk__in=[j.pk for j in jobs], state=ImportState.RUNNING).exists():
                time.sleep(0.2)
            elapsed = time.monotonic() - start
            for ml in lists[:count]:
                ml.members.all().delete()
            return waited, elapsed

        one, one_total = run(1)
        queued, queued_total = run(1 + QUEUED)
        wait_applied(lists_domain.pk)
        return {"idle": statistics.median(idle), "one": one, "one_import": one_total, "queued": queued,
                "queued_imports": queued_total, "bytes": len(text)}
    finally:
        imports.panel_app.send_task = send_task
        for worker in reversed(started):
            worker.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=190_000, help="addresses of each import (190,000: 5 MB)")
    parser.add_argument("--runs", type=int, default=5, help="changes timed with no import running")
    parser.add_argument("--write", help="append the figures to this Markdown file")
    parser.add_argument("--skip-stack", action="store_true", help="the parser's figures only")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    operator = User.objects.filter(email="bench@panel.test").first() or User.objects.create_superuser(
        email="bench@panel.test", password=None)
    plan, _ = Plan.objects.get_or_create(name="Import bench", reseller=None, defaults=dict(
        max_domains=-1, max_mailboxes=-1, max_forwards=-1, max_robots=-1, max_lists=-1, max_list_members=-1))
    local_host, _ = MailHost.objects.get_or_create(name="bench-local", defaults={"fqdn": "127.0.0.1"})
    parse_pack = pack_create(customer=customer_create(reseller=None, name="Parser", acting_user=operator), plan=plan,
                             mail_host=local_host, acting_user=operator)
    parsing = bench_parser(operator, parse_pack)
    print(parsing)

    isolation: dict[str, dict[str, Any]] = {}
    if not args.skip_stack:
        install_packages()
        root = Path(tempfile.mkdtemp(prefix="mailpanel-import-bench-"))
        root.chmod(0o755)
        config = StackConfig(root=root, **{name: free_port() for name in PORT_FIELDS})
        stack = up(config)
        log_dir = Path(tempfile.mkdtemp(prefix="mailpanel-import-bench-logs-"))
        try:
            for mode in ("before", "after"):
                isolation[mode] = bench_isolation(mode, stack, log_dir, args.lines, args.runs)
                print(mode, isolation[mode])
        finally:
            down(config)
            shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(log_dir, ignore_errors=True)  # kept when the run failed: the workers' logs

    broker = "Redis" if os.environ.get("REDIS_URL") else "embedded SQLite broker"
    database = "PostgreSQL" if os.environ["DATABASE_URL"].startswith("postgres") else "SQLite"
    lines = [
        f"## Member imports benchmark — {time.strftime('%Y-%m-%d')} ({database}, {broker}, {os.cpu_count()} cores)",
        "",
        "`.venv/bin/python bench/import_bench.py --write BENCHMARKS.md` (root: real stack, real workers).",
        "",
        f"The hostile paste: {imports.INLINE_LINES:,} lines of `a`, 998 spaces and `b` "
        f"({parsing['bytes'] / 1e6:.1f} MB), every line read and checked (best of 3).",
        "",
        "| reading the hostile paste | before (backtracking pattern) | after (`angle_address`) |",
        "|---|---|---|",
        f"| as a paste | {parsing['old_paste']:.2f} s | {parsing['new_paste'] * 1000:.0f} ms |",
        f"| as a CSV upload | {parsing['old_csv']:.2f} s | {parsing['new_csv'] * 1000:.0f} ms |",
        f"| the whole import in the request (after: read, checked, report written) | — | "
        f"{parsing['request'] * 1000:.0f} ms |",
        "",
    ]
    if isolation:
        before, after = isolation["before"], isolation["after"]
        mb = after["bytes"] / 1e6
        lines += [
            f"Another tenant's change (one mailbox's POP3 switch through its service function) until the host "
            f"confirms it, while imports of {args.lines:,} addresses ({mb:.1f} MB each) run. Before: imports on "
            "the panel's queue and its one worker (as before issue 15); after: on `panel.bulk` and its own worker.",
            "",
            "| another tenant's change → applied on the host | before (one worker) | after (bulk queue) |",
            "|---|---|---|",
            f"| no import (median of {args.runs}) | {before['idle'] * 1000:.0f} ms | {after['idle'] * 1000:.0f} ms |",
            f"| one {mb:.1f} MB import running | {before['one']:.1f} s | {after['one'] * 1000:.0f} ms |",
            f"| one running and {QUEUED} queued | {before['queued']:.1f} s | {after['queued'] * 1000:.0f} ms |",
            f"| (the one import, start → done) | {before['one_import']:.1f} s | {after['one_import']:.1f} s |",
            f"| (the {1 + QUEUED} imports, start → all done) | {before['queued_imports']:.1f} s | "
            f"{after['queued_imports']:.1f} s |",
            "",
        ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        with open(args.write, "a", encoding="utf-8") as handle:
            handle.write("\n" + text)


if __name__ == "__main__":
    main()
