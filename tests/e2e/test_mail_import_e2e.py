"""An old vpopmail server's Maildir++ brought into mailboxes of the panel, on the real stack.

The old tree is tests/vpopmail_tree.py's (René's mailbox: INBOX in new/ and cur/ with flags,
.Sent, .Archives.2019, Courier's subscriptions, mtimes as received dates), copied under the
agent's import root (ROOT/old). The panel asks (hostlink.mailimport), the agent copies through
doveadm (mailhost.mailimport) and reports; everything is then read back over IMAP and POP3: each
message byte for byte, its flags, its folder, its INTERNALDATE, the subscriptions. A second run
copies nothing; a message added to the old Maildir afterwards is the only one a third run copies;
a message delivered to the new mailbox meanwhile survives them all; the old tree is never written.
"""

from __future__ import annotations

import imaplib
import os
import re
import secrets
import time
from pathlib import Path

import pytest

from hosting.models import Domain
from hostlink.mailimport import request_mail_import
from mailhost.stack import Stack
from provisioning.models import MailImport, MailImportState
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import imap_login, pop3_messages, send, wait_for
from tests.vpopmail_tree import Message, TreeMailbox, big_tree, build_tree

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def old_root(stack: Stack) -> Path:
    """A fresh folder under the agent's import root (its default: ROOT/old)."""
    root = stack.config.root / "old" / secrets.token_hex(4)
    root.mkdir(parents=True)
    return root


def run_import(domain: Domain, pairs: list[tuple[str, str]], timeout: float = 120) -> MailImport:
    item = request_mail_import(domain, pairs)
    wait_for(lambda: MailImport.objects.filter(pk=item.pk, state__in=[MailImportState.DONE,
                                                                      MailImportState.FAILED]).exists(),
             timeout=timeout, interval=0.1)
    item.refresh_from_db()
    assert item.state == MailImportState.DONE, item.error
    return item


def tree_state(root: Path) -> list[tuple[str, int, int, int]]:
    return sorted((str(p), p.lstat().st_mtime_ns, p.lstat().st_size, p.lstat().st_mode) for p in root.rglob("*"))


FETCHED = re.compile(rb"FLAGS \(([^)]*)\)")


def imap_folder(imap: imaplib.IMAP4, folder: str) -> list[tuple[bytes, set[str], int]]:
    """(the message as IMAP serves it, its flags but \\Recent, its INTERNALDATE) of each message."""
    typ, _data = imap.select(f'"{folder}"', readonly=True)
    assert typ == "OK", folder
    typ, data = imap.uid("FETCH", "1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
    found = []
    for item in data:
        if not isinstance(item, tuple):
            continue
        head, body = item
        flags = FETCHED.search(head)
        internaldate = imaplib.Internaldate2tuple(head)
        assert flags and internaldate, head
        found.append((body, set(flags.group(1).decode().split()) - {"\\Recent"}, int(time.mktime(internaldate))))
    return found


def as_imap(message: Message) -> tuple[bytes, set[str], int]:
    """What IMAP must serve for an old message: its bytes (lines ending CRLF on the wire)."""
    return message.data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), message.imap_flags, message.received


def new_maildir(stack: Stack, address: str) -> Path:
    local, domain = address.split("@")
    return stack.config.vmail_root / domain / local / "Maildir"


