"""A whole vpopmail / QmailAdmin / ezmlm server moved in with one command, proven by real mail.

The old server is tests/vpopmail_tree.py's (three domains, an alias domain, MD5-crypt, SHA-512 and
DES hashes, Latin-1 texts, every .qmail form, a robot, a vacation, two ezmlm lists, Maildir++ mail
with flags and folders), written under the agent's import root. `manage.py import_vpopmail` reads
it, writes the rows, asks the host for the mail and waits; then, on the real stack: every account
logs in over POP3 and IMAP with its old password (where its flags allowed it), a wrong one does
not; every message is there with its flags, folder and date; each forward, the robot, the
vacation, each catch-all, a list and the alias domain behave as they did; a second run changes
nothing; a run after new mail reached the old server copies only that mail.
"""

from __future__ import annotations

import imaplib
import io
import os
import poplib
import secrets

import pytest
from django.core.management import call_command

from hosting.models import Domain
from mail.models import Mailbox
from provisioning.models import MailImport
from tests.e2e.conftest import E2E
from tests.e2e.mailclient import (
    SMTPRefused,
    fresh_ip,
    imap_login,
    pop3_messages,
    send,
    sink_messages,
    wait_for,
    with_subject,
)
from tests.e2e.test_mail_import_e2e import as_imap, imap_folder, old_root
from tests.vpopmail_tree import NO_IMAP, NO_POP, build_tree

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def run_command(root: str, pack_id: int) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_vpopmail", root, "--pack", str(pack_id), "--wait", "240", stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def subjects(messages: list) -> list[str]:
    return sorted(str(m.get("Subject", "")) for m in messages)


