"""A list's members as CSV (address, kind, since), streamed: 50,000 rows never sit in memory.

A cell a spreadsheet would run as a formula (an address may well start with + or -) is
neutralised (hosting.csvfiles.safe_cell), so opening the file runs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

from hosting.csvfiles import stream
from hosting.roles import Seat
from lists.models import ListMember, MailingList, MemberKind

CHUNK = 2000


def csv_rows(seat: Seat, mailing_list: MailingList, kind: str) -> Iterator[str]:
    """The CSV's lines: a header, then each member of `kind` by address, read in chunks."""
    kind = MemberKind(kind).value  # the stable name (subscriber, moderator, digest), not a translation
    rows = ListMember.objects.visible_to(seat).filter(mailing_list=mailing_list, kind=kind).order_by(
        "address").values_list("address", "created_at")
    return stream(["address", "kind", "since"], ([address, kind, created_at.isoformat(timespec="seconds")]
                                                 for address, created_at in rows.iterator(chunk_size=CHUNK)))


def file_name(mailing_list: MailingList, kind: str) -> str:
    """`news@example.org-subscriber.csv`: a list's name and an IDNA domain are plain ASCII."""
    return f"{mailing_list.name}@{mailing_list.domain.name}-{kind}.csv"
