"""Mailing-list benchmark on the real stack (a script with figures, not a timed test).

Measures:
  1. importing 50,000 addresses (a CSV upload through the import page, as the domain's admin):
     the page's POST, until the panel's worker has them all (MemberImport done), and until the
     host has them (the agent confirmed the revision, and mlmmj's files hold them all);
  2. a post to a list of 5,000 outside members: from the SMTP submission until Postfix has queued
     every recipient (mlmmj's pace: recipients handed to Postfix a second; the sink's deliveries
     held meanwhile, `hold_deliveries`), then from their release until the sink (the stack's
     stand-in for the Internet) holds every recipient's copy. "After": the list as
     the agent writes it (VERP batches of mailhost.lists.VERP_RECIPIENTS to the smtpd for mlmmj);
     "before" (`--before-size`, default 1,000 members: it runs at about 20 a second): the same
     list with the control files it had before issue 18 (no `verp`, `smtpport` the public port:
     one SMTP transaction a recipient); `--batches 500,1000` also times other `maxverprecips`;
  3. the members page (`screens:members`, kind subscriber, page 1, page 20, a search) at 100, 5,000
     and 50,000 members: SQL queries and p50 time.

Run as root (it starts Postfix, Dovecot, mlmmj and two Celery workers), about 5 minutes:
    .venv/bin/python bench/lists_bench.py [--runs 20] [--write BENCHMARKS.md] [--parts post] [--batches 1000]
It uses its own database (BENCH_DATABASE_URL, default a SQLite file under var/) and the broker
the settings select (REDIS_URL for Redis, else the embedded SQLite broker).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'bench-lists.sqlite3'}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from django.urls import reverse  # noqa: E402

from hosting.models import Domain, MailHost, Plan, User  # noqa: E402
from hosting.services import customer_create, pack_create  # noqa: E402
from lists.models import ImportState, ListMember, MailingList, MemberImport  # noqa: E402
from lists.services import list_create  # noqa: E402
from mail.auth import SESSION_HASH, SESSION_ID, session_hash  # noqa: E402
from mail.services import mailbox_create  # noqa: E402
from mailhost.list_members import read_members  # noqa: E402
from mailhost.lists import VERP_RECIPIENTS  # noqa: E402
from mailhost.stack import StackConfig, down, install_packages, sink_dirname, up  # noqa: E402
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
from tests.e2e.mailclient import send  # noqa: E402
from tests.e2e.workers import make_workers, started  # noqa: E402

PASSWORD = "Bench-Password-2026"  # noqa: S105 - a throw-away mailbox of the benchmark


def wait(predicate, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not done in {timeout} s")
        time.sleep(interval)


def applied(domain_id: int) -> bool:
    revision = Domain.objects.values_list("revision", flat=True).get(pk=domain_id)
    return DomainSync.objects.filter(domain_id=domain_id, applied_revision__gte=revision).exists()


def admin_client(postmaster) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="fr")
    session = client.session
    session[SESSION_ID] = postmaster.pk
    session[SESSION_HASH] = session_hash(postmaster)
    session.save()
    return client


def new_list(pack, operator, label: str):
    domain = domain_create(pack=pack, name=f"{label}{secrets.token_hex(3)}.test", acting_user=operator)
    postmaster = mailbox_create(domain=domain, local_part="postmaster", password=PASSWORD, is_admin=True,
                                acting_user=operator)
    mailing_list = list_create(domain=domain, name="news", owner=f"postmaster@{domain.name}", sub_confirm=False,
                               acting_user=operator)
    wait(lambda: applied(domain.pk), 60, "the new list")
    return domain, postmaster, mailing_list


def bench_import(pack, operator, stack, size: int) -> dict[str, float]:
    domain, postmaster, mailing_list = new_list(pack, operator, "import")
    client = admin_client(postmaster)
    data = "email;name\n" + "".join(f"reader{n}@far{n % 97}.test;Reader {n}\n" for n in range(size))
    upload = SimpleUploadedFile("members.csv", data.encode(), content_type="text/csv")
    url = reverse("screens:member_import", args=[domain.pk, mailing_list.pk])
    start = time.monotonic()
    response = client.post(url, {"kind": "subscriber", "file": upload})
    posted = time.monotonic() - start
    assert response.status_code == 302, response.status_code
    job = MemberImport.objects.filter(mailing_list=mailing_list).latest("created_at")
    wait(lambda: MemberImport.objects.get(pk=job.pk).state != ImportState.RUNNING, 120, "the import", 0.02)
    in_panel = time.monotonic() - start
    job.refresh_from_db()
    assert (job.state, job.added) == (ImportState.DONE, size), (job.state, job.added, job.error)
    wait(lambda: applied(domain.pk), 120, "the host's confirmation", 0.02)
    confirmed = time.monotonic() - start
    path = stack.config.mlmmj_root / domain.name / "news"
    on_host = len(read_members(path, "subscriber"))
    assert on_host == size + 1, on_host  # and the owner
    return {"posted": posted, "in_panel": in_panel, "on_host": confirmed}


def old_control(path: Path, stack) -> None:
    """The list's control files as the agent wrote them before issue 18: mlmmj's own VERP, one SMTP
    transaction a recipient, to the public port (which refuses XVERP anyway)."""
    for name in ("verp", "maxverprecips"):
        (path / "control" / name).unlink(missing_ok=True)
    (path / "control" / "smtpport").write_text(f"{stack.config.smtp_port}\n")


def hold_deliveries(stack, held: bool) -> None:
    """Postfix keeps the sink's deliveries for later (`defer_transports = sink`) or makes them now:
    the test sink is one Python process a copy, whose CPU would otherwise be timed as mlmmj's pace
    on 2 cores (a real host hands a copy to its smtp client, many recipients a connection)."""
    subprocess.run(["/usr/sbin/postconf", "-c", str(stack.config.postfix_dir), "-e",  # noqa: S603
                    f"defer_transports = {'sink' if held else ''}"], check=True)
    stack.reload_postfix()
    if not held:
        subprocess.run(["/usr/sbin/postqueue", "-c", str(stack.config.postfix_dir), "-f"], check=True)  # noqa: S603


def bench_post(pack, operator, stack, size: int, mode: str = "after", batch: int = 0) -> dict[str, float]:
    domain, postmaster, mailing_list = new_list(pack, operator, "post")
    tag = domain.name.split(".")[0]  # each post's own recipients: the sink's folders tell its copies
    addresses = [f"m{n}.{tag}@sink{n % 50}.test" for n in range(size)]
    ListMember.objects.bulk_create([ListMember(mailing_list=mailing_list, address=address) for address in addresses],
                                   batch_size=2000)
    MailingList.objects.filter(pk=mailing_list.pk).update(revision=revisions.domain_changed(domain))
    wait(lambda: applied(domain.pk), 120, "the members on the host")
    path = stack.config.mlmmj_root / domain.name / "news"
    assert (path / "control" / "smtpport").read_text().strip() == str(stack.config.list_smtp_port)
    if mode == "before":
        old_control(path, stack)
    elif batch:
        (path / "control" / "maxverprecips").write_text(f"{batch}\n")
    folders = [stack.config.sink_root / sink_dirname(address) for address in addresses]
    log = stack.config.postfix_log
    offset = log.stat().st_size if log.exists() else 0
    hold_deliveries(stack, True)
    load = os.getloadavg()[0]
    start = time.monotonic()
    send(stack, f"postmaster@{domain.name}", f"news@{domain.name}", "to all", "hello")
    handed: list[float] = []

    def queued() -> bool:
        """mlmmj's SMTP sessions queued by Postfix: qmgr's `nrcpt=` of the list's bounce sender."""
        with log.open(encoding="utf-8", errors="replace") as file:
            file.seek(offset)
            count = sum(int(m.group(1)) for m in re.finditer(
                rf"from=<news\+bounces[^>]*@{re.escape(domain.name)}>, size=\d+, nrcpt=(\d+)", file.read()))
        if count >= size and not handed:
            handed.append(time.monotonic() - start)
        return bool(handed)

    def delivered() -> bool:
        return sum(1 for folder in folders if folder.is_dir() and any(folder.iterdir())) == size

    wait(queued, 600, "the post handed to Postfix", 0.1)
    released = time.monotonic()
    load = max(load, os.getloadavg()[0])
    hold_deliveries(stack, False)
    wait(delivered, 600, "the post's deliveries", 0.25)
    delivering = time.monotonic() - released
    requeued = list((path / "requeue").glob("*/subscribers")) if (path / "requeue").is_dir() else []
    assert not requeued, requeued  # no batch refused
    return {"handed": handed[0], "delivering": delivering, "rate": size / handed[0], "load": load}


