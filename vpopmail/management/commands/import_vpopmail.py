"""Move a vpopmail / QmailAdmin / ezmlm server into one pack: its domains, alias domains, POP
accounts (passwords as they are), forwards, vacations, robots, catch-alls and mailing lists, then
their mail (`vpopmail.importer` says how each thing is mapped and what is never overwritten)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation

from hosting.models import Pack
from hostlink.mailimport import MailImportRefused, request_mail_import
from provisioning.models import MailImport, MailImportState
from vpopmail import importer, reader
from vpopmail.importer import Kind, State
from vpopmail.source import Problem

WAIT_SECONDS = 3600.0  # the mail copy's wait, by default
POLL_SECONDS = 2.0


def counted(n: int, what: str) -> str:
    """"1 robot", "2 robots", "3 list members"."""
    return f"{n} {what}" if n == 1 or what.endswith("s") else f"{n} {what}s"


class Command(BaseCommand):
    help = ("Import a vpopmail / QmailAdmin server's tree (ROOT holds its home/vpopmail and var/qmail) into a "
            "pack: domains, alias domains, POP accounts with their password hashes, forwards, robots, catch-alls, "
            "mailing lists, then the mail. Safe to run again: what is already there is left as it is.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("root", help="the copy of the old server's tree (holds home/vpopmail and var/qmail)")
        parser.add_argument("--pack", type=int, required=True, dest="pack_id", help="id of the pack to import into")
        parser.add_argument("--dry-run", action="store_true", help="print what would be done; write nothing")
        parser.add_argument("--mail-root", default=None,
                            help="where the same tree is on the pack's mail host (default: ROOT)")
        parser.add_argument("--no-mail", action="store_true", help="import the rows only, not the mail")
        parser.add_argument("--no-wait", action="store_true",
                            help="ask the mail host for the copy and return without waiting for it")
        parser.add_argument("--wait", type=float, default=WAIT_SECONDS,
                            help=f"seconds to wait for the mail copy (default {WAIT_SECONDS:.0f})")

    def progress(self, line: str) -> None:
        self.stderr.write(line)
        self.stderr.flush()

    def handle(self, *args: Any, root: str, pack_id: int, dry_run: bool, mail_root: str | None, no_mail: bool,
               no_wait: bool, wait: float, **options: Any) -> None:
        self.verbosity = int(options.get("verbosity", 1))
        path = Path(root)
        if not (path / "home" / "vpopmail").is_dir() or not (path / "var" / "qmail").is_dir():
            raise CommandError(f"{root}: not a vpopmail server's tree (no home/vpopmail and var/qmail under it)")
        pack = Pack.objects.select_related("plan", "customer", "mail_host").filter(pk=pack_id).first()
        if pack is None:
            raise CommandError(f"no pack with id {pack_id}")
        host_root = Path(mail_root) if mail_root else path.resolve()
        if not host_root.is_absolute():
            raise CommandError(f"--mail-root {mail_root}: an absolute path on the mail host is needed")
        with translation.override("en"):  # the services' refusals, in the report's language
            self.progress(f"reading {root}")
            server = reader.read_server(path, progress=self.progress)
            found = importer.plan(server, pack)
            self.print_plan(found)
            if dry_run:
                self.stdout.write("Dry run: nothing written.")
                return
            report = importer.run(found, progress=self.progress)
            self.print_report(report)
            if no_mail or not report.maildirs:
                return
            imports = self.request_copies(server, report, host_root)
            if imports and not no_wait:
                self.wait_for(imports, wait)

    # What the plan says.

    def print_plan(self, found: importer.Plan) -> None:
        pack = found.pack
        self.stdout.write(f"Into pack {pack.pk} ({pack}) of {pack.customer}, mail host {pack.mail_host}:")
        for dp in found.domains:
            if dp.state == State.SKIP:
                self.stdout.write(f"  {dp.name}: SKIPPED: {dp.why}")
                continue
            counts = dp.counts()
            new = {kind: counts[(kind, State.CREATE)] for kind in Kind}
            what = ", ".join(counted(n, kind) for kind, n in new.items() if n)
            there = sum(n for (_kind, state), n in counts.items() if state == State.PRESENT)
            differs = sum(n for (_kind, state), n in counts.items() if state == State.DIFFERS)
            skipped = sum(n for (_kind, state), n in counts.items() if state == State.SKIP)
            head = "new domain" if dp.state == State.CREATE else "already in the pack"
            self.stdout.write(f"  {dp.name} ({head}): to create: {what or 'nothing'}; already there: {there}; "
                              f"different: {differs}; skipped: {skipped}")
            if self.verbosity >= 2:  # -v 2: each object and what becomes of it
                for item in dp.items:
                    self.stdout.write(f"    {item.state}: {item.kind} {item.name}")
        problems = found.all_problems()
        if problems:
            self.stdout.write(f"{len(problems)} problem(s):")
            for problem in problems:
                self.stdout.write(f"  {self.shown(problem)}")

    @staticmethod
    def shown(problem: Problem) -> str:
        return f"{problem.where or '-'}: {problem.what}: {problem.why}"

    def print_report(self, report: importer.Report) -> None:
        created = ", ".join(counted(n, what) for what, n in report.created.items() if n) or "nothing"
        self.stdout.write(f"Created: {created}.")
        late = report.problems[report.planned:]
        if late:
            self.stdout.write(f"{len(late)} refusal(s) while writing:")
            for problem in late:
                self.stdout.write(f"  {self.shown(problem)}")

    # The mail.

    def request_copies(self, server: Any, report: importer.Report, host_root: Path) -> list[MailImport]:
        imports = []
        for domain, pairs in report.maildirs:
            on_host = [(address, str(host_root / path.relative_to(server.root))) for address, path in pairs]
            try:
                imports.append(request_mail_import(domain, on_host))
            except MailImportRefused as error:
                self.stderr.write(f"{domain.name}: mail not copied: {error}")
                continue
            self.progress(f"{domain.name}: mail copy of {len(on_host)} mailbox(es) asked of {domain.pack.mail_host}")
        return imports

    def wait_for(self, imports: list[MailImport], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        pending = {item.pk for item in imports}
        shown: dict[int, tuple[str, int]] = {}
        while pending:
            for item in MailImport.objects.filter(pk__in=pending).select_related("domain", "host"):
                state = (item.state, item.copied)
                if shown.get(item.pk) != state:
                    shown[item.pk] = state
                    self.progress(f"{item.domain.name}: mail {item.get_state_display()}, {item.copied} message(s)")
                if item.state in (MailImportState.DONE, MailImportState.FAILED):
                    pending.discard(item.pk)
                    if item.state == MailImportState.FAILED:
                        self.stderr.write(f"{item.domain.name}: mail copy failed: {item.error}")
            if not pending:
                break
            if time.monotonic() > deadline:
                waiting = MailImport.objects.filter(pk__in=pending, state=MailImportState.WAITING).exists()
                raise CommandError(
                    "the mail host has not confirmed the mail copy in time"
                    + (" (it has not applied the new domains yet: is its agent running, and the panel's "
                       "workers?)" if waiting else "")
                    + ". The rows are imported; the copy goes on when the host answers (nothing is copied twice): "
                    "follow it in the admin's mail imports, or run this command again later.")
            time.sleep(POLL_SECONDS)
        failed = MailImport.objects.filter(pk__in=[i.pk for i in imports], state=MailImportState.FAILED).count()
        if failed:
            raise CommandError(f"the mail copy failed for {failed} domain(s) (see above)")
