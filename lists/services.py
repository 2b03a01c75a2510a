"""State changes of mailing lists and their members: one function per act, one transaction each."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Exists, Q
from django.utils.translation import gettext as _

from hosting import audit
from hosting.audit import Action
from hosting.models import UNLIMITED, Domain
from hosting.roles import Seat
from lists import options
from lists.models import ListMember, MailingList, MemberKind, Posting, ReplyTo
from mail.models import Forward, Mailbox, Robot
from mail.services import claim_name, delete_address, set_fields, touch
from mail.validators import clean_text, normalize_address
from mailhost.lists import TEXT_HEADERS, text_header_problem
from mailhost.render import list_bases, list_sub_addresses
from provisioning.revisions import domain_changed

MAX_LIST_NAME = 45  # 64 minus the longest sub-address suffix, "-digest-unsubscribe"
MODERATED_POSTING = (Posting.SUBSCRIBERS_MODERATED, Posting.MODERATORS, Posting.MODERATED)
# The text files of a list the panel lets its owner edit (mlmmj's names, `text/<name>` on the host).
TEXT_FILES = ("prologue", "help", "finish-sub", "deny-post", "moderate-post", "notify", "digest")
MAX_TEXT = 20_000


def _list_fields(settings: dict[str, Any]) -> dict[str, Any]:
    """The validated values of a list's settings (`lists.options`: create and modify share them),
    each option given."""
    unknown = set(settings) - set(options.NAMES)
    if unknown:
        raise TypeError(f"unknown list options: {sorted(unknown)}")
    fields: dict[str, Any] = {}
    for name, value in settings.items():
        column = option_column(name)
        if column.choices and value not in {key for key, _label in column.choices}:
            raise ValidationError(_("Choose one of the options."), code="invalid")
        fields[name] = bool(value) if column.get_internal_type() == "BooleanField" else value
    if fields["reply_to"] == ReplyTo.ADDRESS and not (fields["reply_to_address"] or "").strip():
        raise ValidationError(_("Enter the address replies go to."), code="invalid")
    return {
        **fields,
        "owner": normalize_address(fields["owner"]),
        "prefix": clean_text(fields["prefix"], max_length=64, single_line=True),
        "reply_to_address": (normalize_address(fields["reply_to_address"]) if fields["reply_to"] == ReplyTo.ADDRESS
                             else ""),
        "trailer": clean_text(fields["trailer"], max_length=2000),
    }


def option_column(name: str) -> models.Field:
    """The MailingList column of an option (lists.options: each option is one)."""
    column = MailingList._meta.get_field(name)
    assert isinstance(column, models.Field)  # a column, not a relation's other side
    return column


def _defaults() -> dict[str, Any]:
    """Each option's default: its column's."""
    return {name: option_column(name).get_default() for name in options.NAMES}


def _check_list_addresses(domain: Domain, local: str) -> None:
    """A list takes more than its name (which `claim_name` checked): `list+anything` (mlmmj's
    commands: no "+" in a list's name) and its ezmlm-style addresses (`list-subscribe`...:
    `render.list_sub_addresses`); none may be a mailbox's, forward's or robot's, nor another
    list's (`news-digest-subscribe` is list `news`'s, so no list `news-digest` beside it). One query,
    and one more to name what holds the address when one does."""
    if "+" in local:
        raise ValidationError(_("A list name cannot contain +."), code="invalid")
    if len(local) > MAX_LIST_NAME:
        raise ValidationError(_("A list's name has at most %(max)d characters: its addresses (such as "
                                "name-digest-unsubscribe@) must fit in 64.") % {"max": MAX_LIST_NAME},
                              code="max_length")
    subs = set(list_sub_addresses(local))
    names = Q(local_part__in=subs) | Q(local_part__startswith=f"{local}+")
    lists = subs | {base for sub in subs for base in list_bases(sub)}
    holders = {
        "mailbox": Mailbox.objects.filter(names, domain=domain).values_list("local_part", flat=True),
        "forward": Forward.objects.filter(names, domain=domain).values_list("local_part", flat=True),
        "robot": Robot.objects.filter(names, domain=domain).values_list("local_part", flat=True),
        "list": domain.lists.filter(name__in=lists).values_list("name", flat=True),
    }
    found = Domain.objects.filter(pk=domain.pk).annotate(
        **{kind: Exists(rows) for kind, rows in holders.items()}).values(*holders).get()
    kind = next((kind for kind in holders if found[kind]), None)
    if kind is not None:  # the refusal says what holds which address (the domain's own objects only)
        held = f"{holders[kind].first()}@{domain.unicode_name}"
        raise ValidationError({
            "mailbox": _("Name already used. The list would need %(address)s, which is already a POP account."),
            "forward": _("Name already used. The list would need %(address)s, which is already a forward."),
            "robot": _("Name already used. The list would need %(address)s, which is already a mail robot."),
            "list": _("Name already used. The mailing list %(address)s already uses addresses this list would "
                      "need."),
        }[kind] % {"address": held}, code="unique")


@transaction.atomic
def list_create(*, domain: Domain, name: str, owner: str, acting_user: Seat | None, **settings: Any) -> MailingList:
    """Create a list with its `settings` (`lists.options`; those not given take their defaults); its
    owner is subscribed, and made moderator when the list is moderated."""
    _pack, local = claim_name(domain, name, limit="max_lists", rows=MailingList.objects,
                              full=_("Maximum number of mailing lists reached."))
    _check_list_addresses(domain, local)
    fields = _list_fields({**_defaults(), **settings, "owner": owner})
    mailing_list = MailingList.objects.create(domain=domain, name=local, revision=domain_changed(domain), **fields)
    owner_address = fields["owner"]
    ListMember.objects.create(mailing_list=mailing_list, address=owner_address, kind=MemberKind.SUBSCRIBER)
    if fields["posting"] in MODERATED_POSTING:
        ListMember.objects.create(mailing_list=mailing_list, address=owner_address, kind=MemberKind.MODERATOR)
    audit.record(acting_user, Action.LIST_CREATE, mailing_list)
    return mailing_list


@transaction.atomic
def list_update(*, mailing_list: MailingList, acting_user: Seat | None, **settings: Any) -> None:
    """Change a list's `settings` (`lists.options`; those not given stay); the audit row holds each
    changed field as [before, after]. A list that becomes moderated gets its owner as moderator
    when it has none."""
    fields = _list_fields({**{name: getattr(mailing_list, name) for name in options.NAMES}, **settings})
    changed = set_fields(mailing_list, fields)
    if not changed:
        return
    if fields["posting"] in MODERATED_POSTING and not mailing_list.members.filter(kind=MemberKind.MODERATOR).exists():
        ListMember.objects.create(mailing_list=mailing_list, address=mailing_list.owner, kind=MemberKind.MODERATOR)
    touch(mailing_list, domain_changed(mailing_list.domain), *changed)
    audit.record(acting_user, Action.LIST_UPDATE, mailing_list, changes=changed)


@transaction.atomic
def list_set_text(*, mailing_list: MailingList, name: str, text: str, acting_user: Seat | None) -> None:
    """Replace one of the list's text files (`TEXT_FILES`); an empty text restores mlmmj's own."""
    if name not in TEXT_FILES:
        raise ValidationError(_("Choose one of the options."), code="invalid")
    text = clean_text(text, max_length=MAX_TEXT)
    line = text_header_problem(text)
    if line is not None:  # the agent would send it all as body: say so rather than surprise
        raise ValidationError(
            _("“%(line)s” would be read as a mail header, which a text cannot set. A text may begin only with "
              "these headers, each written “Name: value” (without a backslash): %(allowed)s. Put that line "
              "after a first line of text.") % {"line": line[:80], "allowed": ", ".join(TEXT_HEADERS.values())},
            code="header")
    texts = dict(mailing_list.texts)
    before = texts.get(name, "")
    if text == before:
        return
    if text:
        texts[name] = text
    else:
        texts.pop(name, None)
    mailing_list.texts = texts
    touch(mailing_list, domain_changed(mailing_list.domain), "texts")
    audit.record(acting_user, Action.LIST_UPDATE, mailing_list, changes={f"text:{name}": [before, text]})


def lock_list_room(mailing_list: MailingList) -> int | None:
    """Lock the list's row (every panel path that adds members takes this lock first) and return
    how many more members its plan's `max_list_members` lets it take (every kind counted; None:
    unlimited). Members the host reports as subscribed by mail are kept even beyond it
    (lists.reports); only the panel's own additions are refused."""
    MailingList.objects.select_for_update().filter(pk=mailing_list.pk).values_list("pk").first()
    limit = Domain.objects.filter(pk=mailing_list.domain_id).values_list("pack__plan__max_list_members",
                                                                         flat=True).first()
    if limit is None or limit == UNLIMITED:
        return None
    counted = ListMember.objects.filter(mailing_list=mailing_list).order_by().values("pk")[:limit].count()
    return max(limit - counted, 0)


