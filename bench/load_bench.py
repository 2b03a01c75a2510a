"""Load test of a domain's screens through gunicorn, with wrk: 50 logged-in clients for 60 s.

A domain of 100,000 POP accounts (made once, in bulk, and kept for the next runs) in PostgreSQL;
gunicorn on 127.0.0.1 with production settings (DEBUG off, the manifest's static files, Redis
cache); 50 clients log in through the login page (session and CSRF cookies, as a browser gets
them); then wrk (`bench/load_mix.lua`, one thread and one connection per client) drives for 60 s
a mix of the POP accounts' list (page 1, a page further on, an index letter), searches and
account creations (the form's POST with its CSRF token; the list is opened after each one).

    apt-get install wrk                                   # once (Debian's wrk 4.1)
    createdb -h 127.0.0.1 -U postgres mailpanel_perf      # once
    .venv/bin/python bench/load_bench.py [--clients 50] [--seconds 60] [--workers 2] [--write BENCHMARKS.md]
                                         [--mix list=35,paged=25,index=25,search=14,create=1]
    .venv/bin/python bench/load_bench.py --profile [--runs 200] [--path accounts/]   # one page in process

It prints list pages a second, p50 / p95 / p99 per kind, the answers that were not the expected
ones (a list or a search must answer 200, a creation 302: anything else is an error), and where
the machine's CPU went (gunicorn, PostgreSQL, wrk, the rest: the kernel and other processes).
gunicorn runs 2 sync workers, one a core: a page is Python's CPU, threads would only take turns
on the GIL (BENCHMARKS.md). `--profile` requests the list's page 1 (50 rows; `--path forwards/`,
`audit/`, `lists/<id>/members/` for another page of the domain) in this process, as the domain's postmaster, and
prints its CPU time (`time.process_time`), wall time, SQL time and queries, then cProfile's
figures by package.

Environment: LOAD_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/mailpanel_perf),
LOAD_REDIS_URL (default redis://127.0.0.1:6379/11: the cache, and the broker the creations'
pushes are queued to), VAR_DIR (default /tmp/var-load: static files, gunicorn's log). No mail
stack and no Celery worker: the first creation queues its domain's push, the domain's
`DomainSync.queued` flag then stays set, so the others queue nothing more (the one message waits
in that Redis database; the mail host is not what is measured).
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import os
import pstats
import re
import secrets
import statistics
import subprocess
import time
import urllib.parse
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ["BENCH_DATABASE_URL"] = os.environ.get("LOAD_DATABASE_URL",
                                                  "postgres://postgres@127.0.0.1:5432/mailpanel_perf")
os.environ["REDIS_URL"] = os.environ.get("LOAD_REDIS_URL", "redis://127.0.0.1:6379/11")
os.environ.setdefault("VAR_DIR", "/tmp/var-load")  # noqa: S108 - a throw-away folder of the bench
os.environ["DEBUG"] = "0"
os.environ["ALLOWED_HOSTS"] = "127.0.0.1,testserver"
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
Path(os.environ["VAR_DIR"]).mkdir(parents=True, exist_ok=True)

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from screens_bench import PASSWORD, admin_client, fill, settle  # noqa: E402 - sets Django up

from hosting.models import Domain, MailHost, Plan, User  # noqa: E402
from hosting.services import customer_create, pack_create  # noqa: E402
from lists.models import ListMember, MailingList  # noqa: E402
from mail.models import Mailbox  # noqa: E402
from provisioning.domains import domain_create  # noqa: E402

HOST = "127.0.0.1"
LUA = Path(__file__).resolve().parent / "load_mix.lua"
LIST_KINDS = ("list", "paged", "index")  # the list's page 1, a page drawn among all, an index letter
KINDS = (*LIST_KINDS, "search", "create")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def the_domain(size: int) -> Domain:
    """The domain of `size` POP accounts (a fifth as many forwards, a list "news" of size / 2
    subscribers), made once; the accounts earlier runs created are removed."""
    name = f"load{size}.test"
    domain = Domain.objects.filter(name=name).first()
    if domain is None:
        operator = User.objects.filter(email="load@panel.test").first() or User.objects.create_superuser(
            email="load@panel.test", password=None)
        plan, _ = Plan.objects.get_or_create(name="Load bench", reseller=None, defaults=dict(
            max_domains=-1, max_mailboxes=-1, max_forwards=-1, max_robots=-1, max_lists=-1))
        customer = customer_create(reseller=None, name=f"Load {size}", acting_user=operator)
        host, _ = MailHost.objects.get_or_create(name="load-bench")
        pack = pack_create(customer=customer, plan=plan, mail_host=host, acting_user=operator)
        domain = domain_create(pack=pack, name=name, acting_user=operator)
        print(f"making {size:,} mailboxes in {name} (once)...", flush=True)
        fill(domain, size)
    news, _ = MailingList.objects.get_or_create(domain=domain, name="news", defaults={"owner": "owner@remote.test"})
    if not ListMember.objects.filter(mailing_list=news).exists():  # for --profile --path lists/<id>/members/
        ListMember.objects.bulk_create([ListMember(mailing_list=news, address=f"m{i:06d}@remote.test")
                                        for i in range(size // 2)], batch_size=5000)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE lists_listmember")  # as settle() does for the others
    Mailbox.objects.filter(domain=domain, local_part__startswith="load").delete()
    settle()
    return domain


# --- the clients ------------------------------------------------------------------------------------

def cookies_of(response: http.client.HTTPResponse) -> dict[str, str]:
    found = {}
    for header in response.headers.get_all("Set-Cookie") or []:
        name, _sep, rest = header.partition("=")
        found[name.strip()] = rest.split(";", 1)[0]
    return found


def fetch(port: int, method: str, path: str, cookies: dict[str, str], form: dict[str, str] | None = None
          ) -> tuple[int, dict[str, str], str, str]:
    """One request; (status, the cookies it set, its Location, its body)."""
    connection_ = http.client.HTTPConnection(HOST, port, timeout=30)
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()), "Accept-Language": "fr"}
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form)
        headers |= {"Content-Type": "application/x-www-form-urlencoded", "Referer": f"http://{HOST}:{port}{path}"}
    connection_.request(method, path, body=body, headers=headers)
    response = connection_.getresponse()
    text = response.read().decode()
    connection_.close()
    return response.status, cookies_of(response), response.getheader("Location", ""), text


def csrf_field(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def log_in(port: int, domain: Domain) -> tuple[str, str]:
    """A client logged in as the domain's postmaster through the login page: its Cookie header
    (session and CSRF cookies) and the CSRF token of the "new POP account" form."""
    status, cookies, _location, html = fetch(port, "GET", "/login/", {})
    assert status == 200, status
    status, set_now, location, html = fetch(port, "POST", "/login/", cookies, {
        "csrfmiddlewaretoken": csrf_field(html), "account": "postmaster", "domain": domain.name,
        "password": PASSWORD})
    assert status == 302 and "sessionid" in set_now, (status, html[:2000])
    cookies |= set_now
    status, set_now, _location, html = fetch(port, "GET", f"/domains/{domain.pk}/accounts/new/", cookies)
    assert status == 200, status
    cookies |= set_now
    status, _set, _location, html = fetch(port, "GET", f"/domains/{domain.pk}/accounts/", cookies)
    assert status == 200 and domain.name in html, status
    return "; ".join(f"{k}={v}" for k, v in cookies.items()), csrf_field(
        fetch(port, "GET", f"/domains/{domain.pk}/accounts/new/", cookies)[3])


# --- the server -------------------------------------------------------------------------------------

def start_gunicorn(port: int, workers: int, worker_class: str, threads: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": os.environ["BENCH_DATABASE_URL"]}
    log = open(Path(os.environ["VAR_DIR"]) / "gunicorn.log", "w")  # noqa: SIM115 - open while it runs
    server = subprocess.Popen(  # noqa: S603 - our own gunicorn
        [str(ROOT / ".venv" / "bin" / "gunicorn"), "config.wsgi", "--bind", f"{HOST}:{port}",
         "--workers", str(workers), "--worker-class", worker_class, "--threads", str(threads),
         "--backlog", "2048", "--chdir", str(ROOT)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    for _ in range(300):
        try:
            http.client.HTTPConnection(HOST, port, timeout=1).request("GET", "/login/")
            return server
        except OSError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit(f"gunicorn did not start: see {log.name}")


def cpu_seconds(pids: list[int], children: bool = False) -> float:
    """utime + stime of these processes (seconds), with their ended children's if asked."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        total += sum(int(v) for v in fields[11:15 if children else 13])
    return total / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> float:
    """The CPU seconds of every PostgreSQL process of this machine, ended backends included
    (counted in the postmaster's children's time once it reaped them)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text:
            parent = int(text.rpartition(")")[2].split()[1])
            total += cpu_seconds([int(stat.parent.name)], children=parent == 1)
    return total


def family(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *map(int, children)]


def machine_cpu() -> tuple[float, float]:
    """(busy, all) seconds of every core since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / os.sysconf("SC_CLK_TCK"), sum(values) / os.sysconf("SC_CLK_TCK")


