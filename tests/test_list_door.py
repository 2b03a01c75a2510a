"""Every member mlmmj holds is one the panel shows and can remove (issue 15, item 5): the rules of
the list pipe's door, the agent's reading of mlmmj's files (nomail included, refused addresses
removed and reported), the panel taking the report in, and the members' pages of the nomail kind.
The same by real mail: tests/e2e/test_list_door_e2e.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from lists.models import ListMember, MailingList, MemberKind
from lists.reports import record_list_changes
from lists.services import list_create, list_member_add
from mail.validators import normalize_address
from mailhost import list_pipe
from mailhost.list_members import membership_changes, panel_address, read_members, sync_members
from mailhost.lists import MLMMJ, ListHost
from tests.conftest import Cast, client_for
from tests.test_list_import import make_list, maps_db, mlmmj, mlmmj_root, needs_mlmmj  # noqa: F401 - fixture
from tests.test_screens import text, url

CORPUS = [
    "a@example.test", "first.last+tag@sub.example.test", "x_y-z@example.test", "1@example.test",
    "o'brien@example.test", "spy!x@example.test", "%spy@example.test", "a=b@example.test", "a&b@example.test",
    ".a@example.test", "a.@example.test", "a..b@example.test", "a@example", "a@-x.test", "a@x-.test",
    "a@example.123", "a@1.2.3.4", "a b@example.test", "a@b@example.test", "\"a\"@example.test", "a@exa_mple.test",
    "é@example.test", "a@" + "x" * 64 + ".test", "x" * 65 + "@example.test", "a@xn--caf-dma.test",
]


def panel_takes(address: str) -> bool:
    try:
        return normalize_address(address) == address
    except ValidationError:
        return False


@pytest.mark.parametrize("address", CORPUS)
def test_the_door_the_agent_and_the_panel_have_one_rule(address: str) -> None:
    message = f"From: Someone <{address}>\nTo: x\nSubject: subscribe\n\n".encode()
    at_door, _what = list_pipe.subscriber(message)
    assert (at_door == address) == panel_address(address) == panel_takes(address), address


@pytest.mark.parametrize("header", [
    "o'brien@outside.test", "Spy <spy!x@outside.test>", "%spy@outside.test", "a@outside.test, b@outside.test",
    "Good <good@outside.test> (o'brien@outside.test)", "", "undisclosed-recipients:;",
])
def test_the_door_refuses_a_from_the_panel_could_not_hold(header: str) -> None:
    address, what = list_pipe.subscriber(f"From: {header}\nSubject: x\n\nbody".encode())
    assert address is None and what  # an address in a comment too: mlmmj's reading may differ, no


def test_the_door_writes_back_the_from_it_checked() -> None:
    data = b"From: =?utf-8?q?Ren=C3=A9?= <Rene@Outside.TEST>\nFrom: second@x.test\nSubject: s\n\nbody\n"
    assert list_pipe.subscriber(data) == (None, "A message without exactly one From: header")
    data = b"From: =?utf-8?q?Ren=C3=A9?=\n <Rene@Outside.TEST>\nSubject: s\n\nbody\nFrom: in the body\n"
    address, _what = list_pipe.subscriber(data)
    assert address == "rene@outside.test"
    assert list_pipe.with_from(data, address) == (
        b"From: <rene@outside.test>\nSubject: s\n\nbody\nFrom: in the body\n")
    unicode_domain = "From: a@café.test\n\n".encode()
    assert list_pipe.subscriber(unicode_domain)[0] == "a@xn--caf-dma.test"


def test_the_pipe_bounces_a_refused_subscription_in_the_lists_language(tmp_path: Path) -> None:
    listdir = tmp_path / "example.test" / "news"
    (listdir / "control").mkdir(parents=True)
    (listdir / "control" / "listaddress").write_text("news@example.test\n")
    (listdir / "control" / "panel-language").write_text("fr\n")
    message = b"From: O'Brien <o'brien@outside.test>\nTo: news+subscribe@example.test\nSubject: x\n\nplease\n"
    for recipient in ("news+subscribe-nomail@example.test.mlmmj.invalid", "news+subscribe@example.test"):
        done = subprocess.run(["python3", "-I", list_pipe.__file__, "post", str(listdir), recipient], input=message,
                              capture_output=True, check=False)
        assert done.returncode == list_pipe.EX_NOPERM  # Postfix bounces it, with this output
        assert done.stdout.isascii() and b"L'adresse o'brien@outside.test ne peut pas etre abonnee" in done.stdout
    done = subprocess.run(["python3", "-I", list_pipe.__file__, "request", str(listdir),
                           "news-request@example.test.mlmmj.invalid"], input=message.replace(b": x", b": subscribe"),
                          capture_output=True, check=False)
    assert done.returncode == list_pipe.EX_NOPERM


@needs_mlmmj
def test_the_agent_removes_and_reports_what_the_panel_cannot_hold_and_reads_nomail(
        mlmmj_root: Path, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    path = make_list(mlmmj_root, "news")
    host, db = ListHost(mlmmj_root), maps_db(tmp_path)
    sync_members(host, db, "example.test", {"name": "news", "owner": "owner@example.test", "subscribers": [
        "a@example.test"], "nomail_subscribers": ["q@example.test"]})
    assert read_members(path, "nomail") == {"q@example.test"}
    for address, option in (("o'brien@example.test", "-s"), ("spy!x@example.test", "-d"),
                            ("%spy@example.test", "-n"), ("Quiet@Example.test", "-n")):
        mlmmj("mlmmj-sub", path, address, "-f", "-q", option)  # what a subscription by mail runs
    changes = sorted(membership_changes(host, db), key=lambda c: c["kind"])
    assert changes == [
        {"domain": "example.test", "list": "news", "kind": "digest", "added": [], "removed": [],
         "refused": ["spy!x@example.test"]},
        {"domain": "example.test", "list": "news", "kind": "nomail", "added": ["quiet@example.test"], "removed": [],
         "refused": ["%spy@example.test"]},
        {"domain": "example.test", "list": "news", "kind": "subscriber", "added": [], "removed": [],
         "refused": ["o'brien@example.test"]},
    ]
    for kind, flag in (("subscriber", "-s"), ("digest", "-d"), ("nomail", "-n")):
        listed = subprocess.run([str(MLMMJ / "mlmmj-list"), "-L", str(path), flag], check=True, capture_output=True,
                                text=True).stdout.split()
        assert set(listed) == read_members(path, kind)
    assert read_members(path, "nomail") == {"q@example.test", "quiet@example.test"}
    assert read_members(path, "subscriber") == {"a@example.test"} and read_members(path, "digest") == set()
    assert membership_changes(host, db) == []


@pytest.mark.django_db
def test_the_panel_takes_nomail_members_and_logs_what_the_host_refused(cast: Cast,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    news = list_create(domain=cast.a.domain, name="news", owner="owner@elsewhere.test", acting_user=cast.operator)
    host = cast.a.domain.pack.mail_host.name
    taken = record_list_changes(host=host, changes=[
        {"domain": cast.a.domain.name, "list": "news", "kind": "nomail", "added": ["quiet@outside.test"],
         "removed": [], "refused": ["o'brien@outside.test", "x@café.test"]},
    ])
    assert taken == 1
    assert set(news.members.filter(kind=MemberKind.NOMAIL).values_list("address", flat=True)) == {
        "quiet@outside.test", "x@xn--caf-dma.test"}  # the Unicode domain kept, in the form the host will write
    assert "o'brien@outside.test" in caplog.text


@pytest.mark.django_db
def test_the_members_page_shows_exports_and_removes_subscribers_without_mail(cast: Cast) -> None:
    news = list_create(domain=cast.a.domain, name="news", owner="owner@elsewhere.test", acting_user=cast.operator)
    list_member_add(mailing_list=news, address="quiet@outside.test", kind=MemberKind.NOMAIL, acting_user=cast.operator)
    client = client_for(cast, "domain_admin_a")
    page = client.get(url("screens:members", cast, news.pk) + "?kind=nomail")
    assert page.status_code == 200
    assert "quiet@outside.test" in text(page) and "without mail" in text(page)
    assert "(1)" in text(client.get(url("screens:list_modify", cast, news.pk)))
    export = b"".join(client.get(url("screens:member_export", cast, news.pk) + "?kind=nomail").streaming_content)
    assert b"quiet@outside.test,nomail," in export
    client.post(url("screens:member_remove", cast, news.pk), {"kind": "nomail", "address": "quiet@outside.test",
                                                               "confirm": "yes"})
    assert not ListMember.objects.filter(mailing_list=news, kind=MemberKind.NOMAIL).exists()
    assert MailingList.objects.get(pk=news.pk).revision > 0
