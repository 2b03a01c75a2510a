"""A domain's POP accounts and forwards as CSV (mail.transfer, screens/views/transfer.py): the
export's content, escaping and streaming, never a password; the import's report, limits, one
revision a batch, each line all or nothing, hostile files, the long import on the bulk queue."""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from config.celery import app as panel_app
from hosting.audit import Action
from hosting.models import AuditEvent, Domain
from lists import imports
from lists.models import MailingList
from mail import services, tasks, transfer
from mail.models import AccountImport, Forward, ImportKind, ImportState, Mailbox
from mailhost import contract
from mailhost.passwords import verify_password
from tests.conftest import Cast, client_for
from tests.factories import MAILBOX_PASSWORD_HASH

DA = "domain_admin_a"
SECRET = "Velvet-Otter-9137"  # the clear password of the imports: never anywhere but in its hash


def url(name: str, domain: Domain, **kwargs: Any) -> str:
    return reverse(f"screens:{name}", kwargs={"pk": domain.pk, **kwargs})


def exported(cast: Cast, name: str, role: str = DA) -> tuple[Any, str]:
    response = client_for(cast, role).get(url(name, cast.a.domain))
    assert response.status_code == 200 and response.streaming
    return response, b"".join(response.streaming_content).decode("utf-8")


def revision(domain: Domain) -> int:
    return Domain.objects.get(pk=domain.pk).revision


def run(cast: Cast, kind: str, text: str | bytes) -> AccountImport:
    with translation.override("en"):
        return transfer.account_import(domain=cast.a.domain, kind=kind, data=text, acting_user=cast.a.postmaster)


def many_mailboxes(domain: Domain, count: int) -> None:
    Mailbox.objects.bulk_create([Mailbox(domain=domain, local_part=f"user{n:05}", password_hash=MAILBOX_PASSWORD_HASH)
                                 for n in range(count)])


# --- the export ----------------------------------------------------------------------------------


def test_the_mailbox_export_has_every_account_and_never_a_password(cast: Cast) -> None:
    Mailbox.objects.filter(pk=cast.mailbox_user.pk).update(real_name="Hélène Dupont", quota_mb=250,
                                                           allow_imap=False, quota_used_bytes=1234)
    response, text = exported(cast, "mailbox_export")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="alpha-domain.test-mailboxes.csv"'
    assert text.startswith("\ufeff")  # UTF-8 with a BOM: Excel reads the accents right
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0] == transfer.MAILBOX_HEADER
    assert rows[1:] == [
        ["alphauser@alpha-domain.test", "Hélène Dupont", "250", "yes", "yes", "no", "yes", "standard", "", "no", "no",
         "", "", "1234"],
        ["postmaster@alpha-domain.test", "Postmaster", "0", "yes", "yes", "yes", "yes", "standard", "", "no", "no",
         "", "", "0"],
    ]
    assert "password" not in text and "ARGON2" not in text and MAILBOX_PASSWORD_HASH.split("$")[-1] not in text
    (event,) = AuditEvent.objects.filter(action=Action.MAILBOX_EXPORT)
    assert event.actor_label == cast.a.postmaster.address and event.target_repr == "alpha-domain.test"


def test_the_forward_export_lists_the_destinations_and_neutralises_formulas(cast: Cast) -> None:
    Forward.objects.create(domain=cast.a.domain, local_part="sales", destinations=["a@remote.test", "b@remote.test"])
    Forward.objects.create(domain=cast.a.domain, local_part="-sum", destinations=["+1@remote.test"])
    Mailbox.objects.filter(pk=cast.mailbox_user.pk).update(real_name='=HYPERLINK("http://evil.test","x")')
    _response, text = exported(cast, "forward_export")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows == [["address", "destinations"], ["'-sum@alpha-domain.test", "'+1@remote.test"],
                    ["sales@alpha-domain.test", "a@remote.test b@remote.test"]]
    _response, text = exported(cast, "mailbox_export")
    assert "'=HYPERLINK(" in text and ',"=HYPERLINK' not in text


def test_the_export_is_streamed_with_the_same_queries_for_10_or_1000_accounts(cast: Cast) -> None:
    def queries(count: int) -> int:
        Mailbox.objects.filter(local_part__startswith="user").delete()
        many_mailboxes(cast.a.domain, count)
        with CaptureQueriesContext(connection) as captured:
            _response, text = exported(cast, "mailbox_export")
        assert text.count("\n") == count + 3  # the header, postmaster, alphauser
        return len(captured)

    assert queries(10) == queries(1000)


