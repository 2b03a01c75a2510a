"""A list text never sets a header (issue 15, item 6).

mlmmj 1.3 (prepstdreply.c) reads the top of a text as headers: every line holding a ":" anywhere
once processed (substitutions, `%...%` directives, `\\uXXXX` escapes) is written as it is above
mlmmj's own From:, a line starting with a space or a tab as a header's next line, up to the first
empty line or the first line without ":". `mlmmj_headers` below reads a rendered file that way
(what can be decided without running mlmmj: a line holding `$`, `%` or a backslash counts as a
header, since mlmmj may make one of it); the real binary is `tests/e2e/test_list_texts_e2e.py`'s.
"""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError

from lists.models import MailingList
from lists.services import list_create, list_set_text
from mailhost.lists import list_text, text_header_problem
from tests.conftest import Cast, client_for
from tests.test_screens import text, url

CANONICAL = re.compile(r"^(Subject|MIME-Version|Content-Type|Content-Transfer-Encoding|Content-Disposition): ")

# Each a text's first lines as a tenant could type them, or as stored before this rule.
HOSTILE = [
    "Reply-To : phisher@evil.test\n\nHello",  # the space before the colon (the report's case)
    "Reply-To\t: phisher@evil.test\n\nHello",
    "reply-to: phisher@evil.test\n\nHello",
    "REPLY-TO:phisher@evil.test\n\nHello",
    "Reply-To:\n phisher@evil.test\n\nHello",  # folded
    "Subject: Hi\n\tReply-To: phisher@evil.test\n\nHello",  # a folded line that reads as a header
    "\tReply-To: phisher@evil.test\n\nHello",
    "Reply-To\uff1a phisher@evil.test: yes\n\nHello",  # a full-width colon, an ASCII one further on
    "Reply-To\ua789 phisher@evil.test\n\nHello",  # modifier letter colon
    "=?utf-8?q?Reply-To?=: phisher@evil.test\n\nHello",  # RFC 2047
    "Reply-To\\u003a phisher@evil.test\n\nHello",  # mlmmj turns \u003a into ":"
    "Subject: Hi\\u000aReply-To: phisher@evil.test\n\nHello",  # ... and \u000a into a line break
    "Subject: Hi\nReply-To: phisher@evil.test\n\nHello",
    "Subject: Hi\nBcc: victim@evil.test\n\nHello",
    "From: boss@evil.test\n\nHello",  # would replace mlmmj's own From:
    "$subject$: x\n\nHello",
    "Note: read this",
]
# Accepted by the panel, yet mlmmj would have read the first line as a header.
ACCEPTED_BUT_HEADER_TO_MLMMJ = [
    "Dear all: welcome\n\nHello",
    "%text prologue%\n\nHello",  # a prologue that begins "Reply-To: x" would be a header
    "$subject$ was received\n\nHello",  # a stranger's subject with a colon in it
    "Hello world \\u003a x",
    "Subject: 100% $subject$ for $list$ %text evil% $text evil$ $control owner$\n\nHello",
]


def mlmmj_headers(rendered: str) -> list[str]:
    """The lines mlmmj takes as headers in a rendered text (module docstring)."""
    headers = []
    for line in rendered.split("\n"):
        if line == "":
            break
        if line[0] in " \t" or any(char in line for char in ":$%\\"):
            headers.append(line)
        else:
            break
    return headers


def allowed_only(rendered: str) -> bool:
    """Whether mlmmj's headers of the rendered text are only allowed ones, in canonical form, whose
    `%` and `$` are escaped but for the list's own substitutions, folded lines only after them."""
    headers = mlmmj_headers(rendered)
    for index, line in enumerate(headers):
        if line[0] in " \t":
            if index == 0 or ":" in line:
                return False
        elif not CANONICAL.match(line):
            return False
        value = re.sub(r"%%|\$\$|\$(list|domain|list\+)\$", "", line.split(":", 1)[1] if line[0] not in " \t" else line)
        if any(char in value for char in "%$\\"):
            return False
    return True