# --- the run ----------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> None:
    domain = the_domain(args.mailboxes)
    call_command("collectstatic", interactive=False, verbosity=0)
    connection.close()
    server = start_gunicorn(args.port, args.workers, args.worker_class, args.threads)
    out = Path(os.environ["VAR_DIR"]) / "load-records.txt"
    try:
        clients = [log_in(args.port, domain) for _ in range(args.clients)]
        clients_file = Path(os.environ["VAR_DIR"]) / "load-clients.txt"
        clients_file.write_text("".join(f"{cookie.replace(' ', '')} {token}\n" for cookie, token in clients))
        pages = max(2, (args.mailboxes + 49) // 50)
        env = {**os.environ, "LOAD_CLIENTS": str(clients_file), "LOAD_OUT": str(out), "LOAD_MIX": args.mix,
               "LOAD_PAGES": str(pages), "LOAD_LIST_PATH": f"/domains/{domain.pk}/accounts/",
               "LOAD_CREATE_PATH": f"/domains/{domain.pk}/accounts/new/",
               "LOAD_PASSWORD": urllib.parse.quote_plus(PASSWORD)}
        web = family(server.pid)
        web_before, pg_before, (busy_before, all_before) = cpu_seconds(web), postgres_cpu(), machine_cpu()
        started = time.monotonic()
        wrk = subprocess.Popen(  # noqa: S603 - Debian's wrk
            ["/usr/bin/wrk", "-t", str(args.clients), "-c", str(args.clients), "-d", f"{args.seconds}s",
             "--timeout", "30s", "-s", str(LUA), f"http://{HOST}:{args.port}"],
            env=env, stdout=subprocess.PIPE, text=True)
        _pid, _status, usage = os.wait4(wrk.pid, 0)
        elapsed = time.monotonic() - started
        web_cpu, pg_cpu = cpu_seconds(web) - web_before, postgres_cpu() - pg_before
        busy_after, all_after = machine_cpu()
        summary = wrk.stdout.read()
    finally:
        server.terminate()
        server.wait(30)
    report(args, domain, out, elapsed, summary, {"gunicorn": web_cpu, "PostgreSQL": pg_cpu,
                                                 "wrk": usage.ru_utime + usage.ru_stime},
           busy_after - busy_before, all_after - all_before)


def report(args: argparse.Namespace, domain: Domain, out: Path, elapsed: float, summary: str,
           cpu: dict[str, float], busy: float, capacity: float) -> None:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    expected = {"create": 302}  # else 200
    for line in out.read_text().splitlines():
        kind, status, micros = line.split()
        latencies[kind].append(int(micros) / 1000)
        if int(status) != expected.get(kind, 200):
            errors[kind][status] += 1
    latencies["all list pages"] = [v for kind in LIST_KINDS for v in latencies.get(kind, [])]
    errors["all list pages"] = {"any": sum(sum(errors[kind].values()) for kind in LIST_KINDS)}
    total = sum(len(latencies.get(kind, [])) for kind in KINDS)
    seconds = args.seconds
    lines = [
        f"## Load test — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} ({os.cpu_count()} cores, "
        f"{args.clients} clients, "
        f"{seconds} s, gunicorn {args.workers} {args.worker_class} workers × {args.threads} thread(s))", "",
        f"Mix `{args.mix}` on `{domain.name}` ({Mailbox.objects.filter(domain=domain).count():,} POP accounts).", "",
        "| kind | requests | per second | p50 | p95 | p99 | max | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind in (*LIST_KINDS, "all list pages", "search", "create"):
        values = latencies.get(kind, [])
        if not values:
            continue
        wrong = ", ".join(f"{n} × {status}" for status, n in sorted(errors[kind].items())) or "0"
        lines.append(f"| {kind} | {len(values):,} | {len(values) / seconds:.1f} | {pct(values, 50):.0f} ms | "
                     f"{pct(values, 95):.0f} ms | {pct(values, 99):.0f} ms | {max(values):.0f} ms | {wrong} |")
    everything = [v for kind in KINDS for v in latencies.get(kind, [])]
    lines.append(f"| all | {total:,} | {total / seconds:.1f} | {pct(everything, 50):.0f} ms | "
                 f"{pct(everything, 95):.0f} ms | {pct(everything, 99):.0f} ms | {max(everything):.0f} ms | "
                 f"{sum(sum(errors[kind].values()) for kind in KINDS)} |")
    shares = ", ".join(f"{name} {seconds:.1f} s ({1000 * seconds / total:.1f} ms a request)"
                       for name, seconds in cpu.items())
    lines += ["", f"CPU over the run ({elapsed:.0f} s, {capacity:.0f} core-seconds): {shares}; the rest (kernel, "
              f"Redis, others) {busy - sum(cpu.values()):.1f} s; idle {capacity - busy:.1f} s. "
              "gunicorn's figure includes the creations' password hashing.", ""]
    others = busy - sum(cpu.values())
    if others > 0.1 * capacity:
        lines += [f"The machine was shared: {others:.0f} of its {capacity:.0f} core-seconds went to other processes; "
                  "the CPU a request costs compares with other runs, its throughput and latency do not.", ""]
    print(summary)
    print("\n".join(lines))
    if args.write:
        with open(args.write, "a", encoding="utf-8") as handle:
            handle.write("\n" + "\n".join(lines) + "\n")


# --- the profile ------------------------------------------------------------------------------------

PACKAGES = (  # the first that a function's file path contains names it
    ("django_tables2", "django-tables2"), ("django/template", "Django templates"),
    ("django/utils/translation", "Django translation"), ("django/utils/html", "Django html/format_html"),
    ("django/utils/safestring", "Django html/format_html"), ("django/db", "Django ORM"), ("psycopg", "psycopg"),
    ("django/urls", "Django urls"), ("django/middleware", "Django middleware"),
    ("django/contrib/sessions", "sessions"), ("django/core/paginator", "Django paginator"),
    ("allauth", "allauth"), ("csp", "django-csp"), ("whitenoise", "whitenoise"), ("django", "Django, other"),
)


def package_of(path: str) -> str:
    if "site-packages" not in path:
        return "the panel's code" if str(ROOT) in path else "Python"
    return next((label for key, label in PACKAGES if key in path), "other libraries")


def profile(args: argparse.Namespace) -> None:
    domain = the_domain(args.mailboxes)
    call_command("collectstatic", interactive=False, verbosity=0)
    client = admin_client(Mailbox.objects.get(domain=domain, local_part="postmaster"))
    url = f"/domains/{domain.pk}/{args.path}"
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        for _ in range(20):
            assert client.get(url).status_code == 200
        sql = []

        def timed(execute, sql_, params, many, context):  # noqa: ANN001, ANN202 - Django's wrapper protocol
            start = time.perf_counter()
            try:
                return execute(sql_, params, many, context)
            finally:
                sql.append(time.perf_counter() - start)

        cpu, wall, sql_wall, queries = [], [], [], []
        with connection.execute_wrapper(timed):
            for _ in range(args.runs):
                sql.clear()
                start_cpu, start = time.process_time(), time.perf_counter()
                response = client.get(url)
                cpu.append(time.process_time() - start_cpu)
                wall.append(time.perf_counter() - start)
                sql_wall.append(sum(sql))
                queries.append(len(sql))
        rows = response.content.count(b"<tr") - 1
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.runs):
            client.get(url)
        profiler.disable()
    ms = 1000
    print(f"{url} ({rows} rows, {Mailbox.objects.filter(domain=domain).count():,} POP accounts), "
          f"{args.runs} runs in process:")
    print(f"  CPU (process_time) p50 {statistics.median(cpu) * ms:.1f} ms, p95 {pct(cpu, 95) * ms:.1f} ms; "
          f"wall p50 {statistics.median(wall) * ms:.1f} ms; SQL (wall, {queries[0]} queries) "
          f"p50 {statistics.median(sql_wall) * ms:.1f} ms")
    stats = pstats.Stats(profiler)
    by_package: dict[str, float] = defaultdict(float)
    for (path, _line, _name), (_cc, _nc, tottime, _cum, _callers) in stats.stats.items():
        by_package[package_of(path)] += tottime
    whole = sum(by_package.values())
    print(f"  cProfile, own time by package (per page, under the profiler: {whole / args.runs * ms:.1f} ms):")
    for label, seconds in sorted(by_package.items(), key=lambda item: -item[1]):
        print(f"    {label:30} {seconds / args.runs * ms:6.1f} ms  {100 * seconds / whole:4.0f} %")
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
    print(text.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--mix", default="list=35,paged=25,index=25,search=14,create=1")
    parser.add_argument("--mailboxes", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="sync")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--port", type=int, default=8711)
    parser.add_argument("--write", help="append the figures to this Markdown file")
    parser.add_argument("--profile", action="store_true", help="profile the list's page 1 in process instead")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--path", default="accounts/", help="the page --profile requests, under /domains/<id>/")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    (profile if args.profile else run)(args)


if __name__ == "__main__":
    main()