def test_a_vpopmail_server_moves_in_and_works_by_real_mail(e2e: E2E) -> None:
    stack = e2e.stack
    root = old_root(stack)
    tree = build_tree(root)

    dry = io.StringIO()
    call_command("import_vpopmail", str(root), "--pack", str(e2e.pack.pk), "--dry-run", stdout=dry, stderr=dry)
    assert "Dry run" in dry.getvalue() and not Domain.objects.filter(name="exemple.fr").exists()

    output = run_command(str(root), e2e.pack.pk)
    names = [*tree.domains, *tree.aliases]
    domains = {domain.name: domain for domain in Domain.objects.filter(name__in=names)}
    assert sorted(domains) == sorted(names), output
    for domain in domains.values():
        e2e.wait_applied(domain, timeout=60)
    assert MailImport.objects.filter(domain__name__in=tree.domains).exists()

    # Every message in its folder with its bytes, flags and date, read over IMAP (before POP3
    # reads them, which marks them seen).
    for address, box in tree.mailboxes.items():
        if not box.messages or box.flags & NO_IMAP:
            continue
        imap = imap_login(stack, address, box.password)
        try:
            for folder in box.folders():
                expected = sorted((as_imap(m) for m in box.messages if m.folder == folder), key=lambda m: m[2])
                assert sorted(imap_folder(imap, folder), key=lambda m: m[2]) == expected, (address, folder)
        finally:
            imap.logout()
    # Every account logs in with its old password where its flags allowed it; a wrong one fails.
    for address, box in tree.mailboxes.items():
        if box.flags & NO_POP:
            with pytest.raises(poplib.error_proto):
                pop3_messages(stack, address, box.password, source_ip=fresh_ip())
        else:
            pop3_messages(stack, address, box.password)
        if box.flags & NO_IMAP:
            with pytest.raises(imaplib.IMAP4.error):
                imap_login(stack, address, box.password, source_ip=fresh_ip())
        else:
            imap_login(stack, address, box.password).logout()
    rene = tree.mailboxes["rene@exemple.fr"]
    with pytest.raises(poplib.error_proto):
        pop3_messages(stack, rene.address, rene.password + "x", source_ip=fresh_ip())
    with pytest.raises(imaplib.IMAP4.error):
        imap_login(stack, rene.address, "not-" + rene.password, source_ip=fresh_ip())
    # The clear copy vpopmail kept never reached the panel.
    stored = Mailbox.objects.get(domain__name="exemple.fr", local_part="rene").password_hash
    assert stored.startswith("{SHA512-CRYPT}$6$") and rene.password not in stored

    marie = tree.mailboxes["marie@exemple.fr"]  # IMAP refused: her mail over POP3
    assert len(pop3_messages(stack, marie.address, marie.password)) == len(marie.messages)

    # Forwards: every line kind; the comments-only one accepts and drops.
    tag = secrets.token_hex(3)
    send(stack, "client@outside.test", "boutique@exemple.fr", f"boutique {tag}", "deux baguettes")
    wait_for(lambda: with_subject(sink_messages(stack, "commandes@example.net"), f"boutique {tag}"))
    wait_for(lambda: with_subject(pop3_messages(stack, rene.address, rene.password), f"boutique {tag}"))
    send(stack, "client@outside.test", "poubelle@exemple.fr", f"poubelle {tag}", "nobody")
    send(stack, "client@outside.test", "bureau@club-voile.org", f"bureau {tag}", "réunion")
    for local in ("capitaine", "secretaire"):
        box = tree.mailboxes[f"{local}@club-voile.org"]
        wait_for(lambda box=box: with_subject(pop3_messages(stack, box.address, box.password), f"bureau {tag}"))
    # A mailbox forwarding with a copy kept (René), and one forwarding everything away (Paul).
    send(stack, "client@outside.test", rene.address, f"rene {tag}", "bonjour")
    wait_for(lambda: with_subject(sink_messages(stack, "rene.muller@example.org"), f"rene {tag}"))
    wait_for(lambda: with_subject(pop3_messages(stack, rene.address, rene.password), f"rene {tag}"))
    paul = tree.mailboxes["paul@exemple.fr"]
    send(stack, "client@outside.test", paul.address, f"paul {tag}", "bonjour")
    wait_for(lambda: with_subject(sink_messages(stack, "paul.durand@example.net"), f"paul {tag}"))
    assert not with_subject(pop3_messages(stack, paul.address, paul.password), f"paul {tag}")

    # The robot answers (its Latin-1 text, in UTF-8 now) and copies; the vacation answers.
    send(stack, "horaires-asker@outside.test", "horaires@exemple.fr", f"horaires {tag}", "ouvert ?")
    reply = wait_for(lambda: with_subject(sink_messages(stack, "horaires-asker@outside.test"),
                                          "Nos horaires d'ouverture"))[0]
    assert "de 7 h à 19 h" in reply.get_content()
    send(stack, "vacation-asker@outside.test", marie.address, f"marie {tag}", "es-tu là ?")
    reply = wait_for(lambda: with_subject(sink_messages(stack, "vacation-asker@outside.test"),
                                          "Absente jusqu'au 3 janvier"))[0]
    assert "congés" in reply.get_content()

    # Catch-alls: bounced at RCPT; to a mailbox; x@ to x@ another domain.
    with pytest.raises(SMTPRefused) as refused:
        send(stack, "client@outside.test", f"nobody-{tag}@exemple.fr", "unknown", "x")
    assert refused.value.code == 550
    send(stack, "client@outside.test", f"inconnu-{tag}@club-voile.org", f"catchall {tag}", "x")
    capitaine = tree.mailboxes["capitaine@club-voile.org"]
    wait_for(lambda: with_subject(pop3_messages(stack, capitaine.address, capitaine.password), f"catchall {tag}"))
    send(stack, "client@outside.test", "rene@atelier-bois.net", f"ext {tag}", "x")
    wait_for(lambda: with_subject(pop3_messages(stack, rene.address, rene.password), f"ext {tag}"))

    # A list: a subscriber's post reaches the other subscribers, with the list's trailer.
    send(stack, "capitaine@club-voile.org", "membres@club-voile.org", f"sortie {tag}", "samedi 9 h")
    post = wait_for(lambda: with_subject(sink_messages(stack, "equipier@example.net"), f"sortie {tag}"), timeout=30)
    assert "Loctudy à bientôt" in post[0].get_content()
    wait_for(lambda: with_subject(sink_messages(stack, "barreur@example.org"), f"sortie {tag}"))

    # The alias domain: x@alias is x@real, for mail and for logins.
    send(stack, "client@outside.test", "rene@exemple-boulangerie.fr", f"alias {tag}", "x")
    wait_for(lambda: with_subject(pop3_messages(stack, rene.address, rene.password), f"alias {tag}"))
    imap_login(stack, "rene@exemple-boulangerie.fr", rene.password).logout()

    # A second run changes nothing: no new revision, no message twice.
    revisions = dict(Domain.objects.filter(name__in=names).values_list("name", "revision"))
    inbox_before = len(pop3_messages(stack, rene.address, rene.password))
    run_command(str(root), e2e.pack.pk)
    assert dict(Domain.objects.filter(name__in=names).values_list("name", "revision")) == revisions
    assert len(pop3_messages(stack, rene.address, rene.password)) == inbox_before

    # New mail on the old server (the MX switched meanwhile): the next run copies only it.
    received = 1577872800
    data = b"From: late@example.net\nTo: rene@exemple.fr\nSubject: Arrived late\n\nStill on the old server.\n"
    late = rene.maildir / "new" / f"{received}.M98P98.oldmail.example,S={len(data)}"
    late.write_bytes(data)
    os.utime(late, (received, received))
    run_command(str(root), e2e.pack.pk)
    after = pop3_messages(stack, rene.address, rene.password)
    assert len(after) == inbox_before + 1 and with_subject(after, "Arrived late")
