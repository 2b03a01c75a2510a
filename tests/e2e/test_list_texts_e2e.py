"""A list text never sets a header of mlmmj's answer (issue 15, item 6), by real mail.

Texts the panel now refuses but a list may hold from before (stored straight in its row, as they
were), and a text the panel takes that mlmmj 1.3 would have read as a header ("Dear member: ..."):
mlmmj's help, welcome and refusal carry none of their lines as a header, and each text is there
as body."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from lists.models import MailingList
from lists.services import list_create, list_set_text
from provisioning.revisions import domain_changed
from tests.e2e.conftest import E2E
from tests.e2e.mailclient import send, sink_messages, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
TIMEOUT = 30
# mlmmj's own headers on its answers (and what Postfix, the host's DKIM signature and the sink add).
EXPECTED = {"from", "to", "message-id", "date", "subject", "mime-version", "content-type",
            "content-transfer-encoding", "return-path", "delivered-to", "received", "x-original-to", "reply-to",
            "dkim-signature"}


def store_texts(mailing_list: MailingList, texts: dict[str, str]) -> None:
    """Texts as a list saved before the panel refused them: the row, a new revision, a push."""
    with transaction.atomic():
        MailingList.objects.filter(pk=mailing_list.pk).update(
            texts={**mailing_list.texts, **texts}, revision=domain_changed(mailing_list.domain))


def answer(e2e: E2E, address: str, marker: str) -> EmailMessage:
    return wait_for(lambda: [m for m in sink_messages(e2e.stack, address) if marker in m.as_string()],
                    timeout=TIMEOUT)[-1]


def assert_no_header_from_text(message: EmailMessage, body_line: str) -> None:
    names = {name.lower() for name in message.keys()}
    assert names <= EXPECTED, names - EXPECTED
    assert not [value for value in message.values() if "phisher" in str(value)], message.items()
    assert body_line in message.get_content(), message.as_string()[:2000]


def test_a_list_text_never_sets_a_header_of_mlmmjs_answers(e2e: E2E) -> None:
    domain = e2e.domain("texts")
    d = domain.name
    e2e.mailbox(domain, "owner")
    club = list_create(domain=domain, name="club", owner=f"owner@{d}", sub_confirm=False, acting_user=e2e.operator)
    with pytest.raises(ValidationError):  # the panel says no to the report's text
        list_set_text(mailing_list=club, name="help", text="Reply-To : phisher@evil.test\n\nAide",
                      acting_user=e2e.operator)
    # Taken by the panel; mlmmj would read its first line as a header ("Dear member").
    list_set_text(mailing_list=club, name="finish-sub", text="Dear member: phisher@evil.test is our help desk\n\n"
                  "Bienvenue au cercle", acting_user=e2e.operator)
    club.refresh_from_db()
    store_texts(club, {
        "help": "Reply-To : phisher@evil.test\n\nAide du cercle",  # the report's text
        # mlmmj turns \u000a into a line break, then "Reply-To:" would be a header of its own.
        "deny-post": "Subject: Refus\\u000aReply-To: phisher@evil.test\n\nRefus du cercle",
    })
    e2e.wait_applied(domain)

    send(e2e.stack, "tx-asker@outside.test", f"club+help@{d}", "x", "")
    assert_no_header_from_text(answer(e2e, "tx-asker@outside.test", "Aide du cercle"), "Reply-To : phisher@evil.test")
    send(e2e.stack, "tx-joiner@outside.test", f"club+subscribe@{d}", "x", "")
    assert_no_header_from_text(answer(e2e, "tx-joiner@outside.test", "Bienvenue au cercle"),
                               "Dear member: phisher@evil.test is our help desk")
    send(e2e.stack, "tx-stranger@outside.test", f"club@{d}", "a post", "from a stranger")  # subscribers only
    refusal = answer(e2e, "tx-stranger@outside.test", "Refus du cercle")
    assert_no_header_from_text(refusal, "Reply-To: phisher@evil.test")
