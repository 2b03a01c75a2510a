"""Small stdlib clients for the end-to-end tests against the loopback mail stack.

Every client can bind its socket to a chosen 127.x.y.z source address: Dovecot penalises an IP
for seconds after a failed login (anvil, not lifted by login_trusted_networks), so a test that
fails a login on purpose does it from an address of its own (`fresh_ip()`).
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import itertools
import poplib
import smtplib
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from email.message import EmailMessage
from email.utils import formatdate
from typing import TypeVar

from mailhost.stack import HOST, Stack, sink_dirname

T = TypeVar("T")
TIMEOUT = 10.0
CLIENT_NAME = "client.test"  # our EHLO name: smtplib would otherwise resolve the machine's FQDN

_ips = (f"127.0.{a}.{b}" for a, b in itertools.product(range(10, 255), range(1, 255)))


def fresh_ip() -> str:
    """A loopback source address no other test of this session has used."""
    return next(_ips)


class SMTPRefused(smtplib.SMTPException):
    """The server refused the message at some stage; `code` is the first SMTP reply code."""

    def __init__(self, stage: str, code: int, text: str, recipients: dict[str, tuple[int, bytes]] | None = None):
        self.stage = stage
        self.code = code
        self.text = text
        self.recipients = recipients or {}
        super().__init__(f"{stage} refused: {code} {text}")


def make_message(
    mail_from: str, rcpt_tos: Iterable[str], subject: str, body: str, headers: dict[str, str] | None = None
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = mail_from or "mailer-daemon@elsewhere.test"
    msg["To"] = ", ".join(rcpt_tos)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@client.test>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg


def send(
    stack: Stack,
    mail_from: str,
    rcpt_tos: str | Iterable[str],
    subject: str,
    body: str,
    source_ip: str = HOST,
    *,
    headers: dict[str, str] | None = None,
    port: int | None = None,
    login: tuple[str, str] | None = None,
) -> dict[str, tuple[int, bytes]]:
    """Send one message by SMTP (port 25's stand-in unless `port`, e.g. submission with `login`).

    smtplib announces SIZE, so Postfix can refuse an over-quota recipient at RCPT. Returns
    smtplib's result (the refused recipients: {} when all were accepted); raises SMTPRefused
    with the SMTP code when the sender, any recipient or the data is refused.
    """
    rcpts = [rcpt_tos] if isinstance(rcpt_tos, str) else list(rcpt_tos)
    msg = make_message(mail_from, rcpts, subject, body, headers)
    with smtplib.SMTP(
        HOST, port or stack.config.smtp_port, CLIENT_NAME, timeout=TIMEOUT, source_address=(source_ip, 0)
    ) as smtp:
        if login is not None:
            # One AUTH PLAIN only: smtplib's login() would retry a refused login with LOGIN, and
            # Dovecot's per-IP penalty would then delay that second try by seconds.
            smtp.ehlo_or_helo_if_needed()
            smtp.user, smtp.password = login
            smtp.auth("PLAIN", smtp.auth_plain)
        try:
            refused = smtp.sendmail(mail_from, rcpts, msg.as_bytes())
        except smtplib.SMTPSenderRefused as exc:
            raise SMTPRefused("MAIL", exc.smtp_code, exc.smtp_error.decode(errors="replace")) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise SMTPRefused("RCPT", code, text.decode(errors="replace"), exc.recipients) from exc
        except smtplib.SMTPDataError as exc:
            raise SMTPRefused("DATA", exc.smtp_code, exc.smtp_error.decode(errors="replace")) from exc
    if refused:
        code, text = next(iter(refused.values()))
        raise SMTPRefused("RCPT", code, text.decode(errors="replace"), refused)
    return refused


class _POP3From(poplib.POP3):
    def __init__(self, host: str, port: int, source_ip: str, timeout: float = TIMEOUT):
        self._source_ip = source_ip
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout: float) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout, source_address=(self._source_ip, 0))


class _IMAPFrom(imaplib.IMAP4):
    def __init__(self, host: str, port: int, source_ip: str, timeout: float = TIMEOUT):
        self._source_ip = source_ip
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout, source_address=(self._source_ip, 0))


def _parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def pop3_messages(stack: Stack, user: str, password: str, source_ip: str = HOST) -> list[EmailMessage]:
    """Every message in the POP3 mailbox (left there). A refused login raises poplib.error_proto."""
    pop = _POP3From(HOST, stack.config.pop3_port, source_ip)
    try:
        pop.user(user)
        pop.pass_(password)
        count = len(pop.list()[1])
        return [_parse(b"\r\n".join(pop.retr(i)[1])) for i in range(1, count + 1)]
    finally:
        try:
            pop.quit()
        except (poplib.error_proto, OSError):
            pop.close()


def imap_login(stack: Stack, user: str, password: str, source_ip: str = HOST) -> imaplib.IMAP4:
    """A logged-in IMAP connection (the caller logs out). A refused login raises imaplib.IMAP4.error."""
    imap = _IMAPFrom(HOST, stack.config.imap_port, source_ip)
    try:
        imap.login(user, password)
    except BaseException:
        imap.shutdown()
        raise
    return imap


def imap_subjects(stack: Stack, user: str, password: str, source_ip: str = HOST, folder: str = "INBOX") -> list[str]:
    imap = imap_login(stack, user, password, source_ip)
    try:
        imap.select(folder, readonly=True)
        _typ, data = imap.search(None, "ALL")
        subjects = []
        for num in data[0].split():
            _typ, parts = imap.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects.append(str(_parse(parts[0][1]).get("Subject", "")))  # type: ignore[index]
        return subjects
    finally:
        imap.logout()


def sink_messages(stack: Stack, address: str) -> list[EmailMessage]:
    """The messages the stack 'sent out' to an external address, oldest first."""
    folder = stack.config.sink_root / sink_dirname(address)
    if not folder.is_dir():
        return []
    return [_parse(path.read_bytes()) for path in sorted(folder.glob("*.eml"))]


def wait_for(predicate: Callable[[], T], timeout: float = 10, interval: float = 0.05) -> T:
    """Call `predicate` until it returns something truthy, and return that; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {getattr(predicate, '__name__', predicate)}")
        time.sleep(interval)


def with_subject(messages: list[EmailMessage], subject: str) -> list[EmailMessage]:
    return [m for m in messages if str(m.get("Subject", "")) == subject]
