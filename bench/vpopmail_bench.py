"""vpopmail import benchmark (issue 17, item 4): a script with figures, not a timed test.

A vpopmail tree of 10,000 mailboxes of 10 messages each (tests/vpopmail_tree.py's `big_tree`: four
domains, 2 kB messages) is made under the agent's import root (its default, ROOT/old), then
`manage.py import_vpopmail TREE --pack ID` runs as an operator runs it (a process of its own),
against the real stack (Postfix, Dovecot), the panel's worker, its bulk worker and the mail host's
agent. Measured, from the command's own lines (each stamped as it is read) and the database:
  1. reading the tree (`reader.read_server`), then the rows: the plan and the write;
  2. the host's apply of the new domains and their mailboxes (rows written → DomainSync applied);
  3. the mail copy: the request → every MailImport done, messages a second, and the agent's CPU
     (its own, and its doveadm children's);
  4. a second run of the same command (nothing to do): its rows and its mail;
  5. the floor: the same Maildirs copied with `cp -a` to a scratch folder on the same disk (then
     `sync`), and `doveadm import` of a few of them called by hand, one at a time and as many at
     once as the agent runs; the panel's copy over that floor is the ratio.

Run as root (it starts Postfix, Dovecot and the Celery workers):
    VAR_DIR=... .venv/bin/python bench/vpopmail_bench.py [--mailboxes 10000] [--messages 10] [--write BENCHMARKS.md]
It uses its own database (BENCH_DATABASE_URL, default a fresh SQLite file under VAR_DIR) and the broker
the settings select (REDIS_URL for Redis, else the embedded SQLite broker under VAR_DIR). The trees
are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VAR = Path(os.environ.get("VAR_DIR", ROOT / "var"))
SQLITE_FILE = VAR / "vpopmail-bench.sqlite3"
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{SQLITE_FILE}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "0")  # as in production (its workers and the command too)
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))
os.environ.setdefault("ALLOWED_HOSTS", "localhost")  # the command runs the system checks, as in production

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from hosting.models import Domain, MailHost, Plan, User  # noqa: E402
from hosting.services import customer_create, pack_create  # noqa: E402
from mail.models import Mailbox  # noqa: E402
from mailhost import mailimport  # noqa: E402
from mailhost.stack import PORT_FIELDS, StackConfig, down, install_packages, up  # noqa: E402
from provisioning.models import DomainSync, MailImport, MailImportState  # noqa: E402
from tests.e2e.workers import Worker, make_workers  # noqa: E402
from tests.vpopmail_tree import big_tree  # noqa: E402
from vpopmail import reader  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
FLOOR_SERIAL = 20  # mailboxes imported by hand one at a time
FLOOR_PARALLEL = 200  # and as many at once as the agent imports


@dataclass
class Run:
    """One run of the command: its lines with the second each was read, and what the database says."""

    started: float
    lines: list[tuple[float, str]] = field(default_factory=list)
    ended: float = 0.0
    code: int = 0

    def first(self, prefix: str) -> float:
        return next(t for t, line in self.lines if line.startswith(prefix))

    def last(self, text: str, before: float | None = None) -> float:
        return max(t for t, line in self.lines if text in line and (before is None or t <= before))


def command(tree: Path, pack_id: int, wait: float) -> Run:
    """`manage.py import_vpopmail TREE --pack ID`, its stdout and stderr read line by line."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, str(ROOT / "manage.py"), "import_vpopmail", str(tree), "--pack", str(pack_id),
            "--wait", str(wait)]
    run = Run(started=time.time())
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,  # noqa: S603
                            stdin=subprocess.DEVNULL, text=True, bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        run.lines.append((time.time(), line.rstrip("\n")))
    run.code = proc.wait()
    run.ended = time.time()
    if run.code != 0:
        print("\n".join(line for _t, line in run.lines[-40:]))
        raise SystemExit(f"import_vpopmail exited with {run.code}")
    return run


def cpu(pid: int) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of a process (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) / TICKS, (cutime + cstime) / TICKS


def stamp(moment: datetime | None) -> float:
    assert moment is not None
    return moment.timestamp()


