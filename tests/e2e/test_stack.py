"""The mail stack itself, before any agent exists: these tests write the maps database directly
(schema of mailhost/maps.py, one BEGIN IMMEDIATE ... COMMIT per domain, as the agent will) and
talk to the real Postfix and Dovecot over 127.0.0.1. External recipients land in the sink.
"""

from __future__ import annotations

import imaplib
import os
import poplib
import pwd
import smtplib
import subprocess
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailhost import maps
from mailhost.passwords import hash_password
from mailhost.stack import Stack, postfix_reload
from tests.e2e.mailclient import (
    SMTPRefused,
    fresh_ip,
    imap_login,
    imap_subjects,
    pop3_messages,
    send,
    sink_messages,
    wait_for,
    with_subject,
)

pytestmark = pytest.mark.e2e

EXTERNAL = "elsewhere.test"


@dataclass
class Box:
    email: str
    password: str
    quota_bytes: int = 0
    allow_pop3: int = 1
    allow_imap: int = 1
    allow_smtp: int = 1
    sieve: str | None = None


def unique_domain(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}.test"


def unique_subject(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:10]}"


def home_of(stack: Stack, address: str) -> Path:
    local, domain = address.split("@")
    return stack.config.vmail_root / domain / local


def put_domain(
    stack: Stack,
    domain: str,
    mailboxes: Iterable[Box] = (),
    aliases: dict[str, str] | None = None,
    transports: dict[str, str] | None = None,
) -> None:
    """Write one domain's rows in one transaction, as the agent does."""
    db = maps.connect(stack.config.maps_db)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO domains(domain, active, revision) VALUES (?, 1, 1)", (domain,))
        for box in mailboxes:
            db.execute(
                "INSERT INTO mailboxes(email, domain, password_hash, quota_bytes, active, allow_pop3, allow_imap,"
                " allow_smtp, home, sieve) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
                (
                    box.email,
                    domain,
                    hash_password(box.password),
                    box.quota_bytes,
                    box.allow_pop3,
                    box.allow_imap,
                    box.allow_smtp,
                    str(home_of(stack, box.email)),
                    box.sieve,
                ),
            )
        for source, destination in (aliases or {}).items():
            db.execute(
                "INSERT INTO aliases(source, domain, destination, active) VALUES (?, ?, ?, 1)",
                (source, domain, destination),
            )
        for address, transport in (transports or {}).items():
            db.execute(
                "INSERT INTO transports(address, domain, transport) VALUES (?, ?, ?)", (address, domain, transport)
            )
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    finally:
        db.close()


def write_sieve(stack: Stack, address: str, script: str) -> Path:
    """The active Sieve script of a mailbox, as the agent would write it: owned by user mail (and so
    is the folder, where Dovecot saves the compiled .svbin next to the script)."""
    mail = pwd.getpwnam("mail")
    path = home_of(stack, address) / "sieve" / "active.sieve"
    for directory in (path.parent.parent.parent, path.parent.parent, path.parent):
        directory.mkdir(mode=0o700, exist_ok=True)
        os.chown(directory, mail.pw_uid, mail.pw_gid)
    path.write_text(script)
    os.chown(path, mail.pw_uid, mail.pw_gid)
    path.chmod(0o600)
    return path


def inbox(stack: Stack, box: Box, subject: str) -> list:
    return with_subject(pop3_messages(stack, box.email, box.password), subject)


def test_delivered_mail_is_read_by_pop3_and_imap_and_a_wrong_password_fails(mail_stack: Stack) -> None:
    domain = unique_domain("basic")
    alice = Box(f"alice@{domain}", "alice-secret-1")
    put_domain(mail_stack, domain, [alice])

    subject = unique_subject("hello")
    assert send(mail_stack, f"someone@{EXTERNAL}", alice.email, subject, "hello alice\n") == {}
    [msg] = wait_for(lambda: inbox(mail_stack, alice, subject))
    assert msg["Delivered-To"] == alice.email
    assert msg.get_content().strip() == "hello alice"
    assert subject in imap_subjects(mail_stack, alice.email, alice.password)

    # recipient_delimiter: a +tag reaches the same mailbox
    tagged = unique_subject("tagged")
    send(mail_stack, f"someone@{EXTERNAL}", f"alice+news@{domain}", tagged, "tagged\n")
    wait_for(lambda: inbox(mail_stack, alice, tagged))

    with pytest.raises(poplib.error_proto, match="ERR"):
        pop3_messages(mail_stack, alice.email, "wrong-password", source_ip=fresh_ip())
    with pytest.raises(imaplib.IMAP4.error):
        imap_login(mail_stack, alice.email, "wrong-password", source_ip=fresh_ip())


