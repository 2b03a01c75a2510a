"""Benchmark of a domain's screens (a script with figures, not a timed test).

For domains of 1,000, 10,000 and 100,000 mailboxes (and a fifth as many forwards), made in bulk:
the SQL queries and the server time (Django's test client, the whole request: middleware, session,
view, template) of the POP accounts' list (a page of 50), its search, the forwards' list and the
"new POP account" page; then the creation of an account through that page, minus the time its
password's hashing takes (argon2, measured alone on the same machine).

    .venv/bin/python bench/screens_bench.py [--runs 30] [--sizes 1000,10000,100000] [--write BENCHMARKS.md]

It uses its own database (BENCH_DATABASE_URL, default a SQLite file under var/); no broker is
needed (the pushes the creations queue are dropped: PUSH is not what is measured here).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'bench.sqlite3'}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))

import django  # noqa: E402
import django.core.signals  # noqa: E402
import django.db  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.urls import reverse  # noqa: E402

from hosting.models import Domain, MailHost, Plan, User  # noqa: E402
from hosting.services import customer_create, pack_create  # noqa: E402
from mail import services  # noqa: E402
from mail.auth import SESSION_HASH, SESSION_ID, session_hash  # noqa: E402
from mail.models import Forward, Mailbox, folded  # noqa: E402
from mailhost.passwords import hash_password  # noqa: E402
from provisioning import revisions  # noqa: E402
from provisioning.domains import domain_create  # noqa: E402

PASSWORD = "Bench-Password-2026!"  # noqa: S105 - throw-away accounts of the benchmark
revisions.enqueue_push = lambda domain_id, countdown=None: None  # no broker: nothing is sent
# One connection for the whole run (as a worker process keeps its own): the queries of a request
# are counted on it, and no connect time is measured.
django.core.signals.request_finished.disconnect(django.db.close_old_connections)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@transaction.atomic
def fill(domain: Domain, size: int) -> Mailbox:
    """`size` mailboxes (one shared hash: hashing is not what is measured) and size/5 forwards."""
    shared = hash_password(PASSWORD)
    Mailbox.objects.bulk_create([
        Mailbox(domain=domain, local_part=f"u{i:06d}", real_name=f"Utilisateur Numéro {i}", password_hash=shared,
                search_name=folded(f"u{i:06d} Utilisateur Numéro {i}"), quota_mb=100)
        for i in range(size - 1)], batch_size=5000)
    Forward.objects.bulk_create([
        Forward(domain=domain, local_part=f"f{i:06d}", destinations=[f"u{i:06d}@{domain.name}", "x@remote.test"])
        for i in range(size // 5)], batch_size=5000)
    return Mailbox.objects.create(domain=domain, local_part="postmaster", password_hash=shared, is_admin=True)


def settle() -> None:
    """What autovacuum does to freshly written tables before long (PostgreSQL): statistics, and the
    visibility map that lets a count read the index alone. A bulk-filled table lacks both."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for table in ("mail_mailbox", "mail_forward", "hosting_domain", "hosting_auditevent"):
                cursor.execute(f"VACUUM ANALYZE {table}")  # noqa: S608 - fixed table names


def publish(lines: list[str], path: str | None) -> None:
    """Print the figures, and append them to the Markdown file `path` when given."""
    print("\n".join(lines))
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("\n" + "\n".join(lines) + "\n")


def bench_domain(label: str, size: int) -> tuple[Domain, Mailbox, User]:
    """A domain of `size` mailboxes (`fill`, then `settle`) in a pack of its own, on the mail host
    and the unlimited plan named after `label` (made once); its postmaster and the operator."""
    host, _ = MailHost.objects.get_or_create(name=f"{label.lower()}-bench")
    operator = User.objects.filter(email="bench@panel.test").first() or User.objects.create_superuser(
        email="bench@panel.test", password=None)
    plan, _ = Plan.objects.get_or_create(name=f"{label} bench", reseller=None, defaults=dict(
        max_domains=-1, max_mailboxes=-1, max_forwards=-1, max_robots=-1, max_lists=-1))
    customer = customer_create(reseller=None, name=f"{label} {size}", acting_user=operator)
    pack = pack_create(customer=customer, plan=plan, mail_host=host, acting_user=operator)
    domain = domain_create(pack=pack, name=f"{label.lower()}{size}-{os.getpid()}.test", acting_user=operator)
    postmaster = fill(domain, size)
    settle()
    return domain, postmaster, operator


def admin_client(postmaster: Mailbox) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="fr")
    session = client.session
    session[SESSION_ID], session[SESSION_HASH] = postmaster.pk, session_hash(postmaster)
    session.save()
    return client


def measure(client: Client, url: str, runs: int, data: dict | None = None) -> dict[str, float]:
    client.get(url, data)  # warm: templates compiled, connection open
    statements: list[str] = []

    def count(execute, sql, params, many, context):  # noqa: ANN001, ANN202 - Django's wrapper protocol
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response = client.get(url, data)
    assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        client.get(url, data)
        times.append(time.perf_counter() - start)
    return {"queries": len(statements), "p50": statistics.median(times), "p95": pct(times, 95)}


