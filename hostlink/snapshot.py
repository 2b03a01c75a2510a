"""A domain's desired state, as the self-contained JSON document a mail host applies: complete
(`build`), or the changes since a revision the host has (`build_delta`).

The document carries everything the host needs (password hashes, quotas, routing, Sieve inputs,
list options and members) and nothing of the panel's database: the host never queries back.
Its format version and shape are those of `mailhost.contract` (FORMAT, DomainDocument,
DomainDelta; AliasDocument for an alias domain, always whole). A delta works because every row
carries the revision of its last change (`Mailbox.revision`, ...) and every deletion leaves a
`RemovedName` at its revision.
"""

from __future__ import annotations

import json
import logging
from typing import Any, TypedDict
from typing import cast as typed

from django.db.models import TextField
from django.db.models.functions import Cast

from hosting import dkim
from hosting.models import DkimKey, DkimKeyState, Domain, Language
from lists import options
from lists.models import ListMember, MailingList
from mail.models import CatchAll, CatchAllMode, Forward, Mailbox, Robot, SpamFilter, SpamMode
from mailhost import contract
from mailhost.contract import FORMAT
from mailhost.memory import cycle_collector_paused
from provisioning.models import RemovedName

log = logging.getLogger(__name__)

MB = 1024 * 1024
HOUR = 3600  # seconds


def absent(name: str, revision: int) -> contract.AbsentDocument:
    """The document that removes a domain from a host."""
    return {"format": FORMAT, "domain": name, "revision": revision, "state": "absent"}


def build(domain: Domain) -> contract.DomainDocument | contract.AliasDocument:
    """Read the domain's rows (a constant number of queries) and return its complete document; an
    alias domain's names its target and holds nothing else (`alias`)."""
    if domain.alias_of_id is not None:
        return alias(domain)
    with cycle_collector_paused():
        return {
            "format": FORMAT,
            "domain": domain.name,
            "revision": domain.revision,
            "state": "present",
            "verified": domain.verified_at is not None,
            **_objects(domain, since=None),
            **_dkim(domain),
            "language": _language(domain),
            "spam": _spam(domain),
        }


def alias(domain: Domain) -> contract.AliasDocument:
    """An alias domain's document: its target's name (one query unless `alias_of` was read with
    it), whether it is proven; always whole (hostlink.push never asks an alias for a delta)."""
    target = domain.alias_of
    assert target is not None  # an alias domain
    return {
        "format": FORMAT,
        "domain": domain.name,
        "revision": domain.revision,
        "state": "present",
        "verified": domain.verified_at is not None,
        "alias_of": target.name,
    }


def build_delta(domain: Domain, base: int) -> contract.DomainDelta:
    """The rows changed after revision `base` and the names removed after it (a constant number
    of queries, each on an index (domain, revision): its cost is what changed, not the domain)."""
    removed = RemovedName.objects.filter(domain=domain, revision__gt=base).order_by("name")
    return {
        "format": FORMAT,
        "domain": domain.name,
        "revision": domain.revision,
        "base": base,
        "state": "present",
        "verified": domain.verified_at is not None,
        **_objects(domain, since=base),
        "removed": list(removed.values_list("name", flat=True)),
        **_dkim(domain),  # every time: one row, and a key switched travels with the next change
        "language": _language(domain),  # every time: one value, a change travels with the next
        "spam": _spam(domain),  # every time: one row
    }


def _spam(domain: Domain) -> contract.Spam | None:
    """The domain's spam filtering (one query); None: off (no row, or its mode off)."""
    row = SpamFilter.objects.filter(domain=domain).first()
    if row is None or row.mode == SpamMode.OFF:
        return None
    return {"mode": row.mode, "score": float(row.score), "allow": list(row.allow), "block": list(row.block)}


def _language(domain: Domain) -> str:
    """The language of the host's own mail to the domain's mailboxes: its customer's (one query)."""
    language = Domain.objects.filter(pk=domain.pk).values_list("pack__customer__language", flat=True).first()
    return language or Language.FRENCH


class _DkimPart(TypedDict, total=False):
    dkim: contract.Dkim | None


def _dkim(domain: Domain) -> _DkimPart:
    """The key the host signs the domain's mail with (its ACTIVE one), unsealed: the only place the
    private key leaves the panel's database; None: no key yet (the host signs nothing for it).
    A key this panel cannot unseal (its DKIM_SEAL_KEY / SECRET_KEY changed) is logged and left
    out: the host keeps the key it has, and the domain's other changes still reach it."""
    key = DkimKey.objects.filter(domain=domain, state=DkimKeyState.ACTIVE).only(
        "selector", "sealed_private_key").first()
    if key is None:
        return {"dkim": None}
    try:
        return {"dkim": {"selector": key.selector, "private_key": dkim.unseal(key.sealed_private_key)}}
    except dkim.SealBroken as error:
        log.error("domain %s: DKIM key %s not sent: %s", domain.name, key.selector, error)
        return {}