def test_unknown_recipient_of_the_domain_is_refused_at_rcpt(mail_stack: Stack) -> None:
    domain = unique_domain("unknown")
    put_domain(mail_stack, domain, [Box(f"real@{domain}", "real-secret-1")])
    with pytest.raises(SMTPRefused) as refused:
        send(mail_stack, f"someone@{EXTERNAL}", f"nobody@{domain}", unique_subject("lost"), "x\n")
    assert (refused.value.stage, refused.value.code) == ("RCPT", 550)
    assert "5.1.1" in refused.value.text


def test_alias_to_an_external_address_lands_in_the_sink(mail_stack: Stack) -> None:
    domain = unique_domain("fwd")
    friend = f"friend-{uuid.uuid4().hex[:6]}@{EXTERNAL}"
    put_domain(mail_stack, domain, aliases={f"info@{domain}": friend})

    subject = unique_subject("forward")
    send(mail_stack, f"client@{EXTERNAL}", f"info@{domain}", subject, "please forward\n")
    [msg] = wait_for(lambda: with_subject(sink_messages(mail_stack, friend), subject))
    assert msg["Return-Path"] == f"<client@{EXTERNAL}>"  # the original sender is kept
    assert msg["X-Original-To"] == f"info@{domain}"


def test_alias_with_a_local_and_an_external_destination(mail_stack: Stack) -> None:
    domain = unique_domain("team")
    bob = Box(f"bob@{domain}", "bob-secret-1")
    partner = f"partner-{uuid.uuid4().hex[:6]}@{EXTERNAL}"
    put_domain(mail_stack, domain, [bob], aliases={f"team@{domain}": f"{bob.email},{partner}"})

    subject = unique_subject("team")
    send(mail_stack, f"client@{EXTERNAL}", f"team@{domain}", subject, "to the team\n")
    wait_for(lambda: inbox(mail_stack, bob, subject))
    wait_for(lambda: with_subject(sink_messages(mail_stack, partner), subject))


def test_pop3_switched_off_refuses_pop3_but_not_imap(mail_stack: Stack) -> None:
    domain = unique_domain("nopop")
    carol = Box(f"carol@{domain}", "carol-secret-1", allow_pop3=0)
    put_domain(mail_stack, domain, [carol])

    with pytest.raises(poplib.error_proto):
        pop3_messages(mail_stack, carol.email, carol.password, source_ip=fresh_ip())
    imap = imap_login(mail_stack, carol.email, carol.password, source_ip=fresh_ip())
    imap.logout()


def test_over_quota_is_refused_at_rcpt_when_size_is_announced(mail_stack: Stack) -> None:
    domain = unique_domain("quota")
    small = Box(f"small@{domain}", "small-secret-1", quota_bytes=20_000)
    put_domain(mail_stack, domain, [small])

    fits = unique_subject("fits")
    send(mail_stack, f"client@{EXTERNAL}", small.email, fits, "short\n")
    wait_for(lambda: inbox(mail_stack, small, fits))

    big_body = ("x" * 76 + "\n") * 800  # ~62 KB, SIZE is announced by smtplib
    with pytest.raises(SMTPRefused) as refused:
        send(mail_stack, f"client@{EXTERNAL}", small.email, unique_subject("big"), big_body)
    assert (refused.value.stage, refused.value.code) == ("RCPT", 552)
    assert "5.2.2" in refused.value.text


def test_sieve_vacation_replies_to_an_external_sender(mail_stack: Stack) -> None:
    domain = unique_domain("away")
    address = f"dana@{domain}"
    script = write_sieve(
        mail_stack,
        address,
        'require ["vacation", "vacation-seconds"];\nvacation :seconds 1 :subject "Away" "Back on Monday.";\n',
    )
    dana = Box(address, "dana-secret-1", sieve=str(script))
    put_domain(mail_stack, domain, [dana])

    stranger = f"stranger-{uuid.uuid4().hex[:6]}@{EXTERNAL}"
    subject = unique_subject("are you there")
    send(mail_stack, stranger, dana.email, subject, "question\n")
    wait_for(lambda: inbox(mail_stack, dana, subject))  # the original is kept
    [reply] = wait_for(lambda: with_subject(sink_messages(mail_stack, stranger), "Away"))
    assert reply["Auto-Submitted"].startswith("auto-replied")
    assert reply["Return-Path"] == "<>"
    assert "Back on Monday." in reply.get_content()
    assert script.with_suffix(".svbin").exists()  # compiled next to the script, as user mail