@contextmanager
def hashing_timed() -> Iterator[list[float]]:
    """The service's `hash_password` timed where it is called: each call's seconds in the list."""
    hashing: list[float] = []

    def timed_hash(password: str) -> str:
        start = time.perf_counter()
        try:
            return hash_password(password)
        finally:
            hashing.append(time.perf_counter() - start)

    services.hash_password = timed_hash
    try:
        yield hashing
    finally:
        services.hash_password = hash_password


def measure_create(client: Client, url: str, runs: int) -> dict[str, float]:
    """The page's POST that creates an account, and the time its own hashing took in it (the
    service's `hash_password`, timed where it is called), subtracted request by request."""
    times, nets = [], []
    with hashing_timed() as hashing:
        for i in range(runs):
            hashing.clear()
            start = time.perf_counter()
            response = client.post(url, {"local_part": f"new{secrets.token_hex(4)}{i}", "password1": PASSWORD,
                                         "password2": PASSWORD, "real_name": "Compte test"})
            elapsed = time.perf_counter() - start
            assert response.status_code == 302, response.content[:2000]
            assert len(hashing) == 1, hashing  # hashed once, by the service
            times.append(elapsed)
            nets.append(elapsed - hashing[0])
    return {"p50": statistics.median(times), "hash": statistics.median(times) - statistics.median(nets),
            "net": statistics.median(nets)}


def measure_service(domain: Domain, postmaster: Mailbox, runs: int) -> dict[str, float]:
    """`mailbox_create` called directly (its transaction, checks, row, revision, claim and audit
    row), minus its own hashing timed where it is called: the act without the web request."""
    nets = []
    with hashing_timed() as hashing:
        for i in range(runs):
            hashing.clear()
            start = time.perf_counter()
            services.mailbox_create(domain=domain, local_part=f"svc{secrets.token_hex(4)}{i}", password=PASSWORD,
                                    real_name="Compte test", acting_user=postmaster)
            nets.append(time.perf_counter() - start - hashing[0])
    return {"net": statistics.median(nets)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--write", help="append the figures to this Markdown file")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",") if n]

    call_command("migrate", verbosity=0)
    figures: dict[int, dict[str, dict[str, float]]] = {}
    made: list[Domain] = []
    try:
        for size in sizes:
            domain, postmaster, _operator = bench_domain("Screens", size)
            made.append(domain)
            client = admin_client(postmaster)
            pk = domain.pk
            static = {**settings.STORAGES, "staticfiles": {  # no collectstatic needed: plain URLs
                "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
            with override_settings(ALLOWED_HOSTS=["testserver"], STORAGES=static):
                figures[size] = {
                    "list": measure(client, reverse("screens:mailboxes", args=[pk]), args.runs),
                    "list_page_9": measure(client, reverse("screens:mailboxes", args=[pk]), args.runs, {"page": 9}),
                    "search": measure(client, reverse("screens:mailboxes", args=[pk]), args.runs, {"q": "U000042"}),
                    "forwards": measure(client, reverse("screens:forwards", args=[pk]), args.runs),
                    "create_page": measure(client, reverse("screens:mailbox_create", args=[pk]), args.runs),
                    "create": measure_create(client, reverse("screens:mailbox_create", args=[pk]),
                                             max(5, args.runs // 3)),
                    "service": measure_service(domain, postmaster, max(5, args.runs // 3)),
                }
    finally:
        for domain in made:
            Domain.objects.filter(pk=domain.pk).delete()

    database = "PostgreSQL" if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else "SQLite"
    ms = 1000
    lines = [f"## Screens benchmark — {time.strftime('%Y-%m-%d')} ({database}, {os.cpu_count()} cores)", "",
             "| page (domain admin, French) | " + " | ".join(f"{n:,} mailboxes" for n in sizes)
             + f" | ratio {sizes[-1]:,} / {sizes[0]:,} | target |",
             "|---|" + "---|" * len(sizes) + "---|---|"]
    labels = {"list": "POP accounts, page 1 (50 rows)", "list_page_9": "POP accounts, page 9",
              "search": "POP accounts, search \"U000042\" (one account at every size)",
              "forwards": "forwards, page 1 (25 rows)",
              "create_page": "\"new POP account\" page"}
    for key, label in labels.items():
        cells = [f"{figures[n][key]['p50'] * ms:.1f} ms ({figures[n][key]['queries']} q)" for n in sizes]
        ratio = figures[sizes[-1]][key]["p50"] / figures[sizes[0]][key]["p50"]
        lines.append(f"| {label}: p50 (SQL queries) | " + " | ".join(cells) + f" | {ratio:.2f} | ≤ 8 q, ≤ 1.5 |")
    cells = [f"{figures[n]['create']['net'] * ms:.1f} ms" for n in sizes]
    lines.append("| creating an account through the page, minus hashing: p50 | " + " | ".join(cells)
                 + " | — | ≤ 10 ms |")
    cells = [f"{figures[n]['service']['net'] * ms:.1f} ms" for n in sizes]
    lines.append("| the same act called directly (`mailbox_create`), minus hashing: p50 | " + " | ".join(cells)
                 + " | — | — |")
    lines.append("| (the page's whole POST; hashing alone) | " + " | ".join(
        f"{figures[n]['create']['p50'] * ms:.0f} ms; {figures[n]['create']['hash'] * ms:.0f} ms" for n in sizes)
        + " | — | — |")
    lines.append("")
    publish(lines, args.write)


if __name__ == "__main__":
    main()
