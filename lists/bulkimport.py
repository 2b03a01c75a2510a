"""A list's members moved in whole from another server (`vpopmail.importer`): every kind at once,
in one service call: the list's room (its plan's `max_list_members`, every kind counted) checked
once under the list's lock (`services.lock_list_room`), the addresses read as a member import
reads them (`imports.normalize`), the new ones written with `bulk_create`, one revision and one
audit row (`Action.LIST_MEMBER_IMPORT`, the source in its detail).

A person's paste (`lists.imports`) stops at the list's limit and keeps what fitted; a server's
move is planned within the room beforehand, so members beyond it refuse the whole call: a list
is not moved in half.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from hosting import audit
from hosting.audit import Action
from hosting.roles import Seat
from lists.imports import normalize
from lists.models import ListMember, MailingList, MemberKind
from lists.services import lock_list_room
from provisioning.revisions import domain_changed

BATCH = 2000


@dataclass
class MembersResult:
    added: int = 0
    present: int = 0
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (kind, the address as given)


def valid_members(mailing_list: MailingList, members: dict[str, list[str]]) -> tuple[dict[str, list[str]],
                                                                                        list[tuple[str, str]]]:
    """The normalised addresses of each kind, repeats dropped, and the invalid ones; an address
    that starts with the list's own is refused, as mlmmj refuses it (`lists.imports`)."""
    own = f"{mailing_list.name}@{mailing_list.domain.name}"
    valid: dict[str, list[str]] = {}
    invalid: list[tuple[str, str]] = []
    for kind, addresses in members.items():
        if kind not in MemberKind.values:
            raise ValidationError(_("Choose one of the options."), code="invalid")
        seen: dict[str, None] = {}
        for text in addresses:
            try:
                address = normalize(text)
            except ValidationError:
                address = ""
            if not address or address.startswith(own):
                invalid.append((kind, text))
            else:
                seen[address] = None
        valid[kind] = list(seen)
    return valid, invalid


@transaction.atomic
def members_import(*, mailing_list: MailingList, members: dict[str, list[str]], acting_user: Seat | None,
                   source: str = "") -> MembersResult:
    """Add `members` ({kind: addresses}) to the list (see the module). Members already there stay
    as they are; nothing is written (no revision, no audit row) when all are."""
    valid, invalid = valid_members(mailing_list, members)
    result = MembersResult(invalid=invalid)
    room = lock_list_room(mailing_list)
    new: list[ListMember] = []
    for kind, addresses in valid.items():
        there = set()
        for start in range(0, len(addresses), BATCH):
            there |= set(ListMember.objects.filter(mailing_list=mailing_list, kind=kind,
                                                   address__in=addresses[start:start + BATCH])
                         .values_list("address", flat=True))
        result.present += len(there)
        new += [ListMember(mailing_list=mailing_list, kind=kind, address=a) for a in addresses if a not in there]
    if room is not None and len(new) > room:
        raise ValidationError(_("Maximum number of subscribers reached."), code="limit")
    if not new:
        return result
    ListMember.objects.bulk_create(new, batch_size=BATCH, ignore_conflicts=True)
    result.added = len(new)
    MailingList.objects.filter(pk=mailing_list.pk).update(revision=domain_changed(mailing_list.domain))
    audit.record(acting_user, Action.LIST_MEMBER_IMPORT, mailing_list, source=source, added=result.added,
                 present=result.present, invalid=len(invalid))
    return result