def test_a_mailbox_without_sieve_script_has_none(mail_stack: Stack) -> None:
    """sieve NULL in the userdb: plain delivery, no reply to anyone."""
    domain = unique_domain("plain")
    erin = Box(f"erin@{domain}", "erin-secret-1")
    put_domain(mail_stack, domain, [erin])
    sender = f"sender-{uuid.uuid4().hex[:6]}@{EXTERNAL}"
    subject = unique_subject("plain")
    send(mail_stack, sender, erin.email, subject, "hi\n")
    wait_for(lambda: inbox(mail_stack, erin, subject))
    assert sink_messages(mail_stack, sender) == []


def test_a_new_domain_receives_mail_after_postfix_reload(mail_stack: Stack) -> None:
    domain = unique_domain("new")
    frank = Box(f"frank@{domain}", "frank-secret-1")

    # not ours yet: a loopback client may relay, so it goes out (to the sink)
    before = unique_subject("before")
    send(mail_stack, f"client@{EXTERNAL}", frank.email, before, "too early\n")
    wait_for(lambda: with_subject(sink_messages(mail_stack, frank.email), before))

    put_domain(mail_stack, domain, [frank])
    postfix_reload(mail_stack.config)
    after = unique_subject("after")
    send(mail_stack, f"client@{EXTERNAL}", frank.email, after, "welcome\n")
    wait_for(lambda: inbox(mail_stack, frank, after))
    assert with_subject(sink_messages(mail_stack, frank.email), after) == []


def test_submission_needs_a_login_and_its_own_sender_address(mail_stack: Stack) -> None:
    domain = unique_domain("submit")
    gina = Box(f"gina@{domain}", "gina-secret-1")
    mute = Box(f"mute@{domain}", "mute-secret-1", allow_smtp=0)
    put_domain(mail_stack, domain, [gina, mute])
    port = mail_stack.config.submission_port
    outside = f"reader-{uuid.uuid4().hex[:6]}@{EXTERNAL}"

    subject = unique_subject("submitted")
    send(mail_stack, gina.email, outside, subject, "sent by gina\n", port=port, login=(gina.email, gina.password))
    wait_for(lambda: with_subject(sink_messages(mail_stack, outside), subject))

    with pytest.raises(SMTPRefused) as refused:  # not her address
        send(mail_stack, mute.email, outside, unique_subject("forged"), "x\n", port=port,
             login=(gina.email, gina.password))
    assert (refused.value.stage, refused.value.code) == ("RCPT", 553)
    with pytest.raises(SMTPRefused) as refused:  # no login at all
        send(mail_stack, gina.email, outside, unique_subject("anonymous"), "x\n", port=port)
    assert refused.value.code == 554
    with pytest.raises(smtplib.SMTPAuthenticationError):  # SMTP switched off for this mailbox
        send(mail_stack, mute.email, outside, unique_subject("mute"), "x\n", port=port,
             login=(mute.email, mute.password), source_ip=fresh_ip())


def test_mlmmj_list_through_the_pipe_transport(mail_stack: Stack) -> None:
    """list@domain -> alias domain--list@localhost.mlmmj -> transport mlmmj:domain/list; mlmmj sends
    to the subscribers through this stack's Postfix (control/smtpport)."""
    domain = unique_domain("lists")
    member = Box(f"member@{domain}", "member-secret-1")
    fan = f"fan-{uuid.uuid4().hex[:6]}@{EXTERNAL}"
    spool = mail_stack.config.mlmmj_root / domain
    spool.mkdir()
    # mlmmj-make-ml asks for the domain, the owner and the language of the texts
    subprocess.run(  # noqa: S603
        ["/usr/bin/mlmmj-make-ml", "-L", "news", "-s", str(spool)],
        input=f"{domain}\n{member.email}\nen\n", text=True, check=True, capture_output=True,
    )
    listdir = spool / "news"
    (listdir / "control" / "smtpport").write_text(f"{mail_stack.config.smtp_port}\n")  # not 25
    (listdir / "control" / "prefix").write_text("[news]\n")
    for subscriber in (member.email, fan):
        subprocess.run(  # noqa: S603
            ["/usr/bin/mlmmj-sub", "-L", str(listdir), "-a", subscriber, "-f", "-q", "-s"], check=True
        )
    owner = pwd.getpwnam("list")
    for path in [spool, *spool.rglob("*")]:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    relay = f"{domain}--news@localhost.mlmmj"
    put_domain(
        mail_stack, domain, [member],
        aliases={f"news@{domain}": relay}, transports={relay: f"mlmmj:{domain}/news"},
    )

    subject = unique_subject("issue 1")
    send(mail_stack, fan, f"news@{domain}", subject, "first issue\n")
    [post] = wait_for(lambda: with_subject(sink_messages(mail_stack, fan), f"[news] {subject}"))
    assert post["Return-Path"].startswith("<news+bounces-")  # sent by mlmmj, bounces come back to it
    wait_for(lambda: with_subject(pop3_messages(mail_stack, member.email, member.password), f"[news] {subject}"))
