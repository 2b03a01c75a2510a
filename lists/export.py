"""A list's members as CSV (address, kind, since), streamed: 50,000 rows never sit in memory.

A cell a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage return:
an address may well start with + or -) gets a leading quote, the usual neutralisation (OWASP's
"CSV injection"), so opening the file runs nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from lists.models import ListMember, MailingList, MemberKind

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 2000


def safe_cell(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_START) else value


class _Line:
    """A csv writer's file that hands back what was written (one row at a time)."""

    def write(self, value: str) -> str:
        return value


def csv_rows(seat: Any, mailing_list: MailingList, kind: str) -> Iterator[str]:
    """The CSV's lines: a header, then each member of `kind` by address, read in chunks."""
    writer = csv.writer(_Line())
    kind = MemberKind(kind).value  # the stable name (subscriber, moderator, digest), not a translation
    yield writer.writerow(["address", "kind", "since"])
    rows = ListMember.objects.visible_to(seat).filter(mailing_list=mailing_list, kind=kind).order_by(
        "address").values_list("address", "created_at")
    for address, created_at in rows.iterator(chunk_size=CHUNK):
        yield writer.writerow([safe_cell(address), safe_cell(kind), created_at.isoformat(timespec="seconds")])


def file_name(mailing_list: MailingList, kind: str) -> str:
    """`news@example.org-subscriber.csv`: a list's name and an IDNA domain are plain ASCII."""
    return f"{mailing_list.name}@{mailing_list.domain.name}-{kind}.csv"
