"""Provisioning benchmark on the real stack (a script with figures, not a timed test).

Measures:
  1. change → deliverable: a mailbox created through the panel's service function, until the
     real Postfix accepts RCPT TO for it (p50 / p95 over N runs);
  2. the cost of one change against its floor: a service call (`mailbox_set_access`) and the bare
     transaction that writes the same rows (revision, changed row, audit row) in plain SQL, timed
     in the same run; their ratio and the service call's SQL statements;
  3. a burst of 1,000 changes to one domain: until the host confirms the last one, and how many
     documents the host applied for them;
  4. domains of 10,000 and 100,000 mailboxes (and a fifth as many forwards): the complete
     document (size, build time), the agent's first apply of it (time and peak memory, in a
     process of its own that decodes the JSON as the worker does), one changed mailbox (delta
     build time and queries on the panel, apply time on the host), and through the real workers
     the full resync and a one-mailbox change until the host confirms it.

Run as root on a machine of the CI's kind (it starts Postfix, Dovecot and two Celery workers):
    .venv/bin/python bench/provisioning_bench.py [--runs 20] [--sizes 10000,100000] [--write BENCHMARKS.md]
It uses its own database (BENCH_DATABASE_URL, default a SQLite file under var/) and the broker
the settings select (REDIS_URL for Redis, else the embedded SQLite broker).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'bench.sqlite3'}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "0")  # as in production (its workers too): cursors that log no SQL
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))  # this run's own: DEBUG off needs one

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, reset_queries, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from hosting.audit import Action  # noqa: E402
from hosting.models import Domain, MailHost, Plan, User  # noqa: E402
from hosting.services import customer_create, pack_create  # noqa: E402
from hostlink import snapshot  # noqa: E402
from mail.models import Forward, Mailbox  # noqa: E402
from mail.services import mailbox_create, mailbox_set_access  # noqa: E402
from mailhost import maps  # noqa: E402
from mailhost.apply import HostConfig, apply  # noqa: E402
from mailhost.stack import StackConfig, down, install_packages, up  # noqa: E402
from provisioning import revisions  # noqa: E402
from provisioning.domains import domain_create as create_domain  # noqa: E402
from provisioning.domains import domain_verify  # noqa: E402


def domain_create(*, pack, name: str, acting_user):
    """A domain the bench's host serves: created, then proven by hand (issue 15: a domain not
    proven its customer's is not served, and no DNS proves a .test name)."""
    domain = create_domain(pack=pack, name=name, acting_user=acting_user)
    domain_verify(domain=domain, acting_user=acting_user)
    return domain
from provisioning.models import DomainSync  # noqa: E402
from tests.e2e.workers import make_workers, started  # noqa: E402

PASSWORD = "Bench-Password-2026"  # noqa: S105 - a throw-away mailbox of the benchmark


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def wait_applied(domain_id: int, timeout: float = 120) -> None:
    revision = Domain.objects.values_list("revision", flat=True).get(pk=domain_id)
    deadline = time.monotonic() + timeout
    while not DomainSync.objects.filter(domain_id=domain_id, applied_revision__gte=revision).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"domain {domain_id} not applied in {timeout} s")
        time.sleep(0.02)  # a tighter poll takes CPU from the workers it waits for (2 cores)


def rcpt_accepted(port: int, address: str) -> bool:
    with smtplib.SMTP("127.0.0.1", port, "bench.test", timeout=5) as smtp:
        smtp.mail("bench@outside.test")
        code, _ = smtp.rcpt(address)
        return code == 250


def bench_change_to_deliverable(stack, pack, operator, runs: int) -> list[float]:
    domain = domain_create(pack=pack, name=f"latency{os.getpid()}.test", acting_user=operator)
    wait_applied(domain.pk)
    times = []
    for i in range(runs):
        address = f"user{i}@{domain.name}"
        start = time.monotonic()
        mailbox_create(domain=domain, local_part=f"user{i}", password=PASSWORD, acting_user=operator)
        while not rcpt_accepted(stack.config.smtp_port, address):
            time.sleep(0.005)
        times.append(time.monotonic() - start)
    return times


