"""The seed's robot on the real stack: made through the services, answering real mail through the
real Postfix and Dovecot (Sieve), with French text correctly encoded (QmailAdmin sent it raw).

What the sender gets is read from the sink, as the bytes Postfix delivered: every header line is
ASCII, the Subject an RFC 2047 encoded word that decodes to the French text, the body UTF-8 with
its charset declared. One reply per sender within the robot's limit; the copy goes to the
domain's mailbox; after `robot_update` the next reply carries the new text. Text that would break
a Sieve script or a header arrives literally, or is refused by the service.
"""

from __future__ import annotations

import email
import email.policy
import re
import secrets
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from mail.models import Robot
from mail.services import robot_create, robot_update
from mailhost.stack import Stack, sink_dirname
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import pop3_messages, send, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SUBJECT = "Mail bien reçu"  # the seed's, its "reçus" spelled right
MESSAGE = (
    "Bonjour,\n\n"
    "Votre demande est en cours de traitement, merci de bien vouloir patienter : nous vous contacterons "
    "dans les plus brefs délais.\n\n"
    "Cordialement.\n« L'équipe commerciale — été 2026 »"
)
ENCODED_WORD = re.compile(rb"=\?utf-8\?[qb]\?", re.IGNORECASE)


def sender(label: str) -> str:
    """An outside address no other test of the session writes from (the sink is shared)."""
    return f"{label}-{secrets.token_hex(3)}@outside.test"


def sink_raw(stack: Stack, address: str) -> list[bytes]:
    """The bytes of each message the stack sent out to `address`, oldest first."""
    folder = stack.config.sink_root / sink_dirname(address)
    return [path.read_bytes() for path in sorted(folder.glob("*.eml"))] if folder.is_dir() else []


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def head_and_body(raw: bytes) -> tuple[bytes, bytes]:
    raw = raw.replace(b"\r\n", b"\n")
    head, _blank, body = raw.partition(b"\n\n")
    return head, body


def subjects(e2e: E2E, address: str) -> list[str]:
    return [str(m["Subject"]) for m in pop3_messages(e2e.stack, address, PASSWORD)]


