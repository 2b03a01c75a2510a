"""mlmmj control files, list texts, the list routing rows and the list pipe, without a mail stack.

Control files under hostile input: a value either lands exactly as given in its own file (one
line where mlmmj reads a line, a header that stays one header) or is refused. Every option maps
onto the mlmmj tunable that does it (TUNABLES of mlmmj 1.3.0)."""

from __future__ import annotations

import email
import email.header
import email.policy
import sqlite3
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhost import contract, list_pipe, lists, maps
from mailhost.apply import HostConfig, apply
from mailhost.lists import control, encoded_prefix, ensure_list, list_text, list_texts
from mailhost.render import RenderError, list_bases, list_sub_addresses, rows

HOSTILE = st.one_of(
    st.text(alphabet=st.sampled_from(list('ab@.-_+"\\\n\r\t\x00\x85é 🎉:/,;<>')), max_size=60),
    st.sampled_from(["a@b.test", "a@b.test\nReply-To: x@evil.test", "[list]", "a@b.test\r\nBcc: x@y.test"]),
)
BASE = {"name": "news", "owner": "o@example.test"}


def decoded(header: str) -> str:
    return str(email.header.make_header(email.header.decode_header(header)))


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
        assert texts["prefix"].isascii() and "\n" not in texts["prefix"]
        assert decoded(texts["prefix"]).rstrip() == prefix.rstrip() and "\n" not in prefix and "\r" not in prefix
    if trailer:
        assert texts["panel-footer"] == trailer
    if mode == "list":
        assert texts["customheaders"] == "Reply-To: news@example.test"
    elif mode == "address":
        assert texts["customheaders"] == f"Reply-To: {reply}"
        assert "\n" not in reply and "\r" not in reply and "," not in reply and " " not in reply
    else:
        assert "customheaders" not in texts
    assert "footer" not in texts  # mlmmj's own footer breaks base64 and MIME bodies: the pipe adds it
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


@pytest.mark.parametrize(("posting", "expected"), [
    ("anyone", set()),
    ("subscribers", {"subonlypost"}),
    ("subscribers_moderated", {"subonlypost", "modnonsubposts"}),
    ("moderators", {"modonlypost"}),
    ("moderated", {"moderated"}),
])
def test_each_posting_mode_is_its_mlmmj_flags(posting: str, expected: set[str]) -> None:
    flags, _texts = control({**BASE, "posting": posting}, "example.test", 25)
    assert flags & {"subonlypost", "modonlypost", "moderated", "modnonsubposts"} == expected


def test_an_unknown_option_value_is_refused() -> None:
    for bad in ({"posting": "everyone"}, {"reply_to": "nobody"}, {"archive_access": "owner"}, {"language": "xx"},
                {"language": "../en"}):
        with pytest.raises(RenderError):
            control({**BASE, **bad}, "example.test", 25)


@pytest.mark.parametrize(("options", "present", "absent"), [
    ({}, {"nodigestsub", "subonlyget", "nolistsubsemail"},
     {"closedlist", "closedlistsub", "nosubconfirm", "submod", "noarchive", "noget"}),
    ({"digest": True}, set(), {"nodigestsub"}),
    ({"private": True}, {"closedlistsub"}, {"closedlist"}),  # nobody subscribes by mail, anyone leaves
    ({"sub_confirm": False}, {"nosubconfirm"}, set()),
    ({"sub_moderate": True}, {"submod"}, set()),
    ({"archive": False}, {"noarchive"}, set()),
    ({"archive_access": "anyone"}, set(), {"subonlyget", "noget"}),
    ({"archive_access": "moderators"}, {"noget"}, set()),
    ({"remote_admin_list": True}, set(), {"nolistsubsemail"}),
])
def test_each_option_is_its_tunable(options: dict[str, object], present: set[str], absent: set[str]) -> None:
    flags, _texts = control({**BASE, **options}, "example.test", 25)
    assert present <= flags and not absent & flags


