"""Every list option changes the real mlmmj list: posts, replies, prefix and trailer as a
subscriber receives them, subscription by mail in both address styles (mlmmj's `+` ones and
ezmlm's `-` ones, `-request` with the command in the Subject), digests, private lists, archive
access, the texts edited in the panel, the list's language, hostile values."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

import pytest
from celery import current_app
from django.core.exceptions import ValidationError
from django.db import transaction

from hosting.models import Domain
from lists.models import MailingList
from lists.services import list_create, list_member_add, list_set_text, list_update
from mailhost import contract
from mailhost.stack import HOST
from provisioning.revisions import domain_changed
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import CLIENT_NAME, make_message, pop3_messages, send, sink_messages, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
TIMEOUT = 30


def send_raw(e2e: E2E, mail_from: str, to: str, msg: EmailMessage) -> None:
    with smtplib.SMTP(HOST, e2e.stack.config.smtp_port, CLIENT_NAME, timeout=10) as smtp:
        smtp.sendmail(mail_from, [to], msg.as_bytes())


def sink_with(e2e: E2E, address: str, text: str) -> list[EmailMessage]:
    return [m for m in sink_messages(e2e.stack, address) if text in str(m.get("Subject", ""))]


def wait_sink(e2e: E2E, address: str, text: str) -> EmailMessage:
    return wait_for(lambda: sink_with(e2e, address, text), timeout=TIMEOUT)[-1]


def pop_with(e2e: E2E, address: str, text: str) -> list[EmailMessage]:
    return [m for m in pop3_messages(e2e.stack, address, PASSWORD) if text in str(m.get("Subject", ""))]


def lines(text: str) -> list[str]:
    """The text's lines but the empty ones (SMTP and the pipes may add a last empty line)."""
    return [line for line in text.splitlines() if line]


def list_path(e2e: E2E, domain: Domain, name: str) -> Path:
    return e2e.stack.config.mlmmj_root / domain.name / name