def test_an_old_maildir_comes_in_whole_once_and_only_what_is_new_comes_again(e2e: E2E) -> None:
    root = old_root(e2e.stack)
    tree = build_tree(root)
    rene: TreeMailbox = tree.mailboxes["rene@exemple.fr"]
    # A folder whose name is not ASCII: "Reçus", in modified UTF-7 as Courier writes it, subscribed.
    data = b"From: client2@example.net\nTo: rene@exemple.fr\nSubject: Re\xe7u\n\nUn re\xe7u.\n"
    received = 1548000000
    name = f"{received}.M77P77.oldmail.example,S={len(data)}:2,FS"
    folder = rene.maildir / ".Re&AOc-us"
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True)
    (folder / "cur" / name).write_bytes(data)
    os.utime(folder / "cur" / name, (received, received))
    rene.messages.append(Message("Re&AOc-us", "cur", name, "FS", data, received))
    with (rene.maildir / "courierimapsubscribed").open("a") as subscriptions:
        subscriptions.write("INBOX.Re&AOc-us\n")
    domain = e2e.domain("imp")
    address = f"rene@{domain.name}"
    e2e.mailbox(domain, "rene")
    e2e.wait_applied(domain)
    send(e2e.stack, "sender@outside.test", address, "on the new host", "delivered before the import")
    wait_for(lambda: len(pop3_messages(e2e.stack, address, PASSWORD)) == 1)
    before = tree_state(root)

    started = time.monotonic()
    first = run_import(domain, [(address, str(rene.maildir))])
    seconds = time.monotonic() - started
    (result,) = first.results
    assert (result["copied"], result["present"]) == (len(rene.messages), 0)
    assert result["folders"] == ["INBOX", "Archives.2019", "Reçus", "Sent"]
    assert result["subscribed"] == ["Sent", "Archives.2019", "Reçus"]
    assert tree_state(root) == before  # the old tree: not one byte, date or mode changed

    # Each message in its folder, byte for byte (on disk and over IMAP), its flags, its date.
    expected: dict[str, list[tuple[bytes, set[str], int]]] = {}
    for message in rene.messages:
        expected.setdefault(message.folder, []).append(as_imap(message))
        copied = list((new_maildir(e2e.stack, address) / ("" if message.folder == "INBOX" else f".{message.folder}")
                       ).glob(f"*/{message.name.split(':')[0]}*"))
        assert [path.read_bytes() for path in copied] == [message.data]
        assert copied[0].stat().st_mtime == message.received
    imap = imap_login(e2e.stack, address, PASSWORD)
    try:
        for folder, messages in expected.items():
            found = imap_folder(imap, folder)
            if folder == "INBOX":
                ours = [m for m in found if b"on the new host" in m[0]]
                assert len(ours) == 1  # the new host's own mail, kept
                found = [m for m in found if m not in ours]
            assert sorted(found, key=lambda m: m[2]) == sorted(messages, key=lambda m: m[2]), folder
        _typ, listed = imap.lsub('""', "*")
        subscribed = {line.decode().rsplit(" ", 1)[-1].strip('"') for line in listed if line}
        assert subscribed >= {"Sent", "Archives.2019", "Re&AOc-us"}  # IMAP's modified UTF-7
        _typ, listed = imap.list('""', "*")
        assert any(line.decode().endswith('"." Archives.2019') or line.decode().endswith(". Archives.2019")
                   for line in listed if line), listed
    finally:
        imap.logout()
    inbox = [m for m in rene.messages if m.folder == "INBOX"]
    pop = sorted(str(m["Subject"]) for m in pop3_messages(e2e.stack, address, PASSWORD))
    assert len(pop) == len(inbox) + 1 and "on the new host" in pop

    # A second run: nothing new.
    second = run_import(domain, [(address, str(rene.maildir))])
    assert [(r["copied"], r["present"]) for r in second.results] == [(0, len(rene.messages))]
    # The agent's record lost (a crash between the copy and the record): the mailbox's GUIDs say
    # what is there, nothing comes twice.
    record = e2e.stack.config.root / "import" / domain.name / "rene" / "imported"
    assert len(record.read_text().splitlines()) == len(rene.messages)
    record.unlink()
    again = run_import(domain, [(address, str(rene.maildir))])
    assert [(r["copied"], r["present"]) for r in again.results] == [(0, len(rene.messages))]
    # A message deleted on the new host after its import does not come back (the record).
    imap = imap_login(e2e.stack, address, PASSWORD)
    try:
        imap.select('"Sent"')
        imap.store(b"1", "+FLAGS", "\\Deleted")
        imap.expunge()
    finally:
        imap.logout()
    after_delete = run_import(domain, [(address, str(rene.maildir))])
    assert [(r["copied"], r["present"]) for r in after_delete.results] == [(0, len(rene.messages))]
    imap = imap_login(e2e.stack, address, PASSWORD)
    try:
        assert imap_folder(imap, "Sent") == []
    finally:
        imap.logout()

    # New mail on the old server, and on the new host: a third run brings the old one only.
    received = 1577872800  # 2020-01-01
    data = b"From: late@example.net\nTo: rene@exemple.fr\nSubject: Arrived late\n\nStill on the old server.\n"
    late = rene.maildir / "new" / f"{received}.M99P99.oldmail.example,S={len(data)}"
    late.write_bytes(data)
    os.utime(late, (received, received))
    send(e2e.stack, "sender@outside.test", address, "also on the new host", "delivered between the runs")
    wait_for(lambda: len(pop3_messages(e2e.stack, address, PASSWORD)) == len(inbox) + 2)
    third = run_import(domain, [(address, str(rene.maildir))])
    assert [(r["copied"], r["present"]) for r in third.results] == [(1, len(rene.messages))]
    imap = imap_login(e2e.stack, address, PASSWORD)
    try:  # before POP3 reads it (which marks it seen)
        assert (data.replace(b"\n", b"\r\n"), set(), received) in imap_folder(imap, "INBOX")
    finally:
        imap.logout()
    subjects = sorted(str(m["Subject"]) for m in pop3_messages(e2e.stack, address, PASSWORD))
    expected_subjects = sorted([*(str(m.data.split(b"Subject: ")[1].split(b"\n")[0], "latin-1") for m in inbox),
                                "on the new host", "also on the new host", "Arrived late"])
    assert subjects == expected_subjects  # nothing lost, nothing twice
    print(f"\nmail import: {len(rene.messages)} messages in {len(result['folders'])} folders in "
          f"{seconds:.2f} s (request to report); second run {second.seconds:.2f} s, third {third.seconds:.2f} s")