def test_the_list_has_its_internal_address_as_second_list_address() -> None:
    _flags, texts = control(BASE, "example.test", 25)
    assert texts["listaddress"].split("\n") == ["news@example.test", "news@example.test.mlmmj.invalid"]
    assert texts["panel-language"] == "fr"  # French unless the document says otherwise


def test_a_french_prefix_is_encoded_and_reads_back_with_its_space() -> None:
    prefix = encoded_prefix("[Club échecs]")
    assert prefix.isascii()
    # mlmmj writes "<prefix> <subject>": the space must survive a Subject that starts encoded too.
    for subject, expected in (("Bonjour", "[Club échecs] Bonjour"),
                              ("=?utf-8?q?=C3=80_vous?=", "[Club échecs] À vous")):
        assert " ".join(decoded(f"{prefix} {subject}").split()) == expected
    assert encoded_prefix("[news]") == "[news]"
    long = encoded_prefix("é" * 64)
    assert all(len(word) <= 75 for word in long.split(" ")) and decoded(long).strip() == "é" * 64


def test_list_texts_may_set_only_the_allowed_headers() -> None:
    assert list_text("help", "Subject: Aide\n\nCorps") == "Subject: Aide\n\nCorps\n"
    assert list_text("help", "Subject: Aide\nCorps") == "Subject: Aide\n\nCorps\n"  # the headers end there
    assert list_text("help", "Bonjour $list$") == "Bonjour $list$\n"
    # Any other header at the top: the whole text is body (an empty line first).
    injected = "Subject: x\nBcc: victim@evil.test\n\nCorps"
    assert list_text("help", injected) == "\n" + injected + "\n"
    assert list_text("help", "Note: lisez ceci") == "\nNote: lisez ceci\n"
    for name, value in (("../../control/owner", "x"), ("listaddress", "x"), ("help", "a\rb"), ("help", "a\x00"),
                        ("help", "x" * 20_001), ("help", 3)):
        with pytest.raises(RenderError):
            list_text(name, value)


def test_the_text_files_are_the_language_skeleton_with_the_edited_ones() -> None:
    if not lists.TEXT_SKELETONS.is_dir():
        pytest.skip("mlmmj's text skeletons are not installed")
    french = list_texts({**BASE, "texts": {"finish-sub": "Bienvenue !"}})
    english = list_texts({**BASE, "language": "en"})
    assert french["finish-sub"] == "Bienvenue !\n"
    assert french["help"] == (lists.TEXT_SKELETONS / "fr" / "help").read_text(encoding="utf-8")
    assert english["finish-sub"] == (lists.TEXT_SKELETONS / "en" / "finish-sub").read_text(encoding="utf-8")


def test_ensure_list_follows_language_and_texts(tmp_path: Path) -> None:
    if not lists.available():
        pytest.skip("mlmmj is not installed")
    host = lists.ListHost(tmp_path)
    skel = lists.TEXT_SKELETONS
    path = ensure_list(host, "example.test", {**BASE, "texts": {"help": "Aide maison"}})
    assert (path / "text" / "help").read_text() == "Aide maison\n"
    assert (path / "text" / "confirm").read_text() == (skel / "fr" / "confirm").read_text()
    assert (path / "control" / "listaddress").read_text() == "news@example.test\nnews@example.test.mlmmj.invalid\n"
    # English: the edited text stays, the others become English; a text no longer edited is mlmmj's.
    ensure_list(host, "example.test", {**BASE, "language": "en", "texts": {"help": "Aide maison"}})
    assert (path / "text" / "help").read_text() == "Aide maison\n"
    assert (path / "text" / "confirm").read_text() == (skel / "en" / "confirm").read_text()
    ensure_list(host, "example.test", {**BASE, "language": "en"})
    assert (path / "text" / "help").read_text() == (skel / "en" / "help").read_text()
    (path / "control" / "footer").write_text("old mlmmj footer\n")
    ensure_list(host, "example.test", {**BASE, "trailer": "Pied"})
    assert not (path / "control" / "footer").exists()
    assert (path / "control" / "panel-footer").read_text() == "Pied\n"