def phases(run: Run, domains: list[Domain], imports_before: int) -> dict[str, Any]:
    """The run's figures: its lines for the reading and the rows, the database for the host's
    apply and the mail copy."""
    planned = run.first("Into pack")
    written = run.first("Created:")
    figures: dict[str, Any] = {
        "startup": run.first("reading ") - run.started,
        "read": run.last("accounts read", before=planned) - run.first("reading "),
        "plan": planned - run.last("accounts read", before=planned),
        "write": written - planned,
        "command": run.ended - run.started,
        "created": next(line for _t, line in run.lines if line.startswith("Created:")),
    }
    figures["rows"] = figures["plan"] + figures["write"]
    syncs = DomainSync.objects.filter(domain__in=domains)
    revisions = dict(Domain.objects.filter(pk__in=[d.pk for d in domains]).values_list("pk", "revision"))
    assert all(s.applied_revision >= revisions[s.domain_id] for s in syncs), "a domain not applied"
    # A run that wrote nothing has nothing to apply (None); a negative figure: the host had applied
    # the last revision before the command printed what it created (the pushes follow the batches).
    new = not figures["created"].startswith("Created: nothing")
    figures["applied"] = max(stamp(s.applied_at) for s in syncs) - written if new else None
    items = list(MailImport.objects.filter(domain__in=domains).order_by("pk")[imports_before:])
    assert items and all(i.state == MailImportState.DONE for i in items), [(i.state, i.error[:300]) for i in items]
    figures["copy"] = max(stamp(i.finished_at) for i in items) - min(stamp(i.created_at) for i in items)
    figures["copy_from_sent"] = max(stamp(i.finished_at) for i in items) - min(stamp(i.sent_at) for i in items)
    figures["agent_seconds"] = sum(i.seconds for i in items)
    figures["copied"] = sum(i.copied for i in items)
    figures["present"] = sum(int(r.get("present", 0)) for i in items for r in i.results)
    figures["requests"] = len(items)
    return figures


def doveadm(conf: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([mailimport.DOVEADM, "-c", str(conf), *args], check=True,  # noqa: S603 - fixed program
                   capture_output=True, timeout=600)
    return time.perf_counter() - start


def floor(tree: Path, scratch: Path, conf: Path, boxes: list[tuple[str, Path]], concurrency: int) -> dict[str, float]:
    """The disk's and doveadm's floor: the Maildirs copied whole with `cp -a` (then `sync`), and
    `doveadm import` of a few of those copies into their mailboxes (folder "floor"), by hand."""
    subprocess.run(["sync"], check=True)  # noqa: S607 - the tree's own writes out of the way
    start = time.perf_counter()
    subprocess.run(["cp", "-a", str(tree / "home"), str(scratch)], check=True)  # noqa: S603, S607
    copied = time.perf_counter() - start
    subprocess.run(["sync"], check=True)  # noqa: S607
    synced = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run(["rsync", "-a", str(tree / "home") + "/", str(scratch / "rsync")], check=True)  # noqa: S603, S607
    rsynced = time.perf_counter() - start

    def copy_of(maildir: Path) -> Path:
        return scratch / "home" / maildir.relative_to(tree / "home")

    def one(pair: tuple[str, Path]) -> float:
        return doveadm(conf, "import", "-u", pair[0], f"maildir:{copy_of(pair[1])}", "floor", "all")

    serial = [one(pair) for pair in boxes[:FLOOR_SERIAL]]
    fetches = [doveadm(conf, "-f", "tab", "fetch", "-u", address, "mailbox guid", "all")
               for address, _m in boxes[:FLOOR_SERIAL]]
    batch = boxes[FLOOR_SERIAL:FLOOR_SERIAL + FLOOR_PARALLEL]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, batch))
    parallel = time.perf_counter() - start
    return {"cp": copied, "cp_sync": synced, "rsync": rsynced, "import_one": sum(serial) / len(serial),
            "fetch_one": sum(fetches) / len(fetches), "parallel_each": parallel / len(batch),
            "parallel_boxes": len(batch)}


