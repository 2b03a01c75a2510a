"""Text as a QmailAdmin server stored it: UTF-8 when the bytes are valid UTF-8 (typed on the
command line), else Windows-1252 / ISO-8859-1 (QmailAdmin's pages were ISO-8859-1, and browsers
sent Windows-1252 for it), then the `&#NNN;` / `&#xHH;` references browsers put for characters the
page's charset lacked. Decided per value (a line, a field): one file often mixes them."""

from __future__ import annotations

import codecs
import re

_REFERENCE = re.compile(r"&#(?:([0-9]{1,7})|[xX]([0-9a-fA-F]{1,6}));")


def _latin1_for_holes(error: UnicodeError) -> tuple[str, int]:
    """Windows-1252 leaves five bytes undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D): ISO-8859-1's."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return error.object[error.start:error.end].decode("latin-1"), error.end


codecs.register_error("vpopmail-latin1", _latin1_for_holes)


def _character(match: re.Match[str]) -> str:
    number = int(match.group(1)) if match.group(1) else int(match.group(2), 16)
    if number > 0x10FFFF or 0xD800 <= number <= 0xDFFF or (number < 0x20 and number not in (9, 10, 13)):
        return match.group(0)  # not a character a browser would send: left as written
    return chr(number)


def resolve_references(text: str) -> str:
    return _REFERENCE.sub(_character, text) if "&#" in text else text


def decode(data: bytes) -> str:
    """One value's bytes as text (see the module)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="vpopmail-latin1")
    return resolve_references(text)


def decode_lines(data: bytes) -> str:
    """A text of several lines, each decoded on its own (one edited in the browser, one on the
    command line); line ends kept as "\\n"."""
    try:
        return resolve_references(data.decode("utf-8").replace("\r\n", "\n"))
    except UnicodeDecodeError:
        return "".join(decode(line) for line in data.replace(b"\r\n", b"\n").splitlines(keepends=True))


def shorten(text: str, limit: int = 120) -> str:
    """A value for a report: control characters replaced, cut to `limit` characters."""
    text = "".join("?" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