def test_a_list_holds_its_ezmlm_addresses() -> None:
    document = {"format": 3, "domain": "example.test", "revision": 1, "state": "present",
                "lists": [{**BASE, "request_address": True}]}
    found = rows(document)
    internal = "example.test.mlmmj.invalid"
    assert found.aliases["news-subscribe@example.test"] == [f"news+subscribe@{internal}"]
    assert found.aliases["news-unsubscribe@example.test"] == [f"news+unsubscribe@{internal}"]
    assert found.aliases["news-digest-subscribe@example.test"] == [f"news+subscribe-digest@{internal}"]
    assert found.aliases["news-digest-unsubscribe@example.test"] == [f"news+unsubscribe-digest@{internal}"]
    assert found.aliases["news-help@example.test"] == [f"news+help@{internal}"]
    assert found.aliases["news-owner@example.test"] == [f"news+owner@{internal}"]
    assert found.aliases["news-request@example.test"] == [f"news-request@{internal}"]
    assert found.transports[f"news-request@{internal}"] == "mlmmjrequest:example.test/news"
    assert {e for e, kind in found.names.items() if kind == "list"} == {
        "news@example.test", *(f"{s}@example.test" for s in list_sub_addresses("news"))}
    document["lists"] = [{**BASE, "request_address": False}]
    off = rows(document)
    assert "news-request@example.test" not in off.aliases and f"news-request@{internal}" not in off.transports
    assert off.names["news-request@example.test"] == "list"  # still held: a delta reads and removes its row
    document["mailboxes"] = []
    document["forwards"] = [{"local_part": "news-help", "destinations": ["a@b.test"]}]
    with pytest.raises(RenderError):
        rows(document)


def test_list_bases_names_every_list_an_address_belongs_to() -> None:
    assert list_bases("news-subscribe") == {"news"}
    assert list_bases("news-digest-subscribe") == {"news", "news-digest"}
    assert list_bases("news+anything") == {"news"}
    assert list_bases("news") == set() and list_bases("-help") == set()
    assert all(len(s) <= 64 for s in list_sub_addresses("n" * 60))