def check_mail(conf: Path, boxes: list[tuple[str, Path]], messages: int) -> None:
    """A few mailboxes hold every message (Dovecot's own count)."""
    for address, _maildir in boxes[:: max(1, len(boxes) // 5)]:
        out = subprocess.run([mailimport.DOVEADM, "-c", str(conf), "-f", "flow", "mailbox", "status",  # noqa: S603
                              "-u", address, "messages", "INBOX"], check=True, capture_output=True, text=True)
        assert out.stdout.split() == ["INBOX", f"messages={messages}"], (address, out.stdout)


def remove(*paths: Path) -> None:
    """The big trees away (`rm -rf`: Python's rmtree takes minutes over their 300,000 files)."""
    subprocess.run(["rm", "-rf", "--one-file-system", *map(str, paths)], check=False)  # noqa: S603, S607


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoadWatch:
    """The load average every second while the benchmark runs: its range."""

    def __init__(self) -> None:
        self.seen: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self) -> None:
        while not self.stop.wait(1.0):
            self.seen.append(os.getloadavg()[0])

    def span(self) -> str:
        return f"{min(self.seen):.1f} – {max(self.seen):.1f}" if self.seen else "?"


def bench(args: argparse.Namespace, stack: Any, log_dir: Path) -> dict[str, Any]:
    workers = make_workers(stack, log_dir)
    started: list[Worker] = [w for w in (workers.panel, workers.bulk, workers.agent) if w is not None]
    for worker in started:
        worker.mark()
        worker.start()
    conf = stack.config.dovecot_dir / "dovecot.conf"
    old = stack.config.root / "old"
    old.mkdir(mode=0o755, exist_ok=True)
    tree_root = old / "tree"
    scratch = old.parent / "floor-scratch"  # the same disk, outside the import root
    try:
        host, _ = MailHost.objects.get_or_create(name=workers.host_name, defaults={"fqdn": "127.0.0.1"})
        operator = User.objects.get(email="bench@panel.test")
        plan = Plan.objects.get(name="vpopmail bench")
        pack = pack_create(customer=customer_create(reseller=None, name=f"Moved in {secrets.token_hex(3)}",
                                                    acting_user=operator),
                           plan=plan, mail_host=host, acting_user=operator)
        start = time.perf_counter()
        tree = big_tree(tree_root, args.mailboxes, args.messages)
        built = time.perf_counter() - start
        print(f"tree of {args.mailboxes} mailboxes x {args.messages} messages built in {built:.1f} s", flush=True)
        start = time.perf_counter()
        reader.read_server(tree_root)
        read_alone = time.perf_counter() - start

        agent_pid = workers.agent.process.pid if workers.agent.process else 0
        cpu_before = cpu(agent_pid)
        first = command(tree_root, pack.pk, args.wait)
        cpu_after = cpu(agent_pid)
        domains = list(Domain.objects.filter(pack=pack, name__in=tree.domains))
        assert len(domains) == len(tree.domains), first.lines[-20:]
        assert Mailbox.objects.filter(domain__in=domains).count() == args.mailboxes
        one = phases(first, domains, 0)
        assert one["copied"] == args.mailboxes * args.messages, one
        one["agent_cpu"], one["doveadm_cpu"] = (cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1])
        print("first run", {k: v for k, v in one.items()}, flush=True)
        boxes = [(address, box.maildir) for address, box in tree.mailboxes.items()]
        check_mail(conf, boxes, args.messages)

        cpu_before = cpu(agent_pid)
        second = command(tree_root, pack.pk, args.wait)
        cpu_after = cpu(agent_pid)
        two = phases(second, domains, one["requests"])
        assert two["copied"] == 0 and two["present"] == args.mailboxes * args.messages, two
        two["agent_cpu"], two["doveadm_cpu"] = (cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1])
        print("second run", two, flush=True)
        check_mail(conf, boxes, args.messages)

        scratch.mkdir(mode=0o700)
        base = floor(tree_root, scratch, conf, boxes, mailimport.CONCURRENCY)
        print("floor", base, flush=True)
        return {"first": one, "second": two, "floor": base, "built": built, "read_alone": read_alone,
                "bytes": sum(len(m.data) for box in tree.mailboxes.values() for m in box.messages),
                "domains": len(tree.domains)}
    finally:
        for worker in reversed(started):
            worker.stop()
        remove(tree_root, scratch)


def seconds(value: float | None) -> str:
    if value is None:
        return "— (nothing new)"
    return f"{value:.1f} s" if value > 0 else "0 (applied as the batches were written)"


