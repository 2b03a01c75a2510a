"""Changes made through the panel's service functions reach the real mail stack through real
Celery workers, and real mail proves them: SMTP in, POP3 and IMAP out, the sink for the outside."""

from __future__ import annotations

import poplib

import pytest

from mail.services import mailbox_set_password
from mailhost import contract
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import fresh_ip, imap_subjects, pop3_messages, send, wait_for, with_subject

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def subjects_in(e2e: E2E, address: str, password: str = PASSWORD) -> list[str]:
    return [str(m["Subject"]) for m in pop3_messages(e2e.stack, address, password)]


def test_new_mailbox_receives_mail_and_logs_in_with_the_panel_password(e2e: E2E) -> None:
    domain = e2e.domain("new")
    e2e.mailbox(domain, "alice")
    e2e.wait_applied(domain)
    address = f"alice@{domain.name}"
    send(e2e.stack, "someone@outside.test", address, "hello alice", "first mail")
    wait_for(lambda: "hello alice" in subjects_in(e2e, address))
    assert "hello alice" in imap_subjects(e2e.stack, address, PASSWORD)


def test_password_change_takes_effect_and_the_old_one_fails(e2e: E2E) -> None:
    domain = e2e.domain("pw")
    mailbox = e2e.mailbox(domain, "bob")
    e2e.wait_applied(domain)
    address = f"bob@{domain.name}"
    assert pop3_messages(e2e.stack, address, PASSWORD) == []
    mailbox_set_password(mailbox=mailbox, password="Brand-New-Secret-9", acting_user=e2e.operator)
    e2e.wait_applied(domain)
    assert pop3_messages(e2e.stack, address, "Brand-New-Secret-9") == []
    with pytest.raises(poplib.error_proto):
        pop3_messages(e2e.stack, address, PASSWORD, source_ip=fresh_ip())


def test_unknown_address_is_refused_with_550(e2e: E2E) -> None:
    from tests.e2e.mailclient import SMTPRefused

    domain = e2e.domain("unknown")
    e2e.wait_applied(domain)
    with pytest.raises(SMTPRefused) as refused:
        send(e2e.stack, "someone@outside.test", f"nobody@{domain.name}", "lost", "x")
    assert refused.value.code == 550


def test_sink_sees_external_forward(e2e: E2E) -> None:
    from tests.e2e.mailclient import sink_messages

    domain = e2e.domain("fw")
    e2e.mailbox(domain, "carol")
    e2e.wait_applied(domain)
    from mail.services import forward_create

    forward_create(domain=domain, local_part="sales", destinations=["carol", "boss@partner.test"],
                   acting_user=e2e.operator)
    e2e.wait_applied(domain)
    send(e2e.stack, "client@outside.test", f"sales@{domain.name}", "order 42", "please")
    wait_for(lambda: with_subject(sink_messages(e2e.stack, "boss@partner.test"), "order 42"))
    wait_for(lambda: "order 42" in subjects_in(e2e, f"carol@{domain.name}"))


def maildir_files(e2e: E2E, domain_name: str, local: str) -> list[str]:
    home = e2e.stack.config.vmail_root / domain_name / local / "Maildir"
    return [p.name for sub in ("new", "cur") for p in (home / sub).glob("*")] if home.exists() else []


def test_forward_to_several_destinations_and_keep_a_copy(e2e: E2E) -> None:
    from mail.services import mailbox_set_routing
    from tests.e2e.mailclient import sink_messages

    domain = e2e.domain("copy")
    dave = e2e.mailbox(domain, "dave")
    e2e.mailbox(domain, "erin")
    mailbox_set_routing(mailbox=dave, routing="forward", forward_to=["erin", "dave.home@isp.test"], keep_copy=True,
                        acting_user=e2e.operator)
    e2e.wait_applied(domain)
    send(e2e.stack, "friend@outside.test", f"dave@{domain.name}", "for dave", "hi")
    wait_for(lambda: with_subject(sink_messages(e2e.stack, "dave.home@isp.test"), "for dave"))
    wait_for(lambda: "for dave" in subjects_in(e2e, f"erin@{domain.name}"))
    wait_for(lambda: "for dave" in subjects_in(e2e, f"dave@{domain.name}"))
    # Without the copy, dave's own box stays empty.
    mailbox_set_routing(mailbox=dave, routing="forward", forward_to=["erin"], keep_copy=False,
                        acting_user=e2e.operator)
    e2e.wait_applied(domain)
    send(e2e.stack, "friend@outside.test", f"dave@{domain.name}", "second", "hi")
    wait_for(lambda: "second" in subjects_in(e2e, f"erin@{domain.name}"))
    assert "second" not in subjects_in(e2e, f"dave@{domain.name}")