def _message(body: str, cte: str | None = None, **parts: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@b.test", "news@example.test", "Été"
    msg.set_content(body, cte=cte)
    if "html" in parts:
        msg.add_alternative(parts["html"], subtype="html")
    if "attachment" in parts:
        msg.add_attachment(parts["attachment"].encode(), maintype="application", subtype="pdf", filename="x.pdf")
    return msg.as_bytes()


def _parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


@pytest.mark.parametrize("cte", ["quoted-printable", "base64", "8bit"])
def test_the_trailer_is_added_to_the_decoded_text(cte: str) -> None:
    out = _parse(list_pipe.with_footer(_message("Été à la plage.\n", cte), "Pied de page été"))
    assert out.get_content() == "Été à la plage.\nPied de page été\n"
    assert str(out["Subject"]) == "Été"


def test_the_trailer_goes_in_both_versions_and_never_into_an_attachment() -> None:
    data = _message("Texte été", html="<html><body><p>HTML été</p></body></html>", attachment="PDF")
    out = _parse(list_pipe.with_footer(data, "Pied <été>"))
    plain = out.get_body(("plain",))
    html_part = out.get_body(("html",))
    assert plain is not None and plain.get_content().endswith("Pied <été>\n")
    assert html_part is not None and "Pied &lt;été&gt;" in html_part.get_content()
    assert html_part.get_content().rstrip().endswith("</body></html>")
    attachment = next(out.iter_attachments())
    assert attachment.get_content() == b"PDF"


def test_a_signed_message_or_one_without_text_is_left_as_it_came() -> None:
    signed = (b"From: a@b.test\nSubject: s\nMIME-Version: 1.0\nContent-Type: multipart/signed; boundary=XX; "
              b"protocol=\"application/pgp-signature\"\n\n--XX\nContent-Type: text/plain\n\nsigned\n--XX\n"
              b"Content-Type: application/pgp-signature\n\nSIG\n--XX--\n")
    assert list_pipe.with_footer(signed, "Pied") == signed
    garbage = b"\xff\xfe not a message"
    assert list_pipe.with_footer(garbage, "Pied") in (garbage, list_pipe.with_footer(garbage, "Pied"))
    assert list_pipe.with_footer(_message("x"), "") == _message("x")


@pytest.mark.parametrize(("subject", "command"), [
    ("subscribe", "subscribe"), ("SUBSCRIBE me please", "subscribe"), ("unsubscribe", "unsubscribe"),
    ("Re: unsubscribe", "unsubscribe"), ("help", "help"), ("", "help"), ("rm -rf /", "help"),
    ("=?utf-8?q?unsubscribe?=", "unsubscribe"),
])
def test_request_takes_the_first_word_of_the_subject(subject: str, command: str) -> None:
    data = f"From: a@b.test\nTo: news-request@example.test\nSubject: {subject}\n\nbody\n".encode()
    assert list_pipe.request_command(data) == command


def test_request_rewrites_the_recipient_headers_only() -> None:
    data = (b"From: a@b.test\nTo: news@example.test,\n  other@example.test\nCc: news@example.test\n"
            b"Delivered-To: news-request@example.test.mlmmj.invalid\nSubject: subscribe\n\nTo: body line\n")
    out = list_pipe.as_command(data, "news+subscribe@example.test.mlmmj.invalid")
    head, body = out.split(b"\n\n", 1)
    assert head.split(b"\n")[:2] == [b"Delivered-To: news+subscribe@example.test.mlmmj.invalid",
                                     b"To: news+subscribe@example.test.mlmmj.invalid"]
    assert b"news@example.test" not in head and b"other@" not in head and b"From: a@b.test" in head
    assert body == b"To: body line\n"


def _host(root: Path) -> HostConfig:
    config = HostConfig(name="t", root=root)
    (root / "db").mkdir(parents=True)
    maps.create(config.maps_db)
    return config


def _rows(config: HostConfig) -> dict[str, list[tuple[object, ...]]]:
    db = sqlite3.connect(config.maps_db)
    try:
        return {table: sorted(db.execute(f"SELECT * FROM {table} WHERE domain = 'example.test'"))  # noqa: S608
                for table in ("aliases", "transports", "names")} | {
            "mailboxes": db.execute("SELECT email FROM mailboxes WHERE domain = 'example.test'").fetchall()}
    finally:
        db.close()


def test_a_delta_takes_the_ezmlm_addresses_along_with_their_list(tmp_path: Path) -> None:
    """A delta names the list only: turning -request off, then deleting the list (a mailbox taking
    one of its old addresses in the same delta) leaves the rows a whole document would."""
    config = _host(tmp_path / "delta")
    whole = {"format": contract.FORMAT, "domain": "example.test", "state": "present", "mailboxes": [],
             "forwards": [], "robots": [], "catchall": {"mode": "bounce", "target": ""}}
    apply({**whole, "revision": 1, "lists": [{**BASE, "request_address": True}]}, config)
    delta = {"format": contract.FORMAT, "domain": "example.test", "state": "present", "base": 1}
    apply({**delta, "revision": 2, "lists": [{**BASE, "request_address": False}]}, config)
    assert "news-request@example.test" not in {row[0] for row in _rows(config)["aliases"]}
    mailbox = {"local_part": "news-help", "password_hash": "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA",
               "quota_bytes": 0, "active": True, "allow_pop3": True, "allow_imap": True, "allow_smtp": True,
               "routing": "standard", "forward_to": [], "keep_copy": False, "vacation": None}
    apply({**delta, "revision": 3, "base": 2, "removed": ["news"], "mailboxes": [mailbox]}, config)
    reference = _host(tmp_path / "whole")
    apply({**whole, "revision": 3, "lists": [], "mailboxes": [mailbox]}, reference)
    assert _rows(config) == _rows(reference)
    assert [row[0] for row in _rows(config)["names"]] == ["news-help@example.test"]
