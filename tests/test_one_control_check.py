"""One control-character check for panel and agent: the text the panel accepts for a Sieve script
or a header is exactly the text the agent accepts (mailhost.render.CONTROL_CHARS, imported by
mail.validators)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from mail import validators
from mailhost import render

SAMPLED = [*range(0x00, 0x100), 0x2028, 0x2029, 0xFEFF, 0x1F600]


def panel_accepts(text: str) -> bool:
    try:
        validators.clean_text(text, max_length=100)
    except ValidationError:
        return False
    return True


def agent_accepts(text: str) -> bool:
    try:
        render.text(text)
    except render.RenderError:
        return False
    return True


def test_panel_and_agent_share_the_pattern() -> None:
    assert validators.CONTROL_CHARS is render.CONTROL_CHARS


@pytest.mark.parametrize("codepoint", SAMPLED, ids=hex)
def test_panel_and_agent_agree_on_every_character(codepoint: int) -> None:
    text = f"a{chr(codepoint)}b"
    assert panel_accepts(text) == agent_accepts(text)


def test_the_check_refuses_controls_and_keeps_tab_and_line_feed() -> None:
    assert not panel_accepts("a\x00b") and not panel_accepts("a\rb") and not panel_accepts("a\x85b")
    assert panel_accepts("a\tb") and panel_accepts("a\nb") and panel_accepts("a\r\nb")