def bench_members_page(pack, operator, size: int, runs: int) -> dict[str, tuple[float, int]]:
    domain, postmaster, mailing_list = new_list(pack, operator, f"page{size}")
    ListMember.objects.bulk_create([ListMember(mailing_list=mailing_list, address=f"u{n:06d}@example{n % 13}.test")
                                    for n in range(size)], batch_size=5000)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE lists_listmember")
    client = admin_client(postmaster)
    base = reverse("screens:members", args=[domain.pk, mailing_list.pk])
    pages = {"page 1": "?kind=subscriber", "page 2": "?kind=subscriber&page=2",
             'search "u000042@"': "?kind=subscriber&q=u000042%40"}
    figures = {}
    for label, query in pages.items():
        times, count = [], 0
        for _ in range(runs):
            with CaptureQueriesContext(connection) as captured:
                start = time.monotonic()
                response = client.get(base + query)
                times.append(time.monotonic() - start)
            assert response.status_code == 200, response.status_code
            count = len(captured)
        figures[label] = (statistics.median(times), count)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--import-size", type=int, default=50_000)
    parser.add_argument("--post-size", type=int, default=5_000)
    parser.add_argument("--before-size", type=int, default=1_000)
    parser.add_argument("--batches", default="", help="other maxverprecips to time, e.g. 1000")
    parser.add_argument("--page-sizes", default="100,5000,50000")
    parser.add_argument("--parts", default="import,post,pages", help="what to run (default all)")
    parser.add_argument("--write", help="append the figures to this Markdown file")
    args = parser.parse_args()
    page_sizes = [int(n) for n in args.page_sizes.split(",") if n]
    parts = set(args.parts.split(","))
    batches = [int(n) for n in args.batches.split(",") if n]

    call_command("migrate", verbosity=0)
    install_packages()
    root = Path(tempfile.mkdtemp(prefix="mailpanel-lists-bench-"))
    root.chmod(0o755)
    config = StackConfig(root=root, smtp_port=25525, submission_port=25587, pop3_port=25110, imap_port=25143,
                         quota_policy_port=35340, doveadm_port=35424, list_smtp_port=25526)
    stack = up(config)
    log_dir = Path(tempfile.mkdtemp(prefix="mailpanel-lists-bench-logs-"))
    try:
        workers_cm = started(make_workers(stack, log_dir))
        workers = next(workers_cm)
        try:
            host, _ = MailHost.objects.get_or_create(name=workers.host_name)
            operator = User.objects.filter(email="bench@panel.test").first() or User.objects.create_superuser(
                email="bench@panel.test", password=None)
            customer = customer_create(reseller=None, name="Lists bench", acting_user=operator)
            plan, _ = Plan.objects.get_or_create(name="Lists bench", reseller=None, defaults=dict(
                max_domains=-1, max_mailboxes=-1, max_forwards=-1, max_robots=-1, max_lists=-1))
            pack = pack_create(customer=customer, plan=plan, mail_host=host, acting_user=operator)
            imported = pages = None
            posts: dict[str, dict[str, float]] = {}
            if "import" in parts:
                imported = bench_import(pack, operator, stack, args.import_size)
                print("import:", imported, flush=True)
            if "post" in parts:
                posts["after"] = bench_post(pack, operator, stack, args.post_size)
                print("post:", posts["after"], flush=True)
                for batch in batches:
                    posts[f"batch {batch}"] = bench_post(pack, operator, stack, args.post_size, batch=batch)
                    print(f"post, batches of {batch}:", posts[f"batch {batch}"], flush=True)
                if args.before_size:
                    posts["before"] = bench_post(pack, operator, stack, args.before_size, mode="before")
                    print("post before:", posts["before"], flush=True)
            static = {**settings.STORAGES, "staticfiles": {  # no collectstatic needed: plain URLs
                "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
            if "pages" in parts:
                with override_settings(STORAGES=static):
                    pages = {size: bench_members_page(pack, operator, size, args.runs) for size in page_sizes}
        finally:
            next(workers_cm, None)
    finally:
        down(config)
        shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(log_dir, ignore_errors=True)

    broker = "Redis" if os.environ.get("REDIS_URL") else "embedded SQLite broker"
    database = "PostgreSQL" if os.environ["DATABASE_URL"].startswith("postgres") else "SQLite"
    ms = 1000
    lines = [
        f"## Mailing lists benchmark — {time.strftime('%Y-%m-%d')} ({database}, {broker}, {os.cpu_count()} cores)",
        "",
        "| measure | time | target |",
        "|---|---|---|",
    ]
    if imported:
        lines += [
            f"| import of {args.import_size:,} addresses (CSV upload): the page's POST | {imported['posted']:.2f} s "
            "| — |",
            f"| same import: until the panel's worker has added them all | {imported['in_panel']:.2f} s | ≤ 10 s |",
            f"| same import: until the host confirms it (mlmmj's files hold them all) | {imported['on_host']:.2f} s "
            "| ≤ 30 s |",
        ]
    for label, post in posts.items():
        size = args.before_size if label == "before" else args.post_size
        how = {"before": "before issue 18: one SMTP transaction a recipient, public port",
               "after": f"VERP batches of {VERP_RECIPIENTS} to the smtpd for mlmmj"}.get(
            label, f"VERP batches of {label.split()[-1]} to the smtpd for mlmmj")
        lines += [
            f"| a post to a list of {size:,} members ({how}): SMTP submission → every recipient queued by "
            f"Postfix | {post['handed']:.2f} s | — |",
            f"| the same: **recipients handed to Postfix a second** (the machine's load average then: "
            f"{post['load']:.1f}) | **{post['rate']:.0f}/s** | ≥ 500/s |",
            f"| the same post, then: deliveries released → every copy in the test stack's sink (one pipe "
            f"process a copy) | {post['delivering']:.2f} s | — |",
        ]
    if pages:
        lines += [
            "",
            "| members page (domain admin, French): p50 (SQL queries) | "
            + " | ".join(f"{n:,} members" for n in page_sizes) + " |",
            "|---|" + "---|" * len(page_sizes),
        ]
        for label in next(iter(pages.values())):
            lines.append(f"| {label} | " + " | ".join(
                f"{pages[n][label][0] * ms:.1f} ms ({pages[n][label][1]} q)" for n in page_sizes) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with open(args.write, "a", encoding="utf-8") as handle:
            handle.write("\n" + text)


if __name__ == "__main__":
    main()
