"""Moderation from the panel: what the host reads of mlmmj's moderation/ folder (bounded plain
text, whatever the mail), how the panel takes in its reports, the decision service, the screens
and who may use them. The real stack's behaviour is in tests/e2e/test_moderation_e2e.py."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from hosting.audit import Action
from hosting.models import AuditEvent
from lists import moderation as panel_moderation
from lists import reports as list_reports
from lists import tasks as list_tasks
from lists.models import Decision, HeldMessage, MailingList, Posting
from mailhost import agent, contract, lists, moderation
from mailhost.apply import HostConfig
from mailhost.render import RenderError
from tests.conftest import Cast, client_for

KEY, OTHER_KEY = "0123456789abcdef", "fedcba9876543210"


# --- the host: reading moderation/ ---------------------------------------------------------------


def hostile_mail() -> bytes:
    """A post with HTML and script in its subject and body, control and bidi characters, an
    encoded word in a charset nobody knows, raw 8-bit bytes, and an HTML alternative."""
    body = "Hello <b>bold</b>\x07\x1b[31m red\u202e reversed\n" + "line\n" * 300
    return (
        b"From: =?utf-8?q?Ev=C3=AEl_=3Cscript=3E?= <evil@outside.test>\n"
        b"To: news@alpha-domain.test\n"
        b"Subject: <script>alert(1)</script> =?utf-8?b?Y2Fmw6kg4piD?=\n =?x-unknown?q?=E9t=E9?= \x07\xff\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: multipart/alternative; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(body.encode()) +
        b"--b\nContent-Type: text/html\n\n<html><body><script>alert(2)</script>html only</body></html>\n"
        b"--b--\n"
    )


@pytest.fixture
def list_dir(tmp_path: Path) -> Path:
    path = tmp_path / "alpha-domain.test" / "news"
    (path / "moderation").mkdir(parents=True)
    (path / "control").mkdir()
    (path / "control" / "listaddress").write_text("news@alpha-domain.test\n")
    return path


def test_a_held_post_is_reported_as_bounded_plain_text(list_dir: Path) -> None:
    (list_dir / "moderation" / KEY).write_bytes(hostile_mail())
    [item] = moderation.held_items(list_dir)
    contract.check(item, contract.HeldItem, complete=True)
    assert item["kind"] == "post" and item["key"] == KEY and item["sender"] == "evil@outside.test"
    # Decoded (RFC 2047), one line, no control character; the markup stays text for the panel to escape.
    assert item["subject"] == "<script>alert(1)</script> café ☃été \ufffd"  # adjacent encoded words join
    preview = item["preview"]
    assert preview.startswith("Hello <b>bold</b>[31m red reversed\nline\n")
    assert len(preview) <= moderation.MAX_PREVIEW
    assert not any(ord(c) < 32 and c not in "\n\t" for c in preview + item["subject"])
    assert "\u202e" not in preview and "html only" not in preview and "alert(2)" not in preview
    assert item["received_at"].endswith("+00:00")


def test_the_subject_in_an_unknown_charset_is_shown_not_refused(list_dir: Path) -> None:
    (list_dir / "moderation" / KEY).write_bytes(b"From: a@b.test\nSubject: =?x-unknown?q?=E9t=E9?=\n\nbody\n")
    [item] = moderation.held_items(list_dir)
    assert item["subject"] == "\xe9t\xe9" and item["preview"] == "body"


def test_a_post_without_a_plain_text_part_has_no_preview(list_dir: Path) -> None:
    message = EmailMessage()
    message["From"], message["Subject"] = "a@b.test", "html"
    message.set_content("<p>only html</p>", subtype="html")
    message.add_attachment(b"not shown", maintype="text", subtype="plain", filename="notes.txt")
    (list_dir / "moderation" / KEY).write_bytes(message.as_bytes())
    [item] = moderation.held_items(list_dir)
    assert item["preview"] == ""


def test_subscription_requests_and_only_held_items_are_read(list_dir: Path, tmp_path: Path) -> None:
    folder = list_dir / "moderation"
    (folder / f"subscribe{OTHER_KEY}").write_text("newcomer@outside.test\nSUB_DIGEST\n")
    (folder / f"{KEY}.sending").write_bytes(b"Subject: being released\n\nx")  # mlmmj's work in progress
    (folder / f"{KEY}.omit").write_text("someone@outside.test\n")
    (folder / "subscribe-not-a-cookie").write_text("x\n")
    (tmp_path / "secret").write_text("From: root@host\n\nsecret")
    (folder / "abcdef0123456789").symlink_to(tmp_path / "secret")
    [item] = moderation.held_items(list_dir)
    assert item == {"kind": "subscription", "key": OTHER_KEY, "sender": "newcomer@outside.test", "subject": "",
                    "received_at": item["received_at"], "preview": ""}


def test_a_flood_is_reported_oldest_first_and_bounded(list_dir: Path) -> None:
    for number in range(moderation.MAX_ITEMS + 5):
        path = list_dir / "moderation" / f"{number:016x}"
        path.write_bytes(f"From: p{number}@outside.test\nSubject: {number}\n\nx".encode())
        os.utime(path, (1_700_000_000 + number, 1_700_000_000 + number))
    items = moderation.held_items(list_dir)
    assert len(items) == moderation.MAX_ITEMS
    assert [i["subject"] for i in items[:3]] == ["0", "1", "2"]


def test_the_host_report_names_only_lists_that_hold_something(tmp_path: Path, list_dir: Path) -> None:
    empty = tmp_path / "alpha-domain.test" / "quiet"
    (empty / "control").mkdir(parents=True)
    (empty / "control" / "listaddress").write_text("quiet@alpha-domain.test\n")
    (list_dir / "moderation" / KEY).write_bytes(b"From: a@b.test\nSubject: s\n\nx")
    report = moderation.held_report(lists.ListHost(tmp_path))
    contract.check(report, list[contract.ListHeld], complete=True)
    assert [(e["domain"], e["list"], len(e["items"])) for e in report] == [("alpha-domain.test", "news", 1)]


def test_a_decision_names_a_cookie_and_a_list_or_nothing_runs(tmp_path: Path) -> None:
    host = lists.ListHost(tmp_path)
    request: dict[str, Any] = {"domain": "alpha-domain.test", "list": "news", "key": KEY, "kind": "post",
                               "decision": "approve"}
    assert moderation.decide(host, request) is False  # nothing held: mlmmj is not even called
    for bad in ({"key": "../../control/owner"}, {"key": "0123456789abcdef@x"}, {"list": "../x"},
                {"domain": "a/../b"}):
        with pytest.raises(RenderError):
            moderation.decide(host, {**request, **bad})
    with pytest.raises(contract.DocumentError):
        moderation.decide(host, {**request, "decision": "maybe"})


def test_the_command_mail_is_a_moderators_mail_to_the_cookies_address() -> None:
    mail = moderation.command_mail(list_address="news@alpha-domain.test", delimiter="+", command="release",
                                   key=KEY, sender="owner@alpha-domain.test").decode()
    assert f"X-Original-To: news+release-{KEY}@alpha-domain.test\r\n" in mail
    assert "From: owner@alpha-domain.test\r\n" in mail
    with pytest.raises(RenderError):
        moderation.command_mail(list_address="news@alpha-domain.test", delimiter="+", command="release",
                                key=KEY, sender="x@y.test\r\nBcc: z@w.test")


@pytest.fixture
def mlmmj_root() -> Iterator[Path]:
    """A folder the user `list` can enter (pytest's tmp_path is 0700 root's)."""
    if not lists.available():
        pytest.skip("mlmmj is not installed")
    root = Path(tempfile.mkdtemp(prefix="moderation-test-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def real_list(root: Path, **options: Any) -> tuple[lists.ListHost, Path]:
    host = lists.ListHost(root, smtp_port=1)  # nothing listens there: nothing leaves
    document = {"name": "news", "owner": "owner@alpha-domain.test", "posting": "moderated",
                "moderators": ["owner@alpha-domain.test"], **options}
    return host, lists.ensure_list(host, "alpha-domain.test", document)


def hold(path: Path, name: str, data: bytes) -> None:
    file = path / "moderation" / name
    file.write_bytes(data)
    if os.geteuid() == 0:
        shutil.chown(file, "list", "list")


def test_real_mlmmj_rejects_and_obstructs_what_the_panel_decides(mlmmj_root: Path) -> None:
    host, path = real_list(mlmmj_root, sub_moderate=True)
    hold(path, KEY, b"From: evil@outside.test\nTo: news@alpha-domain.test\nSubject: spam\n\nspam\n")
    hold(path, f"subscribe{OTHER_KEY}", b"newcomer@outside.test\nSUB_NORMAL\n")
    base = {"domain": "alpha-domain.test", "list": "news"}
    assert moderation.decide(host, {**base, "key": KEY, "kind": "post", "decision": "reject"}) is True
    assert moderation.decide(host, {**base, "key": OTHER_KEY, "kind": "subscription", "decision": "reject"}) is True
    assert moderation.held_items(path) == []
    assert "newcomer@outside.test" not in subprocess.run(
        ["/usr/bin/mlmmj-list", "-L", str(path)], capture_output=True, text=True, check=True).stdout
    assert not list((path / "archive").iterdir())  # never distributed
    # A later decision on the same cookie (a moderator's mail) finds nothing.
    assert moderation.decide(host, {**base, "key": KEY, "kind": "post", "decision": "approve"}) is False


@pytest.fixture
def agent_host(mlmmj_root: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    config = HostConfig(name="mx1", root=mlmmj_root)
    monkeypatch.setattr(agent, "CONFIG", config)
    monkeypatch.setattr(agent, "_prepared", False)
    sent: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(agent.app, "send_task", lambda name, kwargs, queue: sent.append((name, kwargs)))
    (mlmmj_root / "mlmmj").mkdir(mode=0o755)
    return {"config": config, "sent": sent}


def test_the_agent_reports_held_items_on_its_beat_on_request_and_after_a_decision(agent_host: dict[str, Any]) -> None:
    config, sent = agent_host["config"], agent_host["sent"]
    _host, path = real_list(config.mlmmj_root)
    hold(path, KEY, b"From: evil@outside.test\nTo: news@alpha-domain.test\nSubject: spam\n\nspam\n")
    agent.maintain()
    [(task, report)] = [s for s in sent if s[0] == contract.HELD]
    contract.check(report, contract.HeldReport, complete=True)
    assert report["complete"] is True and [i["key"] for i in report["lists"][0]["items"]] == [KEY]
    sent.clear()
    agent.report_held({"domain": "alpha-domain.test", "list": "news"})
    assert sent[0][1]["complete"] is False and sent[0][1]["lists"][0]["list"] == "news"
    sent.clear()
    agent.moderate({"domain": "alpha-domain.test", "list": "news", "key": KEY, "kind": "post", "decision": "reject"})
    assert sent == [(contract.HELD, {"host": "mx1", "complete": False, "lists": [
        {"domain": "alpha-domain.test", "list": "news", "items": []}]})]
    sent.clear()
    agent.moderate({"domain": "alpha-domain.test", "list": "news", "key": "../x", "kind": "post",
                    "decision": "reject"})  # refused, logged, the list reported as it is
    assert sent[0][1]["lists"][0]["items"] == []
    sent.clear()
    agent.report_held({"domain": 7})
    assert sent == []


# --- the panel: taking in reports ------------------------------------------------------------------


@pytest.fixture
def news(cast: Cast) -> MailingList:
    return MailingList.objects.create(domain=cast.a.domain, name="news", owner="owner@alpha-domain.test",
                                      posting=Posting.MODERATED)


def item(key: str = KEY, **fields: Any) -> dict[str, Any]:
    return {"kind": "post", "key": key, "sender": "evil@outside.test", "subject": "<script>alert(1)</script>",
            "received_at": "2026-01-02T03:04:05+00:00", "preview": "Hello <b>bold</b>", **fields}


def report(news: MailingList, *items: dict[str, Any], complete: bool = False, host: str = "mx1") -> int:
    entry = {"domain": news.domain.name, "list": news.name, "items": list(items)}
    payload = {"host": host, "lists": [entry], "complete": complete}
    contract.check(payload, contract.HeldReport)
    return list_tasks.held(**payload)


@pytest.fixture
def resent(monkeypatch: pytest.MonkeyPatch) -> list[contract.Moderation]:
    sent: list[contract.Moderation] = []
    monkeypatch.setattr(list_reports, "send_decision", lambda host, request: sent.append(request))
    monkeypatch.setattr(panel_moderation, "send_decision", lambda host, request: sent.append(request))
    return sent


def test_reported_items_appear_once_and_disappear_when_gone(news: MailingList) -> None:
    assert report(news, item(), item(OTHER_KEY, kind="subscription", subject="", preview="")) == 2
    assert report(news, item(), item(OTHER_KEY, kind="subscription")) == 0  # already known
    held = HeldMessage.objects.get(mailing_list=news, key=KEY)
    assert (held.sender, held.subject, held.decision) == ("evil@outside.test", "<script>alert(1)</script>", "pending")
    assert held.received_at.isoformat() == "2026-01-02T03:04:05+00:00"
    report(news, item(OTHER_KEY, kind="subscription"))  # KEY was decided by mail, or expired
    assert list(news.held.values_list("key", flat=True)) == [OTHER_KEY]


def test_a_complete_report_clears_the_lists_it_does_not_name(cast: Cast, news: MailingList) -> None:
    other = MailingList.objects.create(domain=cast.a.domain, name="other", owner="owner@alpha-domain.test")
    report(news, item())
    report(other, item(OTHER_KEY))
    report(news, item())  # a report of one list leaves the others alone
    assert HeldMessage.objects.filter(mailing_list=other).exists()
    list_reports.record_held(host="mx1", lists=[{"domain": news.domain.name, "list": "news", "items": [item()]}],
                         complete=True)
    assert not HeldMessage.objects.filter(mailing_list=other).exists()
    assert HeldMessage.objects.filter(mailing_list=news).exists()


def test_a_report_from_another_host_or_of_bad_items_changes_nothing(news: MailingList) -> None:
    assert report(news, item(), host="mx9") == 0
    bad = [item("../../etc"), item(kind="digest"), item("ABC")]
    assert list_reports.record_held(host="mx1", lists=[{"domain": news.domain.name, "list": "news", "items": bad}],
                                complete=False) == 0
    list_reports.record_held(host="mx9", lists=[], complete=True)
    report(news, item(), item(OTHER_KEY, received_at="yesterday", subject="s" * 5000, preview="p" * 9000))
    list_reports.record_held(host="mx9", lists=[], complete=True)  # another host's lists, not these
    assert news.held.count() == 2
    odd = news.held.get(key=OTHER_KEY)
    assert odd.received_at is None and len(odd.subject) == 998 and len(odd.preview) == 2000


def test_a_decision_still_held_at_the_beat_is_sent_again(news: MailingList, resent: list, cast: Cast,
                                                         django_capture_on_commit_callbacks: Any) -> None:
    report(news, item(), item(OTHER_KEY))
    with django_capture_on_commit_callbacks(execute=True):
        panel_moderation.held_decide(held=news.held.get(key=KEY), decision="approve", acting_user=cast.operator)
    assert len(resent) == 1
    with django_capture_on_commit_callbacks(execute=True):
        report(news, item(), item(OTHER_KEY))  # the host's answer to a page: not the beat
    assert len(resent) == 1
    with django_capture_on_commit_callbacks(execute=True):
        report(news, item(), item(OTHER_KEY), complete=True)
    assert resent[1:] == [{"domain": "alpha-domain.test", "list": "news", "key": KEY, "kind": "post",
                           "decision": "approve"}]
    with django_capture_on_commit_callbacks(execute=True):
        report(news, item(OTHER_KEY), complete=True)  # released: gone, nothing more to send
    assert len(resent) == 2 and not news.held.filter(key=KEY).exists()


# --- the panel: the decision ---------------------------------------------------------------------------


def test_a_decision_is_audited_and_sent_after_commit_once(news: MailingList, resent: list, cast: Cast,
                                                         django_capture_on_commit_callbacks: Any) -> None:
    report(news, item())
    held = news.held.get()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        panel_moderation.held_decide(held=held, decision="reject", acting_user=cast.a.postmaster)
        assert resent == []  # not before the commit
    assert len(callbacks) == 1 and resent == [
        {"domain": "alpha-domain.test", "list": "news", "key": KEY, "kind": "post", "decision": "reject"}]
    held.refresh_from_db()
    assert (held.decision, held.decided_by) == (Decision.REJECT, "postmaster@alpha-domain.test")
    event = AuditEvent.objects.get(action=Action.LIST_MODERATE)
    assert event.detail["decision"] == "reject" and event.detail["sender"] == "evil@outside.test"
    assert event.domain_id == cast.a.domain.pk
    with pytest.raises(ValidationError) as refused:
        panel_moderation.held_decide(held=held, decision="approve", acting_user=cast.operator)
    assert refused.value.code == "decided"
    assert AuditEvent.objects.filter(action=Action.LIST_MODERATE).count() == 1 and len(resent) == 1


def test_only_approve_or_reject_of_an_item_still_held(news: MailingList, resent: list, cast: Cast) -> None:
    report(news, item())
    held = news.held.get()
    for decision in ("pending", "", "release"):
        with pytest.raises(ValidationError):
            panel_moderation.held_decide(held=held, decision=decision, acting_user=cast.operator)
    report(news)  # gone from the host meanwhile
    with pytest.raises(ValidationError) as refused:
        panel_moderation.held_decide(held=held, decision="approve", acting_user=cast.operator)
    assert refused.value.code == "gone" and not AuditEvent.objects.filter(action=Action.LIST_MODERATE).exists()


# --- the screens ------------------------------------------------------------------------------------


def queue_url(mailing_list: MailingList) -> str:
    return reverse("screens:moderation", args=[mailing_list.domain_id, mailing_list.pk])


def decide_url(mailing_list: MailingList, held: HeldMessage) -> str:
    return reverse("screens:held_decide", args=[mailing_list.domain_id, mailing_list.pk, held.pk])


def test_the_queue_shows_held_content_escaped_and_asks_the_host(news: MailingList, cast: Cast,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               django_capture_on_commit_callbacks: Any) -> None:
    asked: list[tuple[str, list, str]] = []
    monkeypatch.setattr(panel_moderation.panel_app, "send_task",
                        lambda name, args, queue: asked.append((name, args, queue)))
    report(news, item(preview="<script>alert(2)</script>\n<img src=x onerror=alert(3)>"),
           item(OTHER_KEY, kind="subscription", sender="new<b>@outside.test", subject="", preview=""))
    client = client_for(cast, "domain_admin_a")
    cache.delete(f"held-ask:{news.pk}")  # another test's list may have had this pk within the last seconds
    with django_capture_on_commit_callbacks(execute=True):
        body = client.get(queue_url(news)).content.decode()
        client.get(queue_url(news))  # within ASK_EVERY_SECONDS: asked once
    assert asked == [(contract.REPORT_HELD, [{"domain": "alpha-domain.test", "list": "news"}], "host.mx1")]
    assert "<script>" not in body and "<img" not in body and "<b>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "&lt;img src=x onerror=alert(3)&gt;" in body
    assert "new&lt;b&gt;@outside.test" in body and "Subscription request" in body
    assert body.count('name="decision" value="approve"') == 2 and 'name="csrfmiddlewaretoken"' in body


def test_approve_from_the_page_then_the_item_is_being_sent(news: MailingList, cast: Cast, resent: list,
                                                          django_capture_on_commit_callbacks: Any) -> None:
    report(news, item())
    held = news.held.get()
    client = client_for(cast, "customer_a")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(decide_url(news, held), {"decision": "approve"}, follow=True)
    assert response.redirect_chain[-1][0] == queue_url(news)
    body = response.content.decode()
    assert "The message is approved; the mail host sends it to the list." in body
    assert "Approved, being sent to the mail host" in body and 'value="approve"' not in body
    assert resent[0]["decision"] == "approve"
    with django_capture_on_commit_callbacks(execute=True):
        body = client.post(decide_url(news, held), {"decision": "reject"}, follow=True).content.decode()
    assert "This item was already decided." in body and len(resent) == 1
    held.refresh_from_db()
    assert held.decision == Decision.APPROVE


def test_the_page_goes_back_only_to_this_site(news: MailingList, cast: Cast, resent: list) -> None:
    report(news, item(), item(OTHER_KEY))
    client = client_for(cast, "operator")
    back = reverse("screens:list_modify", args=[news.domain_id, news.pk])
    response = client.post(decide_url(news, news.held.get(key=KEY)), {"decision": "reject", "next": back})
    assert response["Location"] == back
    response = client.post(decide_url(news, news.held.get(key=OTHER_KEY)),
                           {"decision": "reject", "next": "https://evil.test/"})
    assert response["Location"] == queue_url(news)


def test_a_decision_needs_post_and_the_csrf_token(news: MailingList, cast: Cast, resent: list) -> None:
    report(news, item())
    held = news.held.get()
    client = client_for(cast, "domain_admin_a")
    assert client.get(decide_url(news, held), {"decision": "approve"}).status_code == 405
    strict = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    strict.cookies = client.cookies
    assert strict.post(decide_url(news, held), {"decision": "approve"}).status_code == 403
    held.refresh_from_db()
    assert held.decision == Decision.PENDING and resent == []


def test_an_item_is_reached_only_through_its_own_list(news: MailingList, cast: Cast, resent: list) -> None:
    other = MailingList.objects.create(domain=cast.a.domain, name="other", owner="owner@alpha-domain.test")
    of_b = MailingList.objects.create(domain=cast.b.domain, name="news", owner="owner@bravo-domain.test")
    report(news, item())
    report(other, item(OTHER_KEY))
    list_reports.record_held(host="mx1", complete=False, lists=[
        {"domain": "bravo-domain.test", "list": "news", "items": [item("aaaaaaaaaaaaaaaa")]}])
    held_other, held_b = other.held.get(), of_b.held.get()
    client = client_for(cast, "operator")  # who sees everything: only the URL's list counts
    assert client.post(decide_url(news, held_other), {"decision": "approve"}).status_code == 404
    crossed = reverse("screens:held_decide", args=[cast.a.domain.pk, news.pk, held_b.pk])
    assert client.post(crossed, {"decision": "approve"}).status_code == 404
    crossed = reverse("screens:held_decide", args=[cast.a.domain.pk, of_b.pk, held_b.pk])
    assert client.post(crossed, {"decision": "approve"}).status_code == 404
    assert set(HeldMessage.objects.values_list("decision", flat=True)) == {"pending"} and resent == []


@pytest.mark.parametrize("role", ["domain_admin_b", "customer_b", "reseller_b"])
def test_outsiders_get_404_on_each_url(news: MailingList, cast: Cast, resent: list, role: str) -> None:
    report(news, item())
    held = news.held.get()
    client = client_for(cast, role)
    assert client.get(queue_url(news)).status_code == 404
    assert client.post(decide_url(news, held), {"decision": "approve"}).status_code == 404
    held.refresh_from_db()
    assert held.decision == Decision.PENDING


def test_a_moderator_who_is_only_a_mailbox_gets_no_queue(news: MailingList, cast: Cast, resent: list) -> None:
    """A plain mailbox of the domain has no domain screen, moderator of the list or not: it
    decides by replying to mlmmj's mail."""
    news.members.create(address=cast.mailbox_user.address, kind="moderator")
    report(news, item())
    client = client_for(cast, "mailbox_a")
    assert client.get(queue_url(news)).status_code in (403, 404)
    assert client.post(decide_url(news, news.held.get()), {"decision": "approve"}).status_code in (403, 404)
    assert news.held.get().decision == Decision.PENDING
