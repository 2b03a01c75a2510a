"""Benchmark of the DNS checks (issue 18, item 9): 1,000 domains checked as the beat checks them
(`provisioning.dnscheck.check_due`, in its batches, `DNS_CHECK_THREADS` at once), against a real
DNS server (dnsmasq on 127.0.0.1, tests/dnsserver.py) that answers, then against a silent one
(every lookup waits its whole 2 s: the worst a slow DNS server can do); and the server time of a
domain's menu page (the test client, the whole request) before and while the checks run in
another process, as the bulk worker runs them beside the web server.

    .venv/bin/python bench/dns_bench.py [--domains 1000] [--silent-domains 1000] [--runs 30] [--write BENCHMARKS.md]

It uses its own database (BENCH_DATABASE_URL, default a SQLite file under VAR_DIR); no broker.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VAR = Path(os.environ.get("VAR_DIR", ROOT / "var"))
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{VAR / 'dns_bench.sqlite3'}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from hosting import dkim  # noqa: E402
from hosting.models import Customer, DkimKey, DkimKeyState, Domain, MailHost, Pack, Plan, User  # noqa: E402
from provisioning import dnscheck  # noqa: E402
from provisioning.models import DnsCheck  # noqa: E402
from tests.dnsserver import DnsServer  # noqa: E402

HOST = "mx.dnsbench.test"
SELECTOR = "mp20261208"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def domains(count: int) -> tuple[list[Domain], str]:
    """`count` proven domains in one pack on the bench's mail host, each with one DKIM key (the same
    key: making 1,000 RSA keys is not what is measured), and no check stored yet."""
    host, _ = MailHost.objects.get_or_create(name="dns-bench", defaults={"fqdn": HOST})
    plan, _ = Plan.objects.get_or_create(name="dns bench", reseller=None, defaults={"max_domains": -1})
    customer, _ = Customer.objects.get_or_create(name="dns bench", reseller=None)
    pack, _ = Pack.objects.get_or_create(customer=customer, plan=plan, mail_host=host)
    Domain.objects.filter(pack=pack).delete()
    made = dkim.new_key()
    sealed = dkim.seal(made.private_pem)
    now = timezone.now()
    Domain.objects.bulk_create([Domain(pack=pack, name=f"d{i:05d}.dnsbench.test", verified_at=now,
                                       verified_how="hand") for i in range(count)])
    rows = list(Domain.objects.filter(pack=pack).order_by("name"))
    DkimKey.objects.bulk_create([DkimKey(domain=row, selector=SELECTOR, public_key=made.public_b64,
                                         sealed_private_key=sealed, state=DkimKeyState.ACTIVE) for row in rows])
    return rows, made.public_b64


def zone(rows: list[Domain], public: str) -> dict[str, dict[str, list[str]]]:
    """Three domains in four all green; the fourth without its DMARC record (red)."""
    txt: dict[str, list[str]] = {}
    for i, row in enumerate(rows):
        txt[row.name] = ["v=spf1 mx -all"]
        txt[f"{SELECTOR}._domainkey.{row.name}"] = [dkim.txt_value(public)]
        if i % 4:
            txt[f"_dmarc.{row.name}"] = [f"v=DMARC1; p=quarantine; rua=mailto:postmaster@{row.name}"]
    return {"txt": txt, "mx": {row.name: [HOST] for row in rows}, "a": {HOST: ["192.0.2.10"]}}


def run_child(resolver: str) -> None:
    """The checks of every due domain, in this process (as the bulk worker runs them)."""
    with override_settings(DNS_RESOLVER=resolver):
        print("start", flush=True)  # noqa: T201 - set up: the page is timed from now
        started = time.perf_counter()
        checked = 0
        while True:
            done = dnscheck.check_due(budget_seconds=dnscheck.BUDGET_SECONDS)
            checked += done
            if not done:
                break
        print(f"{checked} {time.perf_counter() - started:.3f}")  # noqa: T201


def checks_in_child(resolver: str) -> subprocess.Popen[str]:
    """The checks in a process of their own, returned once it has started them (its Python and
    Django start-up are not what is measured)."""
    child = subprocess.Popen([sys.executable, __file__, "--child", resolver], stdout=subprocess.PIPE, text=True,  # noqa: S603
                             env={**os.environ, "DATABASE_URL": os.environ["DATABASE_URL"]})
    assert child.stdout is not None and child.stdout.readline().strip() == "start"
    return child


def page_times(client: Client, url: str, runs: int, while_running: subprocess.Popen[str] | None = None) -> list[float]:
    client.get(url)
    times: list[float] = []
    while len(times) < runs or (while_running is not None and while_running.poll() is None and len(times) < 10 * runs):
        start = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, response.status_code
        if while_running is not None and while_running.poll() is not None:
            break
        time.sleep(0.2)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--silent-domains", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--write", help="append the figures to this Markdown file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child)
        return
    VAR.mkdir(parents=True, exist_ok=True)
    call_command("migrate", verbosity=0)
    rows, public = domains(args.domains)
    server = DnsServer(VAR)
    server.publish(**zone(rows, public))
    operator = User.objects.filter(email="bench@panel.test").first() or User.objects.create_superuser(
        email="bench@panel.test", password=None)
    client = Client(HTTP_ACCEPT_LANGUAGE="fr")
    client.force_login(operator)
    url = reverse("screens:domain", args=[rows[0].pk])
    lines = []
    try:
        idle = page_times(client, url, args.runs)
        child = checks_in_child(server.address)
        during = page_times(client, url, args.runs, child)
        out, _ = child.communicate()
        checked, seconds = out.split()
        answered = checked
        green = sum(1 for found in DnsCheck.objects.filter(domain__in=rows)
                    if all(c["status"] == "ok" for c in found.results["checks"]))
        lines += [
            f"## DNS checks benchmark (issue 18, item 9) — {date.today():%Y-%m-%d} "
            f"({connection_label()}, {os.cpu_count()} cores shared, {platform.python_implementation()} "
            f"{platform.python_version()})",
            "",
            f"`bench/dns_bench.py`: {checked} domains checked as the beat checks them (MX, SPF with the host's "
            f"address, one DKIM key, DMARC: 4-5 lookups a domain; batches of {dnscheck.BATCH}, "
            f"{settings.DNS_CHECK_THREADS} at once), in another process while the domain's menu page is "
            "asked every 0.2 s.",
            "",
            "| case | domains | wall time | domains/s |",
            "|---|---|---|---|",
            f"| dnsmasq answering (three in four green, one without DMARC: {green} all green) | {checked} | "
            f"{float(seconds):.1f} s | {int(checked) / float(seconds):.0f} |",
        ]
        print("\n".join(lines))  # noqa: T201
        if args.silent_domains:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # takes queries, never answers
                silent.bind(("127.0.0.1", 0))
                DnsCheck.objects.all().delete()
                Domain.objects.filter(pk__in=[row.pk for row in rows[args.silent_domains:]]).delete()
                child = checks_in_child(f"127.0.0.1:{silent.getsockname()[1]}")
                out, _ = child.communicate()
                checked, seconds = out.split()
                line = (f"| silent server (every lookup waits its 2 s) | {checked} | {float(seconds):.1f} s | "
                        f"{int(checked) / float(seconds):.1f} |")
                lines.append(line)
                print(line)  # noqa: T201
        lines += [
            "",
            "| domain menu page (server time, test client) | p50 | p95 | max | requests |",
            "|---|---|---|---|---|",
            f"| idle | {statistics.median(idle) * 1000:.1f} ms | {pct(idle, 95) * 1000:.1f} ms | "
            f"{max(idle) * 1000:.1f} ms | {len(idle)} |",
            f"| while the {answered} domains are checked (dnsmasq answering) | "
            f"{statistics.median(during) * 1000:.1f} ms | {pct(during, 95) * 1000:.1f} ms | "
            f"{max(during) * 1000:.1f} ms | {len(during)} |",
        ]
        print("\n".join(lines[-4:]))  # noqa: T201
    finally:
        server.stop()
    if args.write:
        with open(args.write, "a", encoding="utf-8") as handle:
            handle.write("\n" + "\n".join(lines) + "\n")


def connection_label() -> str:
    return "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"


PLAIN_STATIC = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
                "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}

if __name__ == "__main__":
    with override_settings(STORAGES=PLAIN_STATIC):  # no collectstatic manifest needed
        main()