class _Objects(TypedDict):
    mailboxes: list[contract.Mailbox]
    forwards: list[contract.Forward]
    robots: list[contract.Robot]
    catchall: contract.CatchAll
    lists: list[contract.MailingList]


# The columns a document needs, read as named tuples: no model instances (a tenth of the time
# on a domain of 100,000 mailboxes). The JSON lists are read as their text (`*_json`): most are
# empty, and Django's decoding of each took a quarter of the build.
MAILBOX_FIELDS = (
    "local_part", "password_hash", "quota_mb", "enabled", "allow_pop3", "allow_imap", "allow_smtp", "routing",
    "forward_to_json", "keep_copy", "vacation_enabled", "vacation_subject", "vacation_message", "vacation_days",
    "vacation_start", "vacation_end", "renamed_from",
)


def _objects(domain: Domain, since: int | None) -> _Objects:
    """The domain's objects, or (`since`) those changed after that revision; the catch-all always."""
    changed = {} if since is None else {"revision__gt": since}
    mailboxes = Mailbox.objects.filter(domain=domain, **changed).order_by("local_part").annotate(
        forward_to_json=Cast("forward_to", TextField())).values_list(*MAILBOX_FIELDS, named=True)
    forwards = Forward.objects.filter(domain=domain, **changed).order_by("local_part").annotate(
        destinations_json=Cast("destinations", TextField())).values_list("local_part", "destinations_json", named=True)
    robots = Robot.objects.filter(domain=domain, **changed).order_by("local_part").values_list(
        "local_part", "copy_to", "subject", "message", "reply_hours", named=True)
    lists = list(MailingList.objects.filter(domain=domain, **changed).order_by("name"))
    members = _members(domain, lists, whole=since is None)
    catchall = CatchAll.objects.filter(domain=domain).first()
    return {
        "mailboxes": [_mailbox(m) for m in mailboxes],
        "forwards": [{"local_part": f.local_part, "destinations": _json_list(f.destinations_json)} for f in forwards],
        "robots": [
            {"local_part": r.local_part, "copy_to": r.copy_to, "subject": r.subject, "message": r.message,
             "reply_seconds": r.reply_hours * HOUR}
            for r in robots
        ],
        "catchall": {
            "mode": catchall.mode if catchall else CatchAllMode.BOUNCE.value,
            "target": catchall.target if catchall else "",
        },
        "lists": [_list(ml, members.get(ml.pk, {})) for ml in lists],
    }


def _json_list(text: str) -> list[str]:
    """A JSON list column read as its text (see MAILBOX_FIELDS): most are empty."""
    return [] if text == "[]" else list(json.loads(text))


def _mailbox(m: Any) -> contract.Mailbox:  # a row of MAILBOX_FIELDS
    vacation: contract.Vacation | None = None
    if m.vacation_enabled:
        vacation = {
            "subject": m.vacation_subject,
            "message": m.vacation_message,
            "days": m.vacation_days,
            "start": m.vacation_start.isoformat() if m.vacation_start else None,
            "end": m.vacation_end.isoformat() if m.vacation_end else None,
        }
    return {
        "local_part": m.local_part,
        "password_hash": m.password_hash,
        "quota_bytes": m.quota_mb * MB,
        "active": m.enabled,
        "allow_pop3": m.allow_pop3,
        "allow_imap": m.allow_imap,
        "allow_smtp": m.allow_smtp,
        "routing": m.routing,
        "forward_to": _json_list(m.forward_to_json),
        "keep_copy": m.keep_copy,
        "vacation": vacation,
        "renamed_from": m.renamed_from,  # "" but while the host has not confirmed a rename
    }


def _members(domain: Domain, lists: list[MailingList], *, whole: bool) -> dict[int, dict[str, list[str]]]:
    """The members of `lists` (all the domain's when `whole`), by list and kind: one query of
    bare tuples (50,000 model instances took a second; these, a tenth of it)."""
    if not lists:
        return {}
    rows = ListMember.objects.filter(mailing_list__domain=domain) if whole else ListMember.objects.filter(
        mailing_list_id__in=[ml.pk for ml in lists])
    members: dict[int, dict[str, list[str]]] = {}
    for list_id, kind, address in rows.order_by().values_list("mailing_list_id", "kind", "address"):
        members.setdefault(list_id, {}).setdefault(kind, []).append(address)
    return members


def _list(ml: MailingList, members: dict[str, list[str]]) -> contract.MailingList:
    """A list's entry: its name, its options (`lists.options`, each under the contract's name for
    it), its edited texts and its members by kind."""
    return typed(contract.MailingList, {
        "name": ml.name,
        **{option.field: getattr(ml, option.name) for option in options.OPTIONS},
        "texts": dict(ml.texts),
        "subscribers": sorted(members.get("subscriber", [])),
        "moderators": sorted(members.get("moderator", [])),
        "digest_subscribers": sorted(members.get("digest", [])),
        "nomail_subscribers": sorted(members.get("nomail", [])),
    })
