"""mlmmj control files under hostile input: a value either lands exactly as given in its own
file (one line where mlmmj reads a line, a header that stays one header) or is refused."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailhost.lists import control
from mailhost.render import RenderError

HOSTILE = st.one_of(
    st.text(alphabet=st.sampled_from(list('ab@.-_+"\\\n\r\t\x00\x85é 🎉:/,;<>')), max_size=60),
    st.sampled_from(["a@b.test", "a@b.test\nReply-To: x@evil.test", "[list]", "a@b.test\r\nBcc: x@y.test"]),
)


@settings(max_examples=300, deadline=None)
@given(prefix=HOSTILE, trailer=HOSTILE, owner=HOSTILE, reply=HOSTILE,
       mode=st.sampled_from(["sender", "list", "address"]))
def test_control_files_hold_exactly_one_validated_value(prefix: str, trailer: str, owner: str, reply: str,
                                                         mode: str) -> None:
    document_list = {"name": "news", "owner": owner, "prefix": prefix, "trailer": trailer, "reply_to": mode,
                     "reply_to_address": reply, "posting": "subscribers"}
    try:
        flags, texts = control(document_list, "example.test", 2525)
    except RenderError:
        return
    assert "subonlypost" in flags
    assert "\n" not in texts["owner"] and texts["owner"] == owner
    if prefix:
        assert texts["prefix"] == prefix and "\n" not in prefix and "\r" not in prefix
    if trailer:
        assert texts["footer"] == trailer
    if mode == "list":
        assert texts["customheaders"] == "Reply-To: news@example.test"
    elif mode == "address":
        assert texts["customheaders"] == f"Reply-To: {reply}"
        assert "\n" not in reply and "\r" not in reply and "," not in reply and " " not in reply
    else:
        assert "customheaders" not in texts
    for value in texts.values():
        assert "\x00" not in value and "\r" not in value


def test_a_header_cannot_be_smuggled_through_the_reply_address() -> None:
    document_list = {"name": "news", "owner": "o@example.test", "reply_to": "address",
                     "reply_to_address": "a@b.test\nBcc: everyone@evil.test"}
    try:
        control(document_list, "example.test", 25)
    except RenderError:
        return
    raise AssertionError("a second header went through")