def report(figures: dict[str, Any], args: argparse.Namespace, load: str) -> list[str]:
    one, two, base = figures["first"], figures["second"], figures["floor"]
    total = args.mailboxes * args.messages
    boxes = args.mailboxes
    conc = mailimport.CONCURRENCY
    doveadm_floor = boxes * base["parallel_each"]
    disk_floor = base["cp_sync"]
    broker = "Redis" if os.environ.get("REDIS_URL") else "embedded SQLite broker"
    database = "PostgreSQL" if os.environ["DATABASE_URL"].startswith("postgres") else "SQLite"
    mb = figures["bytes"] / 1e6
    return [
        f"### {database}, {broker} ({os.cpu_count()} cores, load average {load} during the run)",
        "",
        f"{boxes:,} mailboxes of {args.messages} messages ({total:,} messages, {mb:.0f} MB) in "
        f"{figures['domains']} domains; the tree made in {figures['built']:.0f} s.",
        "",
        "| measure | first run | second run (nothing to do) | target |",
        "|---|---|---|---|",
        f"| the command's start (Django, the settings) | {one['startup']:.1f} s | {two['startup']:.1f} s | — |",
        f"| reading the tree (`reader.read_server`) | {one['read']:.1f} s | {two['read']:.1f} s | — |",
        f"| the rows: plan | {one['plan']:.1f} s | {two['plan']:.1f} s | — |",
        f"| the rows: write | {one['write']:.1f} s | {two['write']:.1f} s | — |",
        f"| **the rows (plan + write)** | **{one['rows']:.1f} s** | **{two['rows']:.1f} s** | ≤ 60 s |",
        f"| the host's apply (rows written → every domain applied) | {seconds(one['applied'])} | "
        f"{seconds(two['applied'])} | — |",
        f"| **the mail copy (request → every MailImport done)** | **{one['copy']:.1f} s** | "
        f"**{two['copy']:.1f} s** | bounded by the disk |",
        f"| messages a second (request → done) | {one['copied'] / one['copy']:,.0f} | — "
        f"({two['present']:,} found there) | — |",
        f"| the agent's time on its {one['requests']} requests (one per domain, one after the other) | "
        f"{one['agent_seconds']:.1f} s | {two['agent_seconds']:.1f} s | — |",
        f"| the agent's CPU: its own / its doveadm children's | {one['agent_cpu']:.1f} s / "
        f"{one['doveadm_cpu']:.1f} s | {two['agent_cpu']:.1f} s / {two['doveadm_cpu']:.1f} s | — |",
        f"| the whole command, start → exit | {one['command']:.1f} s | {two['command']:.1f} s | — |",
        "",
        "| the floor (same Maildirs, same disk, by hand) | time | panel's copy / floor |",
        "|---|---|---|",
        f"| `cp -a` of the whole tree to a scratch folder | {base['cp']:.1f} s | {one['copy'] / base['cp']:.1f} |",
        f"| the same, then `sync` | {base['cp_sync']:.1f} s | {one['copy'] / disk_floor:.1f} |",
        f"| `rsync -a` of the whole tree | {base['rsync']:.1f} s | {one['copy'] / base['rsync']:.1f} |",
        f"| `doveadm import` of one mailbox ({args.messages} messages), one at a time (mean of {FLOOR_SERIAL}) | "
        f"{base['import_one'] * 1000:.0f} ms | — |",
        f"| `doveadm fetch` of one mailbox's GUIDs (what the agent asks first; mean of {FLOOR_SERIAL}) | "
        f"{base['fetch_one'] * 1000:.0f} ms | — |",
        f"| `doveadm import`, {conc} at once ({base['parallel_boxes']} mailboxes): a mailbox every | "
        f"{base['parallel_each'] * 1000:.0f} ms | — |",
        f"| so {boxes:,} mailboxes through one `doveadm import` each, {conc} at once | {doveadm_floor:.0f} s | "
        f"{one['copy'] / doveadm_floor:.2f} |",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mailboxes", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--wait", type=float, default=3600.0, help="the command's --wait (the mail copy)")
    parser.add_argument("--write", help="append the figures to this Markdown file")
    args = parser.parse_args()

    if "BENCH_DATABASE_URL" not in os.environ:  # a fresh file: the tree's domains are new each run
        VAR.mkdir(parents=True, exist_ok=True)
        SQLITE_FILE.unlink(missing_ok=True)
    call_command("migrate", verbosity=0)
    if not User.objects.filter(email="bench@panel.test").exists():
        User.objects.create_superuser(email="bench@panel.test", password=None)
    Plan.objects.get_or_create(name="vpopmail bench", reseller=None, defaults=dict(
        max_domains=-1, max_alias_domains=-1, max_mailboxes=-1, max_forwards=-1, max_robots=-1, max_lists=-1,
        max_list_members=-1))
    Domain.objects.filter(name__startswith="bench", name__endswith=".test", pack__plan__name="vpopmail bench").delete()

    install_packages()
    root = Path(tempfile.mkdtemp(prefix="mailpanel-vpopmail-bench-"))
    root.chmod(0o755)
    ports: dict[str, Any] = {name: free_port() for name in PORT_FIELDS}
    config = StackConfig(root=root, **ports)
    log_dir = Path(tempfile.mkdtemp(prefix="mailpanel-vpopmail-bench-logs-"))
    load = LoadWatch()
    stack = up(config)
    try:
        figures = bench(args, stack, log_dir)
    finally:
        load.stop.set()
        down(config)
        remove(root)
    shutil.rmtree(log_dir, ignore_errors=True)  # kept when the run failed: the workers' logs
    lines = report(figures, args, load.span())
    print("\n".join(lines))
    if args.write:
        with open(args.write, "a", encoding="utf-8") as handle:
            handle.write("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