def test_all_mail_deleted(e2e: E2E) -> None:
    from mail.services import mailbox_set_routing

    domain = e2e.domain("del")
    frank = e2e.mailbox(domain, "frank")
    mailbox_set_routing(mailbox=frank, routing="delete", acting_user=e2e.operator)
    e2e.wait_applied(domain)
    send(e2e.stack, "friend@outside.test", f"frank@{domain.name}", "into the void", "x")  # accepted
    e2e.mailbox(domain, "witness")  # a later change: when it is live, the first mail was long delivered
    e2e.wait_applied(domain)
    send(e2e.stack, "friend@outside.test", f"witness@{domain.name}", "marker", "x")
    wait_for(lambda: "marker" in subjects_in(e2e, f"witness@{domain.name}"))
    assert subjects_in(e2e, f"frank@{domain.name}") == []


def test_vacation_replies_once_per_sender_per_period(e2e: E2E) -> None:
    from mail.services import mailbox_set_vacation
    from tests.e2e.mailclient import sink_messages

    domain = e2e.domain("vac")
    gina = e2e.mailbox(domain, "gina")
    mailbox_set_vacation(mailbox=gina, enabled=True, subject="Absente jusqu'à lundi",
                         message="Je réponds à mon retour.\n« Merci »", acting_user=e2e.operator)
    e2e.wait_applied(domain)
    for n in range(2):
        send(e2e.stack, "client@outside.test", f"gina@{domain.name}", f"question {n}", "?")
    wait_for(lambda: len(subjects_in(e2e, f"gina@{domain.name}")) == 2)
    replies = wait_for(lambda: sink_messages(e2e.stack, "client@outside.test"))
    assert [str(r["Subject"]) for r in replies] == ["Absente jusqu'à lundi"]
    assert "« Merci »" in replies[0].get_content()
    assert str(replies[0]["Auto-Submitted"]).startswith("auto-replied")
    send(e2e.stack, "other@outside.test", f"gina@{domain.name}", "question 3", "?")
    wait_for(lambda: sink_messages(e2e.stack, "other@outside.test"))
    assert len(sink_messages(e2e.stack, "client@outside.test")) == 1


def test_robot_replies_and_copies_and_stores_nothing(e2e: E2E) -> None:
    from mail.services import robot_create
    from tests.e2e.mailclient import sink_messages

    domain = e2e.domain("robot")
    e2e.mailbox(domain, "hank")
    robot_create(domain=domain, local_part="info", subject="Bien reçu", message="Nous vous répondons sous 48 h.",
                 copy_to=f"hank@{domain.name}", acting_user=e2e.operator)
    e2e.wait_applied(domain)
    send(e2e.stack, "prospect@outside.test", f"info@{domain.name}", "tarifs ?", "combien ?")
    reply = wait_for(lambda: with_subject(sink_messages(e2e.stack, "prospect@outside.test"), "Bien reçu"))
    assert "48 h" in reply[0].get_content()
    wait_for(lambda: "tarifs ?" in subjects_in(e2e, f"hank@{domain.name}"))
    assert maildir_files(e2e, domain.name, "info") == []
    with pytest.raises(poplib.error_proto):  # a robot is no mailbox: nobody logs in
        pop3_messages(e2e.stack, f"info@{domain.name}", "!", source_ip=fresh_ip())


@pytest.mark.parametrize("mode", ["bounce", "delete", "mailbox", "remote", "domain"])
def test_catch_all_modes(e2e: E2E, mode: str) -> None:
    from mail.services import catchall_set
    from tests.e2e.mailclient import SMTPRefused, sink_messages

    domain = e2e.domain("ca")
    e2e.mailbox(domain, "ivy")
    other = e2e.domain("other")
    e2e.mailbox(other, "typo")
    target = {"mailbox": "ivy", "remote": "catcher@far.test", "domain": other.name}.get(mode, "")
    catchall_set(domain=domain, mode=mode, target=target, acting_user=e2e.operator)
    e2e.wait_applied(domain)
    e2e.wait_applied(other)
    unknown = f"typo@{domain.name}"
    if mode == "bounce":
        with pytest.raises(SMTPRefused) as refused:
            send(e2e.stack, "x@outside.test", unknown, "lost", "x")
        assert 500 <= refused.value.code < 600
        return
    send(e2e.stack, "x@outside.test", unknown, f"caught {mode}", "x")
    send(e2e.stack, "x@outside.test", f"ivy@{domain.name}", "for ivy herself", "x")
    wait_for(lambda: "for ivy herself" in subjects_in(e2e, f"ivy@{domain.name}"))  # never swallowed
    if mode == "mailbox":
        wait_for(lambda: f"caught {mode}" in subjects_in(e2e, f"ivy@{domain.name}"))
    elif mode == "remote":
        wait_for(lambda: with_subject(sink_messages(e2e.stack, "catcher@far.test"), f"caught {mode}"))
    elif mode == "domain":
        wait_for(lambda: f"caught {mode}" in subjects_in(e2e, f"typo@{other.name}"))
    else:  # delete: accepted, then nowhere
        assert f"caught {mode}" not in subjects_in(e2e, f"ivy@{domain.name}")