def mlmmj_body(rendered: str) -> str:
    """What follows the headers mlmmj reads (and the empty line that ends them)."""
    lines = rendered.split("\n")[len(mlmmj_headers(rendered)):]
    return "\n".join(lines[1:] if lines and lines[0] == "" else lines)


@pytest.mark.parametrize("value", HOSTILE + ACCEPTED_BUT_HEADER_TO_MLMMJ)
def test_a_text_sets_no_header_but_the_allowed_ones(value: str) -> None:
    rendered = list_text("help", value)
    assert allowed_only(rendered), rendered
    last = value.split("\n")[-1]
    assert mlmmj_body(rendered).rstrip("\n").endswith(last), rendered  # the text is there, as body


def test_hostile_tops_become_body_whole() -> None:
    assert list_text("help", "Reply-To : phisher@evil.test\n\nHello") == "\nReply-To : phisher@evil.test\n\nHello\n"
    assert list_text("help", "Subject: Hi\\u000aReply-To: x\n\nHello") == "\nSubject: Hi\\u000aReply-To: x\n\nHello\n"
    assert list_text("help", "Dear all: welcome") == "\nDear all: welcome\n"


def test_allowed_headers_are_written_canonical_and_inert() -> None:
    assert list_text("help", "subject:Aide\nmime-version:  1.0\n\nCorps") == (
        "Subject: Aide\nMIME-Version: 1.0\n\nCorps\n")
    # In a header no directive runs and only the list's own substitutions are made.
    assert list_text("help", "Subject: 100% $list$@$domain$ $subject$ $text x$ %text x%\n\nCorps") == (
        "Subject: 100%% $list$@$domain$ $$subject$$ $$text x$$ %%text x%%\n\nCorps\n")
    assert list_text("help", "Subject: Aide\n  du club\nCorps") == "Subject: Aide\n  du club\n\nCorps\n"
    assert list_text("help", "Subject: Aide\nDear all: hi") == "Subject: Aide\n\nDear all: hi\n"
    assert list_text("help", "Bienvenue $list$ !") == "Bienvenue $list$ !\n"  # nothing of it can be a header


@pytest.mark.parametrize("value", HOSTILE)
def test_the_panel_refuses_a_text_whose_top_reads_as_a_header(value: str) -> None:
    refused = text_header_problem(value)
    assert refused is not None and refused in value.split("\n")[:2]


@pytest.mark.parametrize("value", ACCEPTED_BUT_HEADER_TO_MLMMJ + ["Subject: Aide\n\nCorps", "Bonjour\nNote: x"])
def test_the_panel_takes_a_text_that_is_body_or_allowed_headers(value: str) -> None:
    assert text_header_problem(value) is None


@pytest.mark.django_db
def test_the_form_says_which_line_cannot_be_a_header_and_saves_nothing(cast: Cast) -> None:
    news = list_create(domain=cast.a.domain, name="news", owner="owner@elsewhere.test", acting_user=cast.operator)
    client = client_for(cast, "domain_admin_a")
    response = client.post(url("screens:list_text", cast, news.pk, "finish-sub"),
                           {"text": "Reply-To : phisher@evil.test\n\nBienvenue"})
    assert response.status_code == 400
    page = text(response)
    assert "Reply-To : phisher@evil.test" in page and "would be read as a mail header" in page
    news.refresh_from_db()
    assert news.texts == {}
    with pytest.raises(ValidationError):
        list_set_text(mailing_list=news, name="help", text="Subject: Aide\nBcc: victim@evil.test\n\nAide",
                      acting_user=cast.operator)
    list_set_text(mailing_list=news, name="help", text="Subject: Aide\n\nAide du club", acting_user=cast.operator)
    assert MailingList.objects.get(pk=news.pk).texts == {"help": "Subject: Aide\n\nAide du club"}