def stays(predicate: Callable[[], Any], seconds: float = 2.0) -> bool:
    """Whether `predicate` stays true for `seconds` (what must not happen does not, given time)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(0.1)
    return True


def the_reply(e2e: E2E, to: str) -> tuple[bytes, EmailMessage]:
    [raw] = wait_for(lambda: sink_raw(e2e.stack, to), timeout=30)
    return raw, parse(raw)


def assert_well_encoded(raw: bytes, reply: EmailMessage, *, subject: str, message: str, robot: str, to: str) -> None:
    """The reply as the sender's mail program reads it: ASCII headers, the Subject an RFC 2047
    encoded word when it is not ASCII, the body in UTF-8 with its charset declared."""
    head, body = head_and_body(raw)
    assert head.isascii(), head
    raw_subject = re.search(rb"^Subject:(.*(?:\n[ \t].*)*)", head, re.MULTILINE)
    assert raw_subject is not None
    if not subject.isascii():
        assert ENCODED_WORD.search(raw_subject.group(1)), raw_subject.group(1)
    assert str(reply["Subject"]) == subject
    assert len(reply.get_all("Subject") or []) == 1
    assert reply.get_content_type() == "text/plain"
    assert reply.get_content_charset() == "utf-8"
    assert str(reply["Auto-Submitted"]).startswith("auto-replied")
    assert reply["From"].addresses[0].addr_spec == robot
    assert reply["To"].addresses[0].addr_spec == to
    cte = str(reply.get("Content-Transfer-Encoding", "7bit")).lower()
    if cte in ("8bit", "7bit", "binary"):
        assert body.decode("utf-8").rstrip("\n") == message  # the bytes are UTF-8 as sent
    assert reply.get_content().replace("\r\n", "\n").rstrip("\n") == message


def test_the_seeds_robot_answers_in_french_once_per_sender_and_copies(e2e: E2E) -> None:
    domain = e2e.domain("robot")
    e2e.mailbox(domain, "commercial")
    robot = robot_create(domain=domain, local_part="robot", subject=SUBJECT, message=MESSAGE,
                         copy_to=f"commercial@{domain.name}", acting_user=e2e.operator)
    assert robot.reply_hours == 24
    e2e.wait_applied(domain)
    address, copy = f"robot@{domain.name}", f"commercial@{domain.name}"

    first = sender("client")
    send(e2e.stack, first, address, "Demande de devis", "Bonjour, quel est votre tarif ?")
    raw, reply = the_reply(e2e, first)
    assert_well_encoded(raw, reply, subject=SUBJECT, message=MESSAGE, robot=address, to=first)
    wait_for(lambda: "Demande de devis" in subjects(e2e, copy), timeout=30)  # the copy arrives

    # The same sender again, within the day: the copy goes on, no second reply.
    send(e2e.stack, first, address, "Relance", "Avez-vous reçu ma demande ?")
    wait_for(lambda: "Relance" in subjects(e2e, copy), timeout=30)
    # Another sender does get the reply; by then the first sender's second one would be there.
    second = sender("prospect")
    send(e2e.stack, second, address, "Question", "Bonjour")
    assert_well_encoded(*the_reply(e2e, second), subject=SUBJECT, message=MESSAGE, robot=address, to=second)
    assert stays(lambda: len(sink_raw(e2e.stack, first)) == 1)

    # A new message: the next reply carries it.
    new_message = "Bonjour,\nNos bureaux sont fermés jusqu'au 2 janvier ; nous répondrons à la rentrée.\n— L'équipe"
    robot_update(robot=robot, subject="Bien reçu, merci !", message=new_message, copy_to=robot.copy_to,
                 reply_hours=robot.reply_hours, acting_user=e2e.operator)
    e2e.wait_applied(domain)
    third = sender("nouveau")
    send(e2e.stack, third, address, "Commande", "Bonjour")
    assert_well_encoded(*the_reply(e2e, third), subject="Bien reçu, merci !", message=new_message,
                        robot=address, to=third)
    wait_for(lambda: "Commande" in subjects(e2e, copy), timeout=30)
    assert stays(lambda: len(sink_raw(e2e.stack, third)) == 1, seconds=1)


HOSTILE_SUBJECT = 'Re\\çu "ok"; discard; "\\'
HOSTILE_MESSAGE = (
    'Ligne 1 "; discard; keep; "\r\n'  # a Sieve string closed early, then commands
    "Subject: injecté\r\n"  # header lines, as if the body could reach the head
    "Bcc: victim@outside.test\r\n"
    "\r\n"
    'Citation : \\"fin\\" \\\\ et \\\n'  # backslashes, escaped quotes, a final backslash before a break
    ".\n"  # SMTP's end of data, alone on its line
    "Fin."
)


def test_sieve_and_header_breaking_text_is_refused_or_arrives_literally(e2e: E2E) -> None:
    domain = e2e.domain("hostile")
    e2e.mailbox(domain, "commercial")
    copy = f"commercial@{domain.name}"
    for subject in ("Mail\r\nBcc: victim@outside.test", "Mail\nBcc: victim@outside.test", "Mail\rreçu"):
        with pytest.raises(ValidationError) as refused:
            robot_create(domain=domain, local_part="robot", subject=subject, message="m", copy_to=copy,
                         acting_user=e2e.operator)
        assert refused.value.code == "invalid"
    assert not Robot.objects.filter(domain=domain).exists()

    robot = robot_create(domain=domain, local_part="robot", subject=HOSTILE_SUBJECT, message=HOSTILE_MESSAGE,
                         copy_to=copy, acting_user=e2e.operator)
    stored = HOSTILE_MESSAGE.replace("\r\n", "\n")  # the panel keeps line breaks as LF
    assert robot.message == stored
    e2e.wait_applied(domain)
    address, writer = f"robot@{domain.name}", sender("curieux")
    send(e2e.stack, writer, address, "Essai", "Bonjour")
    raw, reply = the_reply(e2e, writer)
    assert_well_encoded(raw, reply, subject=HOSTILE_SUBJECT, message=stored, robot=address, to=writer)
    assert reply.get("Bcc") is None
    # The script was not broken: the copy went on (no injected discard) and nothing was kept.
    wait_for(lambda: "Essai" in subjects(e2e, copy), timeout=30)
    home = e2e.stack.config.vmail_root / domain.name / "robot" / "Maildir"
    kept = [p for sub in ("new", "cur") for p in (home / sub).glob("*")] if home.exists() else []
    assert kept == []
    assert sink_raw(e2e.stack, "victim@outside.test") == []
