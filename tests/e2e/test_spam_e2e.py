"""Spam filtering with real mail: the domain's settings set in the panel reach the stack's rspamd
(the settings map the agent writes, read again by rspamd when it changes: no restart) and
Dovecot's Junk rule; messages sent to port 25 from 127.0.0.1 are scanned as they come in."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from hosting.models import Domain
from mail.services import spam_filter_set
from mailhost.stack import rspamd
from mailhost.stack.config import HOST
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import SMTPRefused, imap_login, imap_subjects, send, wait_for

pytestmark = pytest.mark.e2e

CAPS = " FREE MONEY NOW CLAIM TODAY"  # a subject in capitals: SUBJ_ALL_CAPS (about 2 points)
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def rspamd_read_settings(e2e: E2E, line: str) -> None:
    """Wait until the agent's settings map holds `line` and rspamd has read it since its change."""
    path: Path = e2e.stack.config.spam_root / "settings.conf"
    wait_for(lambda: path.exists() and line in path.read_text(), timeout=15)
    log = rspamd.log_file(e2e.stack.config)

    def read_since_change() -> bool:
        text = log.read_text(errors="replace")
        changed = text.rfind(f"new mtime is {int(path.stat().st_mtime)} ")
        return changed >= 0 and f"rereading map file {path}\n" in text[changed:]

    wait_for(read_since_change, timeout=30)


def filtered(e2e: E2E, domain: Domain, mode: str, **lists: list[str]) -> None:
    spam_filter_set(domain=domain, mode=mode, score="5", allow=lists.get("allow", []),
                    block=lists.get("block", []), acting_user=e2e.operator)
    domain.refresh_from_db()
    e2e.wait_applied(domain)
    rspamd_read_settings(e2e, f'rcpt = "@{domain.name}";')


def send_spam(e2e: E2E, mail_from: str, rcpt: str, subject: str) -> None:
    """A message rspamd's own rules score as spam (no Message-ID, Date or To; a subject in capitals;
    HTML only, a link to a bare IP address): rspamd 3.4's GTUBE is refused whatever the settings
    (a "passthrough" reject), so the modes other than reject are proven by real scoring."""
    raw = (f"From: WINNER <{mail_from}>\r\nSubject: {subject}{CAPS}\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/html; charset=utf-8\r\n\r\n"
           '<html><body><p>CLICK <a href="http://192.0.2.7/win">HERE</a> TO CLAIM YOUR PRIZE!!!</p>'
           "</body></html>\r\n").encode()
    with smtplib.SMTP(HOST, e2e.stack.config.smtp_port, "client.test", timeout=30) as smtp:
        smtp.sendmail(mail_from, [rcpt], raw)


def test_junk_mode_files_spam_in_junk_and_clean_mail_in_inbox(e2e: E2E) -> None:
    domain = e2e.domain("junk")
    e2e.mailbox(domain, "carol")
    filtered(e2e, domain, "junk", allow=["friend@good.test"])
    address = f"carol@{domain.name}"
    send_spam(e2e, "spammer@elsewhere.test", address, "CHEAP PILLS")
    send(e2e.stack, "colleague@elsewhere.test", address, "meeting at ten", "See you at ten.\n")
    # GTUBE is refused whatever the domain's mode: rspamd 3.4 makes it a reject of its own.
    with pytest.raises(SMTPRefused, match="Gtube"):
        send(e2e.stack, "spammer@elsewhere.test", address, "gtube", f"{GTUBE}\n")
    wait_for(lambda: f"CHEAP PILLS{CAPS}" in imap_subjects(e2e.stack, address, PASSWORD, folder="Junk"), timeout=20)
    wait_for(lambda: "meeting at ten" in imap_subjects(e2e.stack, address, PASSWORD), timeout=20)
    assert imap_subjects(e2e.stack, address, PASSWORD) == ["meeting at ten"]
    # An allowed sender's spam is delivered as it is, in INBOX.
    send_spam(e2e, "friend@good.test", address, "CHEAP PILLZ")
    wait_for(lambda: f"CHEAP PILLZ{CAPS}" in imap_subjects(e2e.stack, address, PASSWORD), timeout=20)
    assert f"CHEAP PILLZ{CAPS}" not in imap_subjects(e2e.stack, address, PASSWORD, folder="Junk")
    # The Junk folder is subscribed (mail clients show it: "Indésirables" in French ones).
    imap = imap_login(e2e.stack, address, PASSWORD)
    try:
        _status, folders = imap.lsub()
    finally:
        imap.logout()
    assert any(b"Junk" in line for line in folders if isinstance(line, bytes))


def test_reject_mode_refuses_spam_and_blocked_senders_at_smtp(e2e: E2E) -> None:
    domain = e2e.domain("refuse")
    e2e.mailbox(domain, "dave")
    filtered(e2e, domain, "reject", block=["bad.test"])
    address = f"dave@{domain.name}"
    with pytest.raises(SMTPRefused) as refused:
        send(e2e.stack, "spammer@elsewhere.test", address, "cheap pills", f"Buy now.\n{GTUBE}\n")
    assert 500 <= refused.value.code < 600
    with pytest.raises(smtplib.SMTPDataError):
        send_spam(e2e, "spammer@elsewhere.test", address, "CHEAP PILLS")  # refused from its score
    with pytest.raises(SMTPRefused) as blocked:
        send(e2e.stack, "someone@bad.test", address, "hello", "A clean message from a blocked domain.\n")
    assert 500 <= blocked.value.code < 600
    send(e2e.stack, "colleague@elsewhere.test", address, "clean", "A clean message.\n")
    wait_for(lambda: "clean" in imap_subjects(e2e.stack, address, PASSWORD), timeout=20)
    assert imap_subjects(e2e.stack, address, PASSWORD) == ["clean"]


def test_mark_mode_rewrites_the_subject(e2e: E2E) -> None:
    domain = e2e.domain("mark")
    e2e.mailbox(domain, "erin")
    filtered(e2e, domain, "mark")
    address = f"erin@{domain.name}"
    send_spam(e2e, "spammer@elsewhere.test", address, "CHEAP PILLS")
    wait_for(lambda: f"***SPAM*** CHEAP PILLS{CAPS}" in imap_subjects(e2e.stack, address, PASSWORD), timeout=20)