@transaction.atomic
def list_member_add(*, mailing_list: MailingList, address: str, kind: str = MemberKind.SUBSCRIBER,
                    acting_user: Seat | None) -> ListMember:
    if kind not in MemberKind.values:
        raise ValidationError(_("Choose one of the options."), code="invalid")
    address = normalize_address(address)
    room = lock_list_room(mailing_list)
    member = ListMember.objects.filter(mailing_list=mailing_list, address=address, kind=kind).first()
    if member is not None:
        return member
    if room == 0:
        raise ValidationError(_("Maximum number of subscribers reached."), code="limit")
    member = ListMember.objects.create(mailing_list=mailing_list, address=address, kind=kind)
    MailingList.objects.filter(pk=mailing_list.pk).update(revision=domain_changed(mailing_list.domain))
    audit.record(acting_user, Action.LIST_MEMBER_ADD, mailing_list, address=member.address, kind=kind)
    return member


@transaction.atomic
def list_member_remove(*, mailing_list: MailingList, address: str, kind: str = MemberKind.SUBSCRIBER,
                       acting_user: Seat | None) -> None:
    removed, _by_model = ListMember.objects.filter(
        mailing_list=mailing_list, address=address.strip().lower(), kind=kind
    ).delete()
    if not removed:
        return
    MailingList.objects.filter(pk=mailing_list.pk).update(revision=domain_changed(mailing_list.domain))
    audit.record(acting_user, Action.LIST_MEMBER_REMOVE, mailing_list, address=address, kind=kind)


@transaction.atomic
def list_delete(*, mailing_list: MailingList, acting_user: Seat | None) -> None:
    delete_address(mailing_list, local=mailing_list.name, action=Action.LIST_DELETE, acting_user=acting_user)
