"""Benchmark of a domain's CSV export and import (mail.transfer; a script with figures, not a test).

For domains of 1,000, 10,000 and 50,000 mailboxes (and a fifth as many forwards, bench/screens_bench.py's
`fill`): the server time of the POP accounts' and the forwards' export (Django's test client,
the whole streamed response read), its SQL queries, its size and the peak memory Python allocated
while it ran (tracemalloc: the same at both sizes when the rows are streamed); then an import of
500 new forwards run as the bulk worker runs it (`run_import`, batches of 500).

    BENCH_DATABASE_URL=postgres://... .venv/bin/python -m bench.transfer_bench [--runs 5] [--write BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import override_settings
from django.urls import reverse

from bench.screens_bench import admin_client, bench_domain, publish
from hosting.models import Domain, User
from mail import transfer
from mail.models import AccountImport, Forward, ImportKind


def export(client: Client, url: str, runs: int) -> dict[str, float]:
    """The export read whole: p50 time, queries, bytes, peak memory allocated meanwhile."""
    statements: list[str] = []

    def count(execute, sql, params, many, context):  # noqa: ANN001, ANN202 - Django's wrapper protocol
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        size = sum(len(chunk) for chunk in client.get(url).streaming_content)
    tracemalloc.start()
    sum(len(chunk) for chunk in client.get(url).streaming_content)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        sum(len(chunk) for chunk in client.get(url).streaming_content)
        times.append(time.perf_counter() - start)
    return {"p50": statistics.median(times), "queries": len(statements), "bytes": size, "peak": peak}


def forward_import(domain: Domain, operator: User, lines: int) -> float:
    """`lines` new forwards imported as the bulk worker imports them: seconds."""
    text = "\n".join(f"imported{i:05d};u{i:06d}@{domain.name} x@remote.test" for i in range(lines))
    job = AccountImport.objects.create(domain=domain, kind=ImportKind.FORWARDS, total=lines)
    start = time.perf_counter()
    transfer.run_import(job.pk, transfer._fernet().encrypt(text.encode()).decode(), "fr",
                        transfer.actor_ref(operator))
    elapsed = time.perf_counter() - start
    job.refresh_from_db()
    assert job.created == lines, (job.created, job.refused[:3])
    return elapsed


def exports(size: int, made: list[tuple[Domain, User]], runs: int) -> dict[str, dict[str, float]]:
    """Both exports of a new domain of `size` mailboxes (added to `made`)."""
    domain, postmaster, operator = bench_domain("Transfer", size)
    made.append((domain, operator))
    client = admin_client(postmaster)
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        return {kind: export(client, reverse(f"screens:{name}_export", args=[domain.pk]), runs)
                for kind, name in (("mailboxes", "mailbox"), ("forwards", "forward"))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--import-lines", type=int, default=500)
    parser.add_argument("--import-into", type=int, default=10000, help="the size of the domain imported into")
    parser.add_argument("--write", help="append the figures to this Markdown file")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",") if n]

    call_command("migrate", verbosity=0)
    made: list[tuple[Domain, User]] = []  # removed at the end, whatever happens
    try:
        figures = {size: exports(size, made, args.runs) for size in sizes}
        into, operator = made[sizes.index(args.import_into)]
        imported = forward_import(into, operator, args.import_lines)
        assert Forward.objects.filter(domain=into, local_part__startswith="imported").count() == args.import_lines
    finally:
        Domain.objects.filter(pk__in=[domain.pk for domain, _operator in made]).delete()

    database = "PostgreSQL" if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else "SQLite"
    lines = [f"## CSV export and import benchmark — {time.strftime('%Y-%m-%d')} ({database}, {os.cpu_count()} cores)",
             "", "`bench/transfer_bench.py`: the whole streamed response read through Django's test client "
             "(server time); peak: what Python allocated while one export ran (tracemalloc).", "",
             "| export | " + " | ".join(f"{n:,} mailboxes" for n in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for key, label in (("mailboxes", "POP accounts"), ("forwards", "forwards (a fifth as many)")):
        lines.append(f"| {label}: p50 ({args.runs} runs), SQL queries, size, peak memory | " + " | ".join(
            f"{figures[n][key]['p50'] * 1000:.0f} ms, {figures[n][key]['queries']} q, "
            f"{figures[n][key]['bytes'] / 1024:.0f} KiB, {figures[n][key]['peak'] / 1024:.0f} KiB"
            for n in sizes) + " |")
    lines += ["", f"Import of {args.import_lines:,} new forwards as the bulk worker runs it (`run_import`, batches of "
              f"{transfer.BATCH[ImportKind.FORWARDS]}, into the {args.import_into:,}-mailbox domain): {imported:.1f} s "
              f"({imported / args.import_lines * 1000:.1f} ms a line). A POP account's import costs its password's "
              "hashing on top (argon2id, about 0.2 s a core).", ""]
    publish(lines, args.write)


if __name__ == "__main__":
    main()