def test_quota_exceeded_is_refused_with_552(e2e: E2E) -> None:
    from tests.e2e.mailclient import SMTPRefused

    domain = e2e.domain("quota")
    e2e.mailbox(domain, "jack", quota_mb=1)
    e2e.wait_applied(domain)
    with pytest.raises(SMTPRefused) as refused:
        send(e2e.stack, "big@outside.test", f"jack@{domain.name}", "too big", "x" * (2 * 1024 * 1024))
    assert refused.value.code == 552
    send(e2e.stack, "small@outside.test", f"jack@{domain.name}", "small", "fits")
    wait_for(lambda: "small" in subjects_in(e2e, f"jack@{domain.name}"))


def test_disabled_mailbox_refuses_and_switches_are_enforced(e2e: E2E) -> None:
    import imaplib

    from mail.services import mailbox_set_access
    from tests.e2e.mailclient import SMTPRefused, imap_login

    domain = e2e.domain("access")
    kate = e2e.mailbox(domain, "kate")
    mailbox_set_access(mailbox=kate, allow_pop3=False, acting_user=e2e.operator)
    e2e.wait_applied(domain)
    address = f"kate@{domain.name}"
    with pytest.raises(poplib.error_proto):
        pop3_messages(e2e.stack, address, PASSWORD, source_ip=fresh_ip())
    imap_login(e2e.stack, address, PASSWORD).logout()
    mailbox_set_access(mailbox=kate, allow_pop3=True, allow_imap=False, acting_user=e2e.operator)
    e2e.wait_applied(domain)
    assert pop3_messages(e2e.stack, address, PASSWORD) == []
    with pytest.raises(imaplib.IMAP4.error):
        imap_login(e2e.stack, address, PASSWORD, source_ip=fresh_ip())
    mailbox_set_access(mailbox=kate, enabled=False, acting_user=e2e.operator)
    e2e.wait_applied(domain)
    with pytest.raises(SMTPRefused) as refused:
        send(e2e.stack, "x@outside.test", address, "to a disabled box", "x")
    assert refused.value.code == 550
    with pytest.raises(poplib.error_proto):
        pop3_messages(e2e.stack, address, PASSWORD, source_ip=fresh_ip())


def test_deleted_mailbox_is_refused_and_its_maildir_is_gone(e2e: E2E) -> None:
    from mail.services import mailbox_delete
    from tests.e2e.mailclient import SMTPRefused

    domain = e2e.domain("gone")
    leo = e2e.mailbox(domain, "leo")
    e2e.wait_applied(domain)
    send(e2e.stack, "x@outside.test", f"leo@{domain.name}", "kept until deleted", "x")
    wait_for(lambda: maildir_files(e2e, domain.name, "leo"))
    mailbox_delete(mailbox=leo, acting_user=e2e.operator)
    e2e.wait_applied(domain)
    with pytest.raises(SMTPRefused) as refused:
        send(e2e.stack, "x@outside.test", f"leo@{domain.name}", "after", "x")
    assert refused.value.code == 550
    assert not (e2e.stack.config.vmail_root / domain.name / "leo").exists()


def test_delete_with_redirect_delivers_to_the_redirect(e2e: E2E) -> None:
    from mail.services import mailbox_delete

    domain = e2e.domain("redir")
    mia = e2e.mailbox(domain, "mia")
    e2e.mailbox(domain, "nina")
    mailbox_delete(mailbox=mia, redirect_to="nina", acting_user=e2e.operator)
    e2e.wait_applied(domain)
    send(e2e.stack, "x@outside.test", f"mia@{domain.name}", "for the old mia", "x")
    wait_for(lambda: "for the old mia" in subjects_in(e2e, f"nina@{domain.name}"))


def test_mailbox_usage_is_reported_to_the_panel(e2e: E2E) -> None:
    from celery import current_app

    from mail.models import Mailbox

    domain = e2e.domain("usage")
    rose = e2e.mailbox(domain, "rose")
    e2e.wait_applied(domain)
    send(e2e.stack, "x@outside.test", f"rose@{domain.name}", "some weight", "y" * 50_000)
    wait_for(lambda: maildir_files(e2e, domain.name, "rose"))
    current_app.send_task(contract.REPORT_USAGE, queue=e2e.host.queue)  # what the agent's beat runs
    wait_for(lambda: Mailbox.objects.get(pk=rose.pk).quota_used_bytes > 50_000, timeout=30)