# The agent's first apply of a complete document, in a process of its own: JSON decoded as the
# worker does, then applied; prints seconds and the peak resident memory (kB) before and after.
APPLY_CHILD = """
import json, sys, time
from pathlib import Path
from mailhost.apply import HostConfig, apply
def high_water_kb():  # this process's peak resident memory (VmHWM: not inherited across exec)
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1])
before = high_water_kb()
start = time.monotonic()
document = json.loads(Path(sys.argv[2]).read_text())
apply(document, HostConfig(name="bench", root=Path(sys.argv[1])))
print(json.dumps({"seconds": time.monotonic() - start, "base_kb": before, "peak_kb": high_water_kb()}))
"""


def random_hash() -> str:
    """A hash of argon2id's shape and entropy (as random as a real one: the document compresses as
    a real domain's would); hashing 100,000 real passwords would take over an hour."""
    salt, digest = (base64.b64encode(secrets.token_bytes(n)).decode().rstrip("=") for n in (16, 32))
    return f"{{ARGON2ID}}$argon2id$v=19$m=65536,t=3,p=1${salt}${digest}"


@transaction.atomic
def fill(domain: Domain, mailboxes: int) -> None:
    """Give a domain `mailboxes` mailboxes (each its own hash) and a fifth as many forwards, in
    bulk, in one transaction: the push that follows reads them all."""
    revision = revisions.domain_changed(domain)
    Mailbox.objects.bulk_create(
        [Mailbox(domain=domain, local_part=f"u{i:06d}", password_hash=random_hash(), quota_mb=100,
                 revision=revision)
         for i in range(mailboxes)], batch_size=5000)
    Forward.objects.bulk_create(
        [Forward(domain=domain, local_part=f"f{i:06d}", destinations=["x@remote.test"], revision=revision)
         for i in range(mailboxes // 5)], batch_size=5000)


def bench_domain_size(pack, operator, size: int, runs: int, workers_host: str) -> dict[str, float]:
    """Figures of one domain of `size` mailboxes (see the module's item 4)."""
    figures: dict[str, float] = {}
    domain = domain_create(pack=pack, name=f"size{size}-{os.getpid()}.test", acting_user=operator)
    wait_applied(domain.pk)
    fill(domain, size)
    start = time.monotonic()
    wait_applied(domain.pk, timeout=300)  # the running stack takes the whole domain first
    figures["first_e2e"] = time.monotonic() - start
    domain.refresh_from_db()
    start = time.monotonic()
    document = snapshot.build(domain)
    figures["build_full"] = time.monotonic() - start
    encoded = json.dumps(document)
    figures["size_mb"] = len(encoded) / 1e6

    # The agent's first apply of the whole domain, on a host of its own (not the running stack).
    root = Path(tempfile.mkdtemp(prefix="mailpanel-bench-size-"))
    try:
        (root / "db").mkdir()
        maps.create(root / "db" / "maps.sqlite")
        (root / "document.json").write_text(encoded)
        child = subprocess.run([sys.executable, "-c", APPLY_CHILD, str(root), str(root / "document.json")],  # noqa: S603
                               cwd=ROOT, check=True, capture_output=True, text=True)
        measured = json.loads(child.stdout.strip().splitlines()[-1])
        figures["apply_full"] = measured["seconds"]
        figures["peak_mb"] = measured["peak_kb"] / 1024
        figures["base_mb"] = measured["base_kb"] / 1024
        cfg = HostConfig(name="bench", root=root)
        mailbox = Mailbox.objects.select_related("domain").get(domain=domain, local_part="u000000")
        builds, queries, applies = [], [], []
        for _ in range(runs):
            mailbox_set_access(mailbox=mailbox, allow_pop3=not mailbox.allow_pop3, acting_user=operator)
            wait_applied(domain.pk)  # the running stack takes it too; the base is what it confirmed
            base = DomainSync.objects.get(domain=domain).applied_revision - 1
            fresh = Domain.objects.get(pk=domain.pk)
            reset_queries()  # the debug log keeps 9,000 queries: a full one counts none
            with CaptureQueriesContext(connection) as captured:
                start = time.monotonic()
                delta = snapshot.build_delta(fresh, base=base)
                builds.append(time.monotonic() - start)
            queries.append(len(captured))
            assert [m["local_part"] for m in delta["mailboxes"]] == ["u000000"], delta["mailboxes"]
            delta = json.loads(json.dumps(delta))
            start = time.monotonic()
            apply(delta, cfg)
            applies.append(time.monotonic() - start)
        figures.update(build_delta=statistics.median(builds), build_delta_p95=pct(builds, 95),
                       delta_queries=max(queries), apply_delta=statistics.median(applies),
                       apply_delta_p95=pct(applies, 95))
    finally:
        shutil.rmtree(root, ignore_errors=True)

    # Through the real workers: the whole domain sent again with one change (as after support's
    # retry: the host has it all and compares every row), then one change at a time.
    DomainSync.objects.filter(domain=domain).update(needs_full=True)
    start = time.monotonic()
    mailbox_set_access(mailbox=mailbox, allow_smtp=not mailbox.allow_smtp, acting_user=operator)
    wait_applied(domain.pk, timeout=300)
    figures["resync"] = time.monotonic() - start
    changes = []
    for _ in range(runs):
        time.sleep(0.2)  # past PUSH_INTERVAL_MS: the change goes at once, as a lone change does
        start = time.monotonic()
        mailbox_set_access(mailbox=mailbox, allow_imap=not mailbox.allow_imap, acting_user=operator)
        wait_applied(domain.pk)
        changes.append(time.monotonic() - start)
    figures["change_e2e"] = statistics.median(changes)
    figures["change_e2e_p95"] = pct(changes, 95)
    Domain.objects.filter(pk=domain.pk).delete()  # not through the service: the stack goes down next
    return figures


FLOOR_SQL = {
    "bump": "UPDATE hosting_domain SET revision = revision + 1 WHERE id = %s RETURNING revision",
    "row": "UPDATE mail_mailbox SET allow_pop3 = %s, revision = %s WHERE id = %s",
    "audit": "INSERT INTO hosting_auditevent (created_at, actor_id, actor_label, actor_role, action, target_type, "
             "target_id, target_repr, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
}


def bench_floor(mailbox: Mailbox, operator, changes: int) -> float:
    """The bare transactions that write what a service call writes: the revision, the changed
    row, the audit row (plain SQL on the panel's connection). Returns seconds per transaction."""
    start = time.monotonic()
    with connection.cursor() as cursor:
        for i in range(changes):
            cursor.execute("BEGIN")
            cursor.execute(FLOOR_SQL["bump"], [mailbox.domain_id])
            (revision,) = cursor.fetchone()
            cursor.execute(FLOOR_SQL["row"], [bool(i % 2), revision, mailbox.pk])
            cursor.execute(FLOOR_SQL["audit"], [
                timezone.now(), operator.pk, operator.email, "operator", str(Action.MAILBOX_SET_ACCESS),
                "mail.mailbox", str(mailbox.pk), str(mailbox), json.dumps({"allow_pop3": bool(i % 2)})])
            cursor.execute("COMMIT")
    return (time.monotonic() - start) / changes


def service_queries(mailbox: Mailbox, operator) -> int:
    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        mailbox_set_access(mailbox=mailbox, allow_pop3=not mailbox.allow_pop3, acting_user=operator)
    return sum(not q["sql"].startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")) for q in captured)


def bench_ratio(mailbox: Mailbox, twin: Mailbox, operator, changes: int, block: int = 50) -> dict[str, float]:
    """Service calls on `mailbox` and floor transactions on `twin` (the same rows of another
    domain: the floor bumps a revision no push knows of), in alternating blocks of `block`, the
    workers running (the calls' pushes go out): both meet the same moments of a shared machine.
    Returns seconds per service call and per floor transaction."""
    service = floor = 0.0
    for i in range(0, changes, block):
        start = time.monotonic()
        for j in range(block):
            mailbox_set_access(mailbox=mailbox, allow_pop3=bool((i + j + 1) % 2), acting_user=operator)
        service += time.monotonic() - start
        floor += bench_floor(twin, operator, block) * block
    return {"service": service / changes, "floor": floor / changes}


def bench_burst(pack, operator, changes: int) -> dict[str, float]:
    """The floor ratio (alternating blocks), then the burst of service calls on one row."""
    domain = domain_create(pack=pack, name=f"burst{os.getpid()}.test", acting_user=operator)
    mailbox = mailbox_create(domain=domain, local_part="burst", password=PASSWORD, acting_user=operator)
    mailbox = Mailbox.objects.select_related("domain").get(pk=mailbox.pk)
    floor_domain = domain_create(pack=pack, name=f"floor{os.getpid()}.test", acting_user=operator)
    twin = mailbox_create(domain=floor_domain, local_part="burst", password=PASSWORD, acting_user=operator)
    wait_applied(domain.pk)
    queries = service_queries(mailbox, operator)
    ratio = bench_ratio(mailbox, twin, operator, changes)
    wait_applied(domain.pk)
    time.sleep(1)  # the last pushes of the ratio's calls are done
    sent_before = DomainSync.objects.get(domain=domain).attempts
    start = time.monotonic()
    for i in range(changes):  # the ratio left allow_pop3 off: every call changes it
        mailbox_set_access(mailbox=mailbox, allow_pop3=bool((i + 1) % 2), acting_user=operator)
    issued = time.monotonic() - start
    wait_applied(domain.pk)
    total = time.monotonic() - start
    documents = DomainSync.objects.get(domain=domain).attempts - sent_before
    return {"total": total, "documents": documents, "issued": issued, "queries": queries, **ratio}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--sizes", default="10000,100000", help="mailboxes of the big domains, comma-separated")
    parser.add_argument("--write", help="append the figures to this Markdown file")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",") if n]  # none: skip the big domains

    call_command("migrate", verbosity=0)
    install_packages()
    root = Path(tempfile.mkdtemp(prefix="mailpanel-bench-"))
    root.chmod(0o755)
    config = StackConfig(root=root, smtp_port=24525, submission_port=24587, pop3_port=24110, imap_port=24143,
                         quota_policy_port=34340, doveadm_port=34424)
    stack = up(config)
    log_dir = Path(tempfile.mkdtemp(prefix="mailpanel-bench-logs-"))
    try:
        workers_cm = started(make_workers(stack, log_dir))
        workers = next(workers_cm)
        try:
            host, _ = MailHost.objects.get_or_create(name=workers.host_name)
            operator = User.objects.filter(email="bench@panel.test").first() or User.objects.create_superuser(
                email="bench@panel.test", password=None)
            customer = customer_create(reseller=None, name="Bench", acting_user=operator)
            plan, _ = Plan.objects.get_or_create(name="Bench", reseller=None, defaults=dict(
                max_domains=-1, max_mailboxes=-1, max_forwards=-1, max_robots=-1, max_lists=-1))
            pack = pack_create(customer=customer, plan=plan, mail_host=host, acting_user=operator)
            latency = bench_change_to_deliverable(stack, pack, operator, args.runs)
            burst = bench_burst(pack, operator, args.burst)
            by_size = {size: bench_domain_size(pack, operator, size, args.runs, workers.host_name) for size in sizes}
        finally:
            next(workers_cm, None)
    finally:
        down(config)
        shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(log_dir, ignore_errors=True)  # kept when the run failed: the workers' logs

    broker = "Redis" if os.environ.get("REDIS_URL") else "embedded SQLite broker"
    database = "PostgreSQL" if os.environ["DATABASE_URL"].startswith("postgres") else "SQLite"
    ms = 1000
    lines = [
        f"## Provisioning benchmark — {time.strftime('%Y-%m-%d')} ({database}, {broker}, {os.cpu_count()} cores)",
        "",
        "| measure | p50 | p95 | target |",
        "|---|---|---|---|",
        f"| change → deliverable (mailbox created → RCPT accepted), {args.runs} runs | "
        f"{statistics.median(latency) * ms:.0f} ms | {pct(latency, 95) * ms:.0f} ms | ≤ 500 ms / ≤ 1 s |",
        f"| one service call (`mailbox_set_access`), mean of {args.burst} | {burst['service'] * ms:.2f} ms | — | — |",
        f"| the floor: bare transaction writing the same rows, mean of {args.burst} | "
        f"{burst['floor'] * ms:.2f} ms | — | — |",
        f"| ratio service call / floor (alternating blocks of 50) | {burst['service'] / burst['floor']:.2f} | — "
        "| ≤ 2 |",
        f"| SQL statements of one service call | {burst['queries']} | — | ≤ 5 |",
        f"| burst of {args.burst} changes to one domain: first change → host confirms the last | "
        f"{burst['total']:.2f} s | — | ≤ 3 s |",
        f"| same burst: issuing the {args.burst} calls | {burst['issued']:.2f} s | — | — |",
        f"| same burst: last change → host confirms it | {(burst['total'] - burst['issued']) * ms:.0f} ms | — | — |",
        "",
        f"The host applied {burst['documents']:.0f} document(s) for the burst's {args.burst} changes.",
        "",
        "| domain of N mailboxes (+ N/5 forwards) | " + " | ".join(f"{n:,}" for n in sizes) + " | target |",
        "|---|" + "---|" * len(sizes) + "---|",
    ]

    def row(label: str, key: str, fmt: str, target: str = "—") -> str:
        return f"| {label} | " + " | ".join(fmt.format(by_size[n][key]) for n in sizes) + f" | {target} |"

    lines += [] if not sizes else [
        row("complete document: size", "size_mb", "{:.1f} MB"),
        row("complete document: build on the panel", "build_full", "{:.2f} s"),
        row("complete document: the agent's first apply (JSON decode included)", "apply_full", "{:.2f} s"),
        row("the agent's peak memory in that apply (resident, VmHWM)", "peak_mb", "{:.0f} MB"),
        row("    the same process before it read the document", "base_mb", "{:.0f} MB"),
        row("whole domain to a host that lacks it, through the workers (commit → host confirms)", "first_e2e",
            "{:.2f} s", "≤ 5 s"),
        row("whole domain again with one change, host has it (service call → host confirms)", "resync",
            "{:.2f} s", "≤ 5 s"),
    ]
    if not sizes:
        lines = lines[:-3]
    for n in sizes:  # the delta's figures are seconds: shown in ms
        for key in ("build_delta", "build_delta_p95", "apply_delta", "apply_delta_p95", "change_e2e", "change_e2e_p95"):
            by_size[n][key + "_ms"] = by_size[n][key] * ms
    lines += [] if not sizes else [
        row(f"one mailbox changed: delta build on the panel, p50 of {args.runs}", "build_delta_ms", "{:.1f} ms",
            "≤ 20 ms"),
        row("    its p95", "build_delta_p95_ms", "{:.1f} ms"),
        row("    its SQL queries", "delta_queries", "{:.0f}", "the same at every size"),
        row(f"one mailbox changed: delta apply on the host, p50 of {args.runs}", "apply_delta_ms", "{:.1f} ms",
            "≤ 50 ms"),
        row("    its p95", "apply_delta_p95_ms", "{:.1f} ms"),
        row(f"one mailbox changed through the workers (service call → host confirms), p50 of {args.runs}, "
            "0.2 s apart",
            "change_e2e_ms", "{:.0f} ms"),
        row("    its p95", "change_e2e_p95_ms", "{:.0f} ms"),
        "",
    ]
    print("\n".join(lines))
    if args.write:
        with open(args.write, "a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