def test_a_bad_mailbox_is_reported_and_the_others_come_in(e2e: E2E) -> None:
    root = old_root(e2e.stack)
    tree = build_tree(root)
    marie = tree.mailboxes["marie@exemple.fr"]
    domain = e2e.domain("bad")
    for local in ("marie", "other", "escape"):
        e2e.mailbox(domain, local)
    e2e.wait_applied(domain)
    (root / "link").symlink_to("/etc")
    item = request_mail_import(domain, [(f"marie@{domain.name}", str(marie.maildir)),
                                        (f"other@{domain.name}", str(root / "no-such-Maildir")),
                                        (f"escape@{domain.name}", str(root / "link"))])
    wait_for(lambda: MailImport.objects.filter(pk=item.pk, state=MailImportState.FAILED).exists(), timeout=60)
    item.refresh_from_db()
    assert [r["copied"] for r in item.results] == [len(marie.messages), 0, 0]
    errors = item.errors()
    assert set(errors) == {f"other@{domain.name}", f"escape@{domain.name}"}
    assert "No such file" in errors[f"other@{domain.name}"]
    assert "outside the import root" in errors[f"escape@{domain.name}"]
    assert len(pop3_messages(e2e.stack, f"marie@{domain.name}", PASSWORD)) == len(marie.messages)


def test_time_per_thousand_messages(e2e: E2E) -> None:
    mailboxes, per_mailbox = 4, 1000
    tree = big_tree(old_root(e2e.stack), mailboxes=mailboxes, messages=per_mailbox, domains=1)
    domain = e2e.domain("bench")
    pairs = []
    for address, box in tree.mailboxes.items():
        local = address.split("@")[0]
        e2e.mailbox(domain, local)
        pairs.append((f"{local}@{domain.name}", str(box.maildir)))
    e2e.wait_applied(domain)
    started = time.monotonic()
    item = run_import(domain, pairs, timeout=600)
    seconds = time.monotonic() - started
    assert item.copied == mailboxes * per_mailbox
    total = mailboxes * per_mailbox
    again = run_import(domain, pairs, timeout=600)
    assert again.copied == 0
    print(f"\nmail import: {total} messages of 2 kB in {mailboxes} mailboxes: {seconds:.2f} s request to report, "
          f"{item.seconds:.2f} s on the agent = {item.seconds / total * 1000:.2f} s per 1,000 messages "
          f"({mailboxes} mailboxes at once); a run with nothing new: {again.seconds:.2f} s")