def held(e2e: E2E, domain: Domain, name: str) -> list[str]:
    folder = list_path(e2e, domain, name) / "moderation"
    return [p.read_text(errors="replace") for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []


def confirm_address(message: EmailMessage, name: str, kind: str) -> str:
    """The `+confsub-<cookie>@` (or confunsub) address mlmmj asks to reply to."""
    address = str(message["Reply-To"])
    assert address.startswith(f"{name}+{kind}-"), address
    return address


def make_list(e2e: E2E, domain: Domain, name: str, **options: object) -> MailingList:
    options.setdefault("sub_confirm", False)
    return list_create(domain=domain, name=name, owner=f"owner@{domain.name}", acting_user=e2e.operator,
                       **options)  # type: ignore[arg-type]


def test_posting_modes_reply_to_prefix_and_trailer(e2e: E2E) -> None:
    domain = e2e.domain("post")
    d = domain.name
    for local in ("owner", "reader"):
        e2e.mailbox(domain, local)
    lists = {
        "libre": make_list(e2e, domain, "libre", posting="anyone", reply_to="list", prefix="[Club échecs]",
                           trailer="Pied de page été"),
        "abonnes": make_list(e2e, domain, "abonnes", posting="subscribers", reply_to="address",
                             reply_to_address="replies@outside.test"),
        "modere": make_list(e2e, domain, "modere", posting="subscribers_moderated"),
        "mods": make_list(e2e, domain, "mods", posting="moderators"),
        "tous": make_list(e2e, domain, "tous", posting="moderated"),
    }
    for ml in lists.values():
        list_member_add(mailing_list=ml, address="friend@outside.test", acting_user=e2e.operator)
        list_member_add(mailing_list=ml, address=f"reader@{d}", acting_user=e2e.operator)
    e2e.wait_applied(domain)

    for name in lists:  # a stranger: only "libre" takes it; held where non-members are moderated
        send(e2e.stack, "stranger@outside.test", f"{name}@{d}", f"stranger to {name}", "x")
    wait_sink(e2e, "friend@outside.test", "stranger to libre")
    for name in ("abonnes", "mods"):  # refused: the stranger is told (mlmmj's deny-post)
        wait_for(lambda name=name: [m for m in sink_messages(e2e.stack, "stranger@outside.test")
                                    if f"stranger to {name}" in str(m["Subject"])], timeout=TIMEOUT)
    for name in ("modere", "tous"):
        wait_for(lambda name=name: any("stranger to" in text for text in held(e2e, domain, name)), timeout=TIMEOUT)

    send(e2e.stack, f"reader@{d}", f"abonnes@{d}", "reader to abonnes", "x")  # a subscriber: delivered
    send(e2e.stack, f"reader@{d}", f"mods@{d}", "reader to mods", "x")  # not a moderator: refused
    send(e2e.stack, f"reader@{d}", f"tous@{d}", "reader to tous", "x")  # every post is held
    send(e2e.stack, f"owner@{d}", f"mods@{d}", "owner to mods", "x")  # the moderator: delivered
    delivered = wait_sink(e2e, "friend@outside.test", "reader to abonnes")
    assert str(delivered["Reply-To"]) == "replies@outside.test"
    assert wait_sink(e2e, "friend@outside.test", "owner to mods")["Reply-To"] is None  # original sender
    wait_for(lambda: pop_with(e2e, f"reader@{d}", "reader to mods"), timeout=TIMEOUT)  # the denial, quoted
    wait_for(lambda: any("reader to tous" in text for text in held(e2e, domain, "tous")), timeout=TIMEOUT)
    for name in ("modere", "tous", "mods"):
        assert not sink_with(e2e, "friend@outside.test", f"stranger to {name}")
    assert not sink_with(e2e, "friend@outside.test", "reader to mods")
    assert not sink_with(e2e, "friend@outside.test", "reader to tous")

    # Prefix and trailer in French, on a quoted-printable, a base64 and a multipart post.
    for cte in ("quoted-printable", "base64"):
        msg = make_message("stranger@outside.test", [f"libre@{d}"], f"Réunion {cte}", "")
        msg.set_content("Été à la plage, très chaud.\n", cte=cte)
        send_raw(e2e, "stranger@outside.test", f"libre@{d}", msg)
    multipart = make_message("stranger@outside.test", [f"libre@{d}"], "Réunion html", "Texte été")
    multipart.add_alternative("<html><body><p>HTML été</p></body></html>", subtype="html")
    send_raw(e2e, "stranger@outside.test", f"libre@{d}", multipart)
    for cte in ("quoted-printable", "base64"):
        got = wait_sink(e2e, "friend@outside.test", f"Réunion {cte}")
        raw = got.as_bytes().split(b"\n\n", 1)[0]
        subject_line = [line for line in raw.split(b"\n") if line.startswith(b"Subject:")][0]
        assert subject_line.isascii()  # encoded, never raw 8-bit
        assert " ".join(str(got["Subject"]).split()) == f"[Club échecs] Réunion {cte}"
        assert str(got["Reply-To"]) == f"libre@{d}"
        assert lines(got.get_content()) == ["Été à la plage, très chaud.", "Pied de page été"]
    got = wait_sink(e2e, "friend@outside.test", "Réunion html")
    assert got.get_body(("plain",)).get_content().endswith("Pied de page été\n")  # type: ignore[union-attr]
    assert "Pied de page été" in got.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_subscription_by_mail_in_both_address_styles(e2e: E2E) -> None:
    domain = e2e.domain("sub")
    d = domain.name
    e2e.mailbox(domain, "owner")
    club = make_list(e2e, domain, "club", sub_confirm=True, digest=True)
    make_list(e2e, domain, "open")  # no confirmation
    make_list(e2e, domain, "prive", private=True)
    make_list(e2e, domain, "english", sub_confirm=True, language="en")
    list_set_text(mailing_list=club, name="finish-sub",
                  text="Subject: Bienvenue au club\n\nBienvenue parmi nous, $subaddr$ !", acting_user=e2e.operator)
    hostile_help = "Subject: Aide\nBcc: victim@evil.test\n\nAide du club"
    with pytest.raises(ValidationError):  # refused by the panel now (issue 15, item 6) ...
        list_set_text(mailing_list=club, name="help", text=hostile_help, acting_user=e2e.operator)
    with transaction.atomic():  # ... but a list may hold it from before: the host still sends it as body
        club.refresh_from_db()
        MailingList.objects.filter(pk=club.pk).update(texts={**club.texts, "help": hostile_help},
                                                      revision=domain_changed(domain))
    e2e.wait_applied(domain)

    # Subscribe: confirmation in French, then the panel's welcome; through +, - and -request.
    for who, address, subject in (("plus", f"club+subscribe@{d}", "x"), ("dash", f"club-subscribe@{d}", "x"),
                                  ("req", f"club-request@{d}", "subscribe")):
        send(e2e.stack, f"{who}@outside.test", address, subject, "")
    for who in ("plus", "dash", "req"):
        confirmation = wait_sink(e2e, f"{who}@outside.test", "Confirmer votre abonnement")
        send(e2e.stack, f"{who}@outside.test", confirm_address(confirmation, "club", "confsub"), "oui", "")
        welcome = wait_sink(e2e, f"{who}@outside.test", "Bienvenue au club")
        assert welcome.get_content().strip() == f"Bienvenue parmi nous, {who}@outside.test !"
    # Without confirmation: the welcome at once (mlmmj's French text); by the ezmlm-style address.
    send(e2e.stack, "quick@outside.test", f"open-subscribe@{d}", "x", "")
    wait_sink(e2e, "quick@outside.test", "Bienvenue")
    # The digest version, by the ezmlm-style address; a digest after a post.
    send(e2e.stack, "dig@outside.test", f"club-digest-subscribe@{d}", "x", "")
    confirmation = wait_sink(e2e, "dig@outside.test", "Confirmer votre abonnement")
    send(e2e.stack, "dig@outside.test", confirm_address(confirmation, "club", "confsub"), "oui", "")
    wait_sink(e2e, "dig@outside.test", "Bienvenue au club")
    send(e2e.stack, "plus@outside.test", f"club@{d}", "news of the club", "x")
    wait_sink(e2e, "dash@outside.test", "news of the club")
    (list_path(e2e, domain, "club") / "control" / "digestinterval").write_text("1\n")
    current_app.send_task(contract.MAINTAIN, queue=e2e.host.queue)
    digest = wait_sink(e2e, "dig@outside.test", "Digest de club@")
    assert "news of the club" in digest.as_string()

    # Unsubscribe with confirmation, both styles (mlmmj always asks).
    for who, address in (("plus", f"club+unsubscribe@{d}"), ("dash", f"club-unsubscribe@{d}")):
        send(e2e.stack, f"{who}@outside.test", address, "x", "")
        confirmation = wait_sink(e2e, f"{who}@outside.test", "Confirmer votre désabonnement")
        send(e2e.stack, f"{who}@outside.test", confirm_address(confirmation, "club", "confunsub"), "oui", "")
        wait_sink(e2e, f"{who}@outside.test", "Au revoir")
    send(e2e.stack, "req@outside.test", f"club@{d}", "after the leaving", "x")
    wait_sink(e2e, "req@outside.test", "after the leaving")
    assert not sink_with(e2e, "plus@outside.test", "after the leaving")

    # A private list: no subscription by mail.
    send(e2e.stack, "outsider@outside.test", f"prive-subscribe@{d}", "x", "")
    send(e2e.stack, "outsider@outside.test", f"prive-help@{d}", "x", "")  # mlmmj sends no refusal: wait for this
    wait_for(lambda: sink_messages(e2e.stack, "outsider@outside.test"), timeout=TIMEOUT)
    assert not sink_with(e2e, "outsider@outside.test", "Bienvenue")
    subscribers = "".join(p.read_text() for p in list_path(e2e, domain, "prive").glob("subscribers.d/*"))
    assert "outsider" not in subscribers and "owner@" in subscribers

    # Help: the panel's text, its Bcc: line only body; -help and -request with another word.
    send(e2e.stack, "asker@outside.test", f"club-help@{d}", "x", "")
    send(e2e.stack, "asker2@outside.test", f"club-request@{d}", "what is this", "")
    for who in ("asker", "asker2"):
        answer = wait_for(lambda who=who: [m for m in sink_messages(e2e.stack, f"{who}@outside.test")
                                           if "Aide du club" in m.as_string()], timeout=TIMEOUT)[0]
        assert answer["Bcc"] is None and "Bcc: victim@evil.test" in answer.get_content()
    assert not sink_messages(e2e.stack, "victim@evil.test")

    # English texts for an English list.
    send(e2e.stack, "anglo@outside.test", f"english-subscribe@{d}", "x", "")
    wait_sink(e2e, "anglo@outside.test", "Confirm subscription to english@")


def test_archive_access_and_hostile_values(e2e: E2E) -> None:
    domain = e2e.domain("arch")
    d = domain.name
    e2e.mailbox(domain, "owner")
    archive = make_list(e2e, domain, "arch", posting="anyone")
    list_member_add(mailing_list=archive, address="member@outside.test", acting_user=e2e.operator)
    e2e.wait_applied(domain)
    send(e2e.stack, "member@outside.test", f"arch@{d}", "archived post", "x")
    wait_sink(e2e, "member@outside.test", "archived post")
    # subscribers (the default): a member gets message 1, a stranger does not.
    send(e2e.stack, "stranger@outside.test", f"arch+get-1@{d}", "x", "")
    send(e2e.stack, "member@outside.test", f"arch+get-1@{d}", "x", "")
    wait_for(lambda: len(sink_with(e2e, "member@outside.test", "archived post")) == 2, timeout=TIMEOUT)
    send(e2e.stack, "stranger@outside.test", f"arch+help@{d}", "x", "")  # answered after the get
    wait_for(lambda: sink_messages(e2e.stack, "stranger@outside.test"), timeout=TIMEOUT)
    assert not sink_with(e2e, "stranger@outside.test", "archived post")
    fields = {"owner": f"owner@{d}", "prefix": "", "posting": "anyone", "reply_to": "sender",
              "reply_to_address": "", "trailer": "", "language": "fr"}
    list_update(mailing_list=archive, archive_access="anyone", acting_user=e2e.operator, **fields)
    e2e.wait_applied(domain)
    send(e2e.stack, "stranger@outside.test", f"arch+get-1@{d}", "x", "")
    wait_sink(e2e, "stranger@outside.test", "archived post")
    list_update(mailing_list=archive, archive_access="moderators", acting_user=e2e.operator, **fields)
    e2e.wait_applied(domain)
    send(e2e.stack, "member@outside.test", f"arch+get-1@{d}", "x", "")
    send(e2e.stack, "member@outside.test", f"arch+help@{d}", "x", "")
    wait_for(lambda: [m for m in sink_messages(e2e.stack, "member@outside.test")
                      if "archived post" not in str(m["Subject"])], timeout=TIMEOUT)
    assert len(sink_with(e2e, "member@outside.test", "archived post")) == 2  # no third copy

    # Hostile values: refused by the services, or harmless.
    for bad in ({"prefix": "[a]\r\nBcc: victim@evil.test"}, {"owner": "a@b.test, victim@evil.test"},
                {"owner": "a@b.test\nBcc: victim@evil.test"}, {"trailer": "x\x00y"},
                {"reply_to": "address", "reply_to_address": "a@b.test\nBcc: victim@evil.test"}):
        with pytest.raises(ValidationError):
            list_create(domain=domain, name="bad", acting_user=e2e.operator, **{"owner": f"owner@{d}", **bad})
    odd = make_list(e2e, domain, "odd", posting="anyone", prefix="[é\u200b%s$list$]",
                    trailer="-- \n$list$ %% \\u0041 é\u2028fin")
    list_member_add(mailing_list=odd, address="member@outside.test", acting_user=e2e.operator)
    e2e.wait_applied(domain)
    send(e2e.stack, "member@outside.test", f"odd@{d}", "odd values", "x")
    got = wait_sink(e2e, "member@outside.test", "odd values")
    assert str(got["Subject"]).startswith("[é\u200b%s$list$]")
    assert got.get_content().rstrip("\n").endswith("x\n\n-- \n$list$ %% \\u0041 é\u2028fin")  # as written
    assert not sink_messages(e2e.stack, "victim@evil.test")
