"""Every member mlmmj holds is one the panel shows and can remove (issue 15, item 5), by real mail.

Subscribing by mail as `o'brien@`, `spy!x@`, `%spy@` (addresses mlmmj takes and the panel refuses)
is refused at the door by the list pipe, with a bounce that says why (in the list's language); a member the panel cannot
hold that is already in mlmmj's files (subscribed before) is removed by the host and reported;
`list+subscribe-nomail@` makes a member the panel shows as "without mail" and removes. At the end
mlmmj's files (subscribers.d, digesters.d, nomailsubs.d) hold exactly the panel's rows."""

from __future__ import annotations

import smtplib
import subprocess
import uuid
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

import pytest
from celery import current_app

from lists.models import ListMember, MailingList
from lists.services import list_create, list_member_remove
from mailhost import contract
from mailhost.list_members import FOLDERS, read_members
from mailhost.lists import MLMMJ
from mailhost.stack import HOST
from tests.e2e.conftest import E2E
from tests.e2e.mailclient import CLIENT_NAME, send, sink_messages, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
TIMEOUT = 30
HOSTILE = ["o'brien@outside.test", "spy!x@outside.test", "%spy@outside.test"]


def send_as(e2e: E2E, envelope: str, from_header: str, to: str, subject: str = "subscribe") -> None:
    """A message whose From: (what mlmmj subscribes) is not its envelope sender (where a bounce goes)."""
    msg = EmailMessage()
    msg["From"] = from_header
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@client.test>"
    msg.set_content("please")
    with smtplib.SMTP(HOST, e2e.stack.config.smtp_port, CLIENT_NAME, timeout=10) as smtp:
        smtp.sendmail(envelope, [to], msg.as_bytes())


def panel_rows(mailing_list: MailingList, kind: str) -> set[str]:
    return set(ListMember.objects.filter(mailing_list=mailing_list, kind=kind).values_list("address", flat=True))


def files_and_panel(path: Path, mailing_list: MailingList) -> dict[str, tuple[set[str], set[str]]]:
    return {kind: (read_members(path, kind), panel_rows(mailing_list, kind)) for kind in FOLDERS}


def in_step(path: Path, mailing_list: MailingList) -> bool:
    return all(files == panel for files, panel in files_and_panel(path, mailing_list).values())


def maintain(e2e: E2E) -> None:
    current_app.send_task(contract.MAINTAIN, queue=e2e.host.queue)  # what the agent's beat runs


def confirm_if_asked(e2e: E2E, address: str) -> None:
    """Reply to mlmmj's confirmation to `address`, as a subscriber does, when one came."""
    for message in sink_messages(e2e.stack, address):
        reply_to = str(message.get("Reply-To", ""))
        if "+confsub" in reply_to:
            send_as(e2e, address, address, reply_to, "yes")


def test_every_member_mlmmj_holds_is_one_the_panel_shows_and_removes(e2e: E2E) -> None:
    domain = e2e.domain("door")
    d = domain.name
    e2e.mailbox(domain, "owner")
    club = list_create(domain=domain, name="club", owner=f"owner@{d}", digest=True, acting_user=e2e.operator)
    e2e.wait_applied(domain)
    path = e2e.stack.config.mlmmj_root / d / "club"
    # Subscribed before the door: mlmmj-sub itself, as list+subscribe@ ran it.
    subprocess.run([str(MLMMJ / "mlmmj-sub"), "-L", str(path), "-a", "old'timer@outside.test", "-f", "-q", "-s"],
                   check=True, capture_output=True)

    # The hostile addresses, by each way in: mlmmj's +subscribe, ezmlm's -subscribe, -request, digest, nomail.
    ways = [f"club+subscribe@{d}", f"club-subscribe@{d}", f"club-request@{d}", f"club+subscribe-digest@{d}",
            f"club+subscribe-nomail@{d}", f"club+subscribe-both@{d}"]
    for n, (hostile, to) in enumerate(zip(HOSTILE * 2, ways, strict=True)):
        send_as(e2e, f"prober{n}@outside.test", hostile, to)
    send_as(e2e, "prober9@outside.test", f"Quiet <quiet@outside.test>, {HOSTILE[0]}", f"club+subscribe@{d}")
    # A member without mail (may post, gets no mail): shown in the panel as such.
    send(e2e.stack, "quiet@outside.test", f"club+subscribe-nomail@{d}", "x", "")
    quiet_confirmation = wait_for(lambda: [m for m in sink_messages(e2e.stack, "quiet@outside.test")
                                           if "+confsub" in str(m.get("Reply-To", ""))], timeout=TIMEOUT)[0]
    send(e2e.stack, "quiet@outside.test", str(quiet_confirmation["Reply-To"]), "oui", "")

    # Each hostile request bounces to its sender with the reason; mlmmj never saw it.
    for n in [*range(len(ways)), 9]:
        bounce = wait_for(lambda n=n: sink_messages(e2e.stack, f"prober{n}@outside.test"), timeout=TIMEOUT)[0]
        reason = " ".join(bounce.as_string().split())
        assert "ne peut pas etre abonnee" in reason, reason[:3000]  # in the list's language
    for hostile in HOSTILE:  # (on the code before the door, mlmmj asked them to confirm: they do)
        confirm_if_asked(e2e, hostile)
    wait_for(lambda: "quiet@outside.test" in read_members(path, "nomail"), timeout=TIMEOUT)

    maintain(e2e)  # the agent reports what changed by mail
    wait_for(lambda: panel_rows(club, "nomail") == {"quiet@outside.test"}, timeout=TIMEOUT)
    e2e.wait_applied(domain)
    wait_for(lambda: in_step(path, club), timeout=TIMEOUT)
    assert files_and_panel(path, club) == {
        "subscriber": ({f"owner@{d}"}, {f"owner@{d}"}), "digest": (set(), set()),
        "nomail": ({"quiet@outside.test"}, {"quiet@outside.test"}),
    }
    listed = subprocess.run([str(MLMMJ / "mlmmj-list"), "-L", str(path), "-n"], check=True, capture_output=True,
                            text=True).stdout.split()
    assert listed == ["quiet@outside.test"]  # mlmmj's own reading agrees

    # The panel removes it; the host follows.
    list_member_remove(mailing_list=club, address="quiet@outside.test", kind="nomail", acting_user=e2e.operator)
    e2e.wait_applied(domain)
    assert read_members(path, "nomail") == set() and in_step(path, club)