def test_another_tenants_admin_exports_nothing(cast: Cast) -> None:
    assert client_for(cast, "domain_admin_b").get(url("mailbox_export", cast.a.domain)).status_code == 404
    assert not AuditEvent.objects.filter(action=Action.MAILBOX_EXPORT).exists()


# --- the import: report, limits, atomicity -------------------------------------------------------


def test_a_mailbox_import_reports_each_line_and_keeps_only_the_hash(cast: Cast, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    text = (f"address;real_name;quota_mb;password\n"
            f"new1@alpha-domain.test;Jean Dupont;100;{SECRET}\n"
            f"postmaster;;;{SECRET}\n"
            f"bad name;;;{SECRET}\n"
            f"nopass;;;\n"
            f"weak;;;abc\n"
            f"other@bravo-domain.test;;;{SECRET}\n")
    client = client_for(cast, DA, "fr")
    response = client.post(url("mailbox_import", cast.a.domain), {"text": text})
    job = AccountImport.objects.get()
    assert response.status_code == 302 and response["Location"] == url("account_import_status", cast.a.domain,
                                                                       job=job.pk)
    assert (job.state, job.total, job.created, job.present, job.refused_count) == (ImportState.DONE, 6, 1, 1, 4)
    new = Mailbox.objects.get(domain=cast.a.domain, local_part="new1")
    assert (new.real_name, new.quota_mb) == ("Jean Dupont", 100) and verify_password(SECRET, new.password_hash)
    page = client.get(response["Location"]).content.decode()
    assert "Import de comptes Pop dans alpha-domain.test" in page
    assert "Un mot de passe est nécessaire pour créer un compte Pop." in page
    assert "Cette adresse n&#x27;est pas du domaine alpha-domain.test." in page
    assert [number for number, _address, _reason in job.refused] == [4, 5, 6, 7]
    # The clear password: nowhere but in its hash (the row, the audit, the log, the page).
    (event,) = AuditEvent.objects.filter(action=Action.MAILBOX_IMPORT)
    assert event.detail == {"lines": 6, "created": 1, "present": 1, "refused": 4}
    for place in (str(job.refused), str(event.detail), caplog.text, page):
        assert SECRET not in place and "abc" not in place


def test_a_mailbox_import_stops_at_the_packs_limit_line_by_line(cast: Cast) -> None:
    """The plan allows 5 POP accounts and the pack has 2: the first 3 new lines are created, the
    next ones refused, and the line after them (already there) is still read."""
    lines = [f"new{n};;;{SECRET}" for n in range(5)] + [f"postmaster;;;{SECRET}"]
    job = run(cast, "mailboxes", "\n".join(lines))
    assert (job.created, job.refused_count, job.present) == (3, 2, 1)
    assert [reason for _n, _a, reason in job.refused] == ["Maximum number of POP accounts reached."] * 2
    assert Mailbox.objects.filter(domain=cast.a.domain).count() == 5


def test_a_full_packs_import_hashes_no_password(cast: Cast, monkeypatch: pytest.MonkeyPatch) -> None:
    """Passwords are hashed for as many accounts as the pack has room for (argon2id: 0.2 s of a
    core and 64 MiB each): 10,000 lines into a full pack would otherwise hold the bulk worker
    for half an hour. A weak password takes no room."""
    hashed: list[str] = []
    monkeypatch.setattr(services, "hash_password", lambda password: hashed.append(password) or MAILBOX_PASSWORD_HASH)
    cast.a.plan.max_mailboxes = 3  # postmaster and alphauser: room for one
    cast.a.plan.save()
    job = run(cast, "mailboxes", f"weak;;;abc\nfirst;;;{SECRET}\nsecond;;;{SECRET}\nthird;;;{SECRET}")
    assert (job.created, job.refused_count) == (1, 3) and len(hashed) == 1
    assert [reason for _n, _a, reason in job.refused][1:] == ["Maximum number of POP accounts reached."] * 2
    hashed.clear()
    job = run(cast, "mailboxes", "\n".join(f"n{n};;;{SECRET}" for n in range(8)))
    assert (job.created, job.refused_count, hashed) == (0, 8, [])


def test_room_made_meanwhile_is_used(cast: Cast, monkeypatch: pytest.MonkeyPatch) -> None:
    """The room is read before the hashing, without a lock: lines left unhashed for want of room
    that is there at their turn are hashed and written in a further round."""
    real, reads = transfer.mailbox_room, []

    def first_read_full(domain: Domain) -> int | None:
        reads.append(domain)
        return 0 if len(reads) == 1 else real(domain)

    monkeypatch.setattr(transfer, "mailbox_room", first_read_full)
    job = run(cast, "mailboxes", f"first;;;{SECRET}\nsecond;;;{SECRET}")
    assert (job.created, job.refused_count, len(reads)) == (2, 0, 2)


def test_a_forward_import_bumps_the_revision_once_a_batch_and_each_line_is_all_or_nothing(cast: Cast) -> None:
    Forward.objects.create(domain=cast.a.domain, local_part="sales", destinations=["a@remote.test"])
    before = revision(cast.a.domain)
    text = ("sales;x@remote.test\n"
            "team;a@remote.test, b@remote.test\n"
            "loop;loop\n"  # a forward to itself: refused, nothing of it written
            "help;alphauser c@remote.test\n"
            "alphauser;d@remote.test\n")  # a POP account's name
    job = run(cast, "forwards", text)
    assert (job.created, job.present, job.refused_count) == (2, 1, 2)
    assert revision(cast.a.domain) == before + 1
    assert Forward.objects.get(local_part="team").destinations == ["a@remote.test", "b@remote.test"]
    assert Forward.objects.get(local_part="help").destinations == ["alphauser@alpha-domain.test", "c@remote.test"]
    assert Forward.objects.get(local_part="sales").destinations == ["a@remote.test"]  # already there: left alone
    assert not Forward.objects.filter(local_part__in=["loop", "alphauser"]).exists()
    assert set(Forward.objects.filter(local_part__in=["team", "help"]).values_list("revision", flat=True)) == {
        before + 1}


def test_a_forward_import_beyond_the_limit_refuses_those_lines_and_goes_on(cast: Cast) -> None:
    cast.a.plan.max_forwards = 2
    cast.a.plan.save()
    job = run(cast, "forwards", "f1;a@remote.test\nf2;a@remote.test\nf3;a@remote.test\nf4;a@remote.test\nf1;x@r.test")
    assert (job.created, job.refused_count, job.present) == (2, 2, 1)
    assert job.refused[0][2] == "Maximum number of forwards reached."


def test_the_header_row_gives_the_columns_in_any_order(cast: Cast) -> None:
    job = run(cast, "forwards", "Destinations,Adresse\na@remote.test,team\n")
    assert job.created == 1 and Forward.objects.get(local_part="team").destinations == ["a@remote.test"]
    job = run(cast, "mailboxes", f"Mot de passe;Quota (Mo);Compte\n{SECRET};42;jean\n")
    assert job.created == 1 and Mailbox.objects.get(local_part="jean").quota_mb == 42


def test_the_export_comes_back_through_the_import(cast: Cast) -> None:
    """The file the export gives (BOM, header, neutralised cells) imports as it was."""
    Forward.objects.create(domain=cast.a.domain, local_part="sales", destinations=["a@remote.test", "+b@remote.test"])
    Forward.objects.create(domain=cast.a.domain, local_part="-info", destinations=["c@remote.test"])
    _response, text = exported(cast, "forward_export")
    Forward.objects.all().delete()
    upload = SimpleUploadedFile("forwards.csv", text.encode("utf-8"), content_type="text/csv")
    response = client_for(cast, DA).post(url("forward_import", cast.a.domain), {"file": upload})
    assert response.status_code == 302
    assert dict(Forward.objects.values_list("local_part", "destinations")) == {
        "sales": ["a@remote.test", "+b@remote.test"], "-info": ["c@remote.test"]}


# --- hostile files ---------------------------------------------------------------------------------


def test_hostile_lines_are_refused_and_the_others_go(cast: Cast) -> None:
    text = ("address,destinations\n"
            "nul\x00,a@remote.test\n"
            f"long,{'a' * transfer.MAX_LINE}@remote.test\n"
            "=cmd|' /C calc'!A0,a@remote.test\n"
            "'=ok,a@remote.test\n"  # a neutralised cell: the quote is taken off, then the name refused
            "fine,a@remote.test\n")
    job = run(cast, "forwards", text)
    assert (job.created, job.refused_count) == (1, 4)
    reasons = [reason for _n, _a, reason in job.refused]
    assert reasons[0] == "This line contains characters that are not allowed."
    assert reasons[1] == f"This line is too long (at most {transfer.MAX_LINE} characters)."
    assert all("\x00" not in address for _n, address, _r in job.refused)
    assert list(Forward.objects.values_list("local_part", flat=True)) == ["fine"]


def test_a_windows_1252_file_is_read_and_the_report_says_so(cast: Cast) -> None:
    data = f"compte;nom réel;quota (Mo);mot de passe\r\nhelene;Hélène Müller;;{SECRET}\r\n".encode("cp1252")
    upload = SimpleUploadedFile("comptes.csv", data, content_type="text/csv")
    client = client_for(cast, DA, "fr")
    response = client.post(url("mailbox_import", cast.a.domain), {"file": upload})
    job = AccountImport.objects.get()
    assert job.windows_1252 and job.created == 1
    assert Mailbox.objects.get(local_part="helene").real_name == "Hélène Müller"
    assert "lu comme Windows-1252" in client.get(response["Location"]).content.decode()


def test_a_file_too_long_is_refused_whole_with_a_clear_error(cast: Cast, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "MAX_LINES", 3)
    client = client_for(cast, DA, "fr")
    four = "a;x@r.test\nb;x@r.test\nc;x@r.test\nd;x@r.test"
    response = client.post(url("forward_import", cast.a.domain), {"text": four})
    assert response.status_code == 400
    assert "Trop de lignes (4)" in response.content.decode()
    assert not Forward.objects.exists() and not AccountImport.objects.exists()
    big = SimpleUploadedFile("big.csv", b"a" * (transfer.MAX_UPLOAD_BYTES + 1), content_type="text/csv")
    response = client.post(url("forward_import", cast.a.domain), {"file": big})
    assert response.status_code == 413 and "Le fichier est trop gros (5 Mo au plus)." in response.content.decode()


def test_an_empty_import_is_refused(cast: Cast) -> None:
    with pytest.raises(ValidationError) as refused:
        run(cast, "forwards", " \n \n")
    assert refused.value.code == "required"


# --- the long import ---------------------------------------------------------------------------------


def test_a_long_import_runs_on_the_bulk_queue_with_its_progress_and_the_importers_language(
        cast: Cast, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert panel_app.amqp.router.route({}, transfer.TASK)["queue"].name == contract.BULK_QUEUE
    sent: list[tuple[str, list[Any]]] = []
    monkeypatch.setattr(transfer.panel_app, "send_task", lambda name, args: sent.append((name, args)))
    monkeypatch.setattr(transfer, "BATCH", {ImportKind.MAILBOXES: 2, ImportKind.FORWARDS: 2})
    lines = [f"n{n};;;{SECRET}" for n in range(transfer.INLINE[ImportKind.MAILBOXES] + 1)]
    client = client_for(cast, DA, "fr")
    before = revision(cast.a.domain)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("mailbox_import", cast.a.domain), {"text": "\n".join(lines)})
    job = AccountImport.objects.get()
    assert (job.state, job.total, job.done) == (ImportState.RUNNING, len(lines), 0)
    assert 'http-equiv="refresh"' in client.get(response["Location"]).content.decode()
    ((name, args),) = sent
    assert name == transfer.TASK == tasks.import_accounts.name
    assert SECRET not in str(args)  # the lines travel encrypted
    progress: list[int] = []
    batch = transfer._Tally.batch

    def watched(tally: Any, rows: list[Any]) -> None:
        batch(tally, rows)
        progress.append(tally.done)

    monkeypatch.setattr(transfer._Tally, "batch", watched)
    with translation.override("en"):
        tasks.import_accounts(*args)  # what the bulk worker runs
    job.refresh_from_db()
    assert progress == [2, 4, 6, 8, 10, 11]
    assert (job.state, job.created, job.refused_count) == (ImportState.DONE, 3, 8)
    assert job.refused[0][2] == "Nombre maximum de comptes Pop atteint."  # the importer's language
    assert revision(cast.a.domain) == before + 2  # once for each batch that created something
    tasks.import_accounts(*args)  # a redelivered message: done already, nothing changes
    assert AuditEvent.objects.filter(action=Action.MAILBOX_IMPORT).count() == 1
    assert 'http-equiv="refresh"' not in client.get(response["Location"]).content.decode()


def test_long_imports_share_imports_in_flight_with_the_lists(cast: Cast, monkeypatch: pytest.MonkeyPatch,
                                                             settings: Any) -> None:
    assert settings.IMPORTS_IN_FLIGHT == 2
    monkeypatch.setattr(transfer.panel_app, "send_task", lambda name, args: None)
    monkeypatch.setattr(imports.panel_app, "send_task", lambda name, args: None)
    long = "\n".join(f"f{n};a@remote.test" for n in range(transfer.INLINE[ImportKind.FORWARDS] + 1))
    news = MailingList.objects.create(domain=cast.a.domain, name="news", owner=f"postmaster@{cast.a.domain.name}")
    imports.member_import(mailing_list=news, kind="subscriber", acting_user=cast.operator,
                          text="\n".join(f"r{n}@example.test" for n in range(imports.INLINE_LINES + 1)))
    first = run(cast, "forwards", long)
    with pytest.raises(ValidationError) as refused:
        run(cast, "forwards", long)
    assert refused.value.code == "busy"
    with pytest.raises(ValidationError):  # the lists count this one too
        imports.member_import(mailing_list=news, kind="digest", acting_user=cast.operator,
                              text="\n".join(f"r{n}@example.test" for n in range(imports.INLINE_LINES + 1)))
    response = client_for(cast, DA, "fr").post(url("forward_import", cast.a.domain), {"text": long})
    assert response.status_code == 400 and "2 imports sont déjà en cours" in response.content.decode()
    assert run(cast, "forwards", "short;a@remote.test").created == 1  # a short one is never held back
    transfer.run_import(first.pk, "not a token", "en", transfer.actor_ref(cast.operator))  # it fails: ends
    assert AccountImport.objects.get(pk=first.pk).state == ImportState.FAILED
    run(cast, "forwards", long)  # room again


def test_the_slots_are_the_customers_own_and_a_lost_task_holds_none(cast: Cast, monkeypatch: pytest.MonkeyPatch,
                                                                    settings: Any) -> None:
    monkeypatch.setattr(transfer.panel_app, "send_task", lambda name, args: None)
    long = "\n".join(f"f{n};a@remote.test" for n in range(transfer.INLINE[ImportKind.FORWARDS] + 1))
    first, _second = run(cast, "forwards", long), run(cast, "forwards", long)
    # Another customer's imports are not held back by alpha's.
    bravo = transfer.account_import(domain=cast.b.domain, kind="forwards", data=long, acting_user=cast.operator)
    assert bravo.state == ImportState.RUNNING
    with pytest.raises(ValidationError):
        run(cast, "forwards", long)
    # One still "running" STALE_AFTER on lost its task (a killed worker): it holds no slot.
    AccountImport.objects.filter(pk=first.pk).update(created_at=timezone.now() - transfer.STALE_AFTER)
    assert run(cast, "forwards", long).state == ImportState.RUNNING


def test_a_long_import_asked_while_the_broker_is_down_says_it_could_not_start(
        cast: Cast, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(name: str, args: list[Any]) -> None:
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(transfer.panel_app, "send_task", down)
    long = "\n".join(f"f{n};a@remote.test" for n in range(transfer.INLINE[ImportKind.FORWARDS] + 1))
    client = client_for(cast, DA, "fr")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("forward_import", cast.a.domain), {"text": long})
    job = AccountImport.objects.get()
    assert (job.state, job.done) == (ImportState.FAILED, 0) and "broker down" in job.error
    page = client.get(response["Location"]).content.decode()
    assert "L'import n'a pas pu démarrer : rien n'a été créé." in page and "broker down" not in page
    assert not Forward.objects.exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # no test transaction around the import
def test_no_password_is_hashed_inside_a_transaction(cast: Cast, monkeypatch: pytest.MonkeyPatch) -> None:
    """In the request (a short import) and in the bulk worker (a long one): each hash before the
    batch's transaction, whose pack lock other creates wait for."""
    inside: list[bool] = []

    def hash_watched(password: str) -> str:
        inside.append(connection.in_atomic_block)
        return MAILBOX_PASSWORD_HASH

    monkeypatch.setattr(services, "hash_password", hash_watched)
    cast.a.plan.max_mailboxes = -1
    cast.a.plan.save()
    response = client_for(cast, DA).post(url("mailbox_import", cast.a.domain), {"text": f"one;;;{SECRET}"})
    assert response.status_code == 302
    sent: list[list[Any]] = []
    monkeypatch.setattr(transfer.panel_app, "send_task", lambda name, args: sent.append(args))
    lines = "\n".join(f"n{n};;;{SECRET}" for n in range(transfer.INLINE[ImportKind.MAILBOXES] + 1))
    run(cast, "mailboxes", lines)
    tasks.import_accounts(*sent[0])
    assert inside == [False] * (1 + transfer.INLINE[ImportKind.MAILBOXES] + 1)
    assert Mailbox.objects.filter(domain=cast.a.domain, local_part__startswith="n").count() == len(inside) - 1
