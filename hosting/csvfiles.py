"""CSV files the panel writes and reads (a list's members, a domain's mailboxes and forwards):
uploads decoded, lines split as a text editor shows them, rows written one at a time for a
streamed response, and cells a spreadsheet would run as a formula neutralised.

A cell that starts with = + - @, a tab or a carriage return gets a leading quote, the usual
neutralisation (OWASP's "CSV injection"), so opening the file runs nothing; `plain_cell` takes
that quote off again when such a file comes back to an import.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"


def safe_cell(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_START) else value


def plain_cell(value: str) -> str:
    """A cell as it was before `safe_cell`."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value


def decode(data: bytes) -> str:
    """The text of an upload: UTF-8 (with or without BOM), UTF-16 with its BOM, else Windows-1252."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def is_utf8(data: bytes) -> bool:
    """Whether `decode` read the upload as Unicode (not the Windows-1252 fallback)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return data.startswith((b"\xff\xfe", b"\xfe\xff"))
    return True


def lines(text: str) -> Iterator[tuple[int, str]]:
    """Non-empty lines with their numbers; only \\n, \\r\\n and \\r end a line (what a text editor
    shows), so a form feed or U+2028 stays in its line, which is then invalid."""
    for number, line in enumerate(re.split(r"\r\n|\r|\n", text.removeprefix(BOM)), start=1):
        if line.strip():
            yield number, line


def cells(line: str, delimiter: str) -> list[str]:
    """A line's cells; a line the csv module cannot read (a NUL...) is one cell, which is then invalid."""
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return [line]


class _Line:
    """A csv writer's file that hands back what was written (one row at a time)."""

    def write(self, value: str) -> str:
        return value


def stream(header: list[str], rows: Iterable[list[Any]], *, bom: bool = False) -> Iterator[str]:
    """The lines of a CSV file, one row at a time (for a StreamingHttpResponse): the header as
    given, then each row with its text cells neutralised (`safe_cell`); `bom`: a byte-order mark
    first, so that Excel reads the file as UTF-8."""
    writer = csv.writer(_Line())
    yield (BOM if bom else "") + writer.writerow(header)
    for row in rows:
        yield writer.writerow([safe_cell(cell) if isinstance(cell, str) else cell for cell in row])
