"""State changes of mailing lists and their members: one function per act, one transaction each."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, Q
from django.utils.translation import gettext as _

from hosting import audit
from hosting.audit import Action
from hosting.models import Domain
from lists.models import ArchiveAccess, Language, ListMember, MailingList, MemberKind, Posting, ReplyTo
from mail.models import Forward, Mailbox, Robot
from mail.services import claim_name, delete_address, set_fields, touch
from mail.validators import clean_text, normalize_address
from mailhost.render import list_bases, list_sub_addresses
from provisioning.revisions import domain_changed

OPTION_FIELDS = (
    "digest", "remote_admin", "remote_admin_list", "request_address", "private", "sub_confirm", "sub_moderate",
    "unsub_confirm", "archive",
)
MAX_LIST_NAME = 45  # 64 minus the longest sub-address suffix, "-digest-unsubscribe"
MODERATED_POSTING = (Posting.SUBSCRIBERS_MODERATED, Posting.MODERATORS, Posting.MODERATED)
# The text files of a list the panel lets its owner edit (mlmmj's names, `text/<name>` on the host).
TEXT_FILES = ("prologue", "help", "finish-sub", "deny-post", "moderate-post", "notify", "digest")
MAX_TEXT = 20_000


def _list_fields(*, owner: str, prefix: str, posting: str, reply_to: str, reply_to_address: str, trailer: str,
                 archive_access: str, language: str, options: dict[str, bool]) -> dict[str, Any]:
    """The validated values of a list's settings (create and modify share them)."""
    if posting not in Posting.values or reply_to not in ReplyTo.values or archive_access not in ArchiveAccess.values \
            or language not in Language.values:
        raise ValidationError(_("Choose one of the options."), code="invalid")
    unknown = set(options) - set(OPTION_FIELDS)
    if unknown:
        raise TypeError(f"unknown list options: {sorted(unknown)}")
    if reply_to == ReplyTo.ADDRESS and not (reply_to_address or "").strip():
        raise ValidationError(_("Enter the address replies go to."), code="invalid")
    return {
        "owner": normalize_address(owner),
        "prefix": clean_text(prefix, max_length=64, single_line=True),
        "posting": posting, "reply_to": reply_to,
        "reply_to_address": normalize_address(reply_to_address) if reply_to == ReplyTo.ADDRESS else "",
        "trailer": clean_text(trailer, max_length=2000),
        "archive_access": archive_access, "language": language,
        **{k: bool(v) for k, v in options.items()},
    }


def _check_list_addresses(domain: Domain, local: str) -> None:
    """A list takes more than its name (which `claim_name` checked): `list+anything` (mlmmj's
    commands: no "+" in a list's name) and its ezmlm-style addresses (`list-subscribe`...:
    `render.list_sub_addresses`); none may be a mailbox's, forward's or robot's, nor another
    list's (`news-digest-subscribe` is list `news`'s, so no list `news-digest` beside it). One query."""
    if "+" in local:
        raise ValidationError(_("A list name cannot contain +."), code="invalid")
    if len(local) > MAX_LIST_NAME:
        raise ValidationError(_("A list's name has at most %(max)d characters: its addresses (such as "
                                "name-digest-unsubscribe@) must fit in 64.") % {"max": MAX_LIST_NAME},
                              code="max_length")
    subs = set(list_sub_addresses(local))
    names = Q(local_part__in=subs) | Q(local_part__startswith=f"{local}+")
    lists = subs | {base for sub in subs for base in list_bases(sub)}
    if Domain.objects.filter(pk=domain.pk).filter(
        Exists(Mailbox.objects.filter(names, domain=domain))
        | Exists(Forward.objects.filter(names, domain=domain))
        | Exists(Robot.objects.filter(names, domain=domain))
        | Exists(domain.lists.filter(name__in=lists))
    ).exists():
        raise ValidationError(_("Name already used."), code="unique")


@transaction.atomic
def list_create(
    *, domain: Domain, name: str, owner: str, prefix: str = "", posting: str = Posting.SUBSCRIBERS,
    reply_to: str = ReplyTo.SENDER, reply_to_address: str = "", trailer: str = "",
    archive_access: str = ArchiveAccess.SUBSCRIBERS, language: str = Language.FRENCH, acting_user: Any,
    **options: bool,
) -> MailingList:
    """Create a list; its owner is subscribed, and made moderator when the list is moderated."""
    _pack, local = claim_name(domain, name, limit="max_lists", rows=MailingList.objects,
                              full=_("Maximum number of mailing lists reached."))
    _check_list_addresses(domain, local)
    fields = _list_fields(owner=owner, prefix=prefix, posting=posting, reply_to=reply_to,
                          reply_to_address=reply_to_address, trailer=trailer, archive_access=archive_access,
                          language=language, options=options)
    mailing_list = MailingList.objects.create(domain=domain, name=local, revision=domain_changed(domain), **fields)
    owner_address = fields["owner"]
    ListMember.objects.create(mailing_list=mailing_list, address=owner_address, kind=MemberKind.SUBSCRIBER)
    if posting in MODERATED_POSTING:
        ListMember.objects.create(mailing_list=mailing_list, address=owner_address, kind=MemberKind.MODERATOR)
    audit.record(acting_user, Action.LIST_CREATE, mailing_list)
    return mailing_list


@transaction.atomic
def list_update(
    *, mailing_list: MailingList, owner: str, prefix: str, posting: str, reply_to: str, reply_to_address: str,
    trailer: str, archive_access: str, language: str, acting_user: Any, **options: bool,
) -> None:
    """Change a list's settings; the audit row holds each changed field as [before, after]. A list
    that becomes moderated gets its owner as moderator when it has none."""
    fields = _list_fields(owner=owner, prefix=prefix, posting=posting, reply_to=reply_to,
                          reply_to_address=reply_to_address, trailer=trailer, archive_access=archive_access,
                          language=language, options=options)
    changed = set_fields(mailing_list, fields)
    if not changed:
        return
    if posting in MODERATED_POSTING and not mailing_list.members.filter(kind=MemberKind.MODERATOR).exists():
        ListMember.objects.create(mailing_list=mailing_list, address=mailing_list.owner, kind=MemberKind.MODERATOR)
    touch(mailing_list, domain_changed(mailing_list.domain), *changed)
    audit.record(acting_user, Action.LIST_UPDATE, mailing_list, changes=changed)


@transaction.atomic
def list_set_text(*, mailing_list: MailingList, name: str, text: str, acting_user: Any) -> None:
    """Replace one of the list's text files (`TEXT_FILES`); an empty text restores mlmmj's own."""
    if name not in TEXT_FILES:
        raise ValidationError(_("Choose one of the options."), code="invalid")
    text = clean_text(text, max_length=MAX_TEXT)
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


@transaction.atomic
def list_member_add(*, mailing_list: MailingList, address: str, kind: str = MemberKind.SUBSCRIBER,
                    acting_user: Any) -> ListMember:
    if kind not in MemberKind.values:
        raise ValidationError(_("Choose one of the options."), code="invalid")
    member, created = ListMember.objects.get_or_create(
        mailing_list=mailing_list, address=normalize_address(address), kind=kind
    )
    if not created:
        return member
    MailingList.objects.filter(pk=mailing_list.pk).update(revision=domain_changed(mailing_list.domain))
    audit.record(acting_user, Action.LIST_MEMBER_ADD, mailing_list, address=member.address, kind=kind)
    return member


@transaction.atomic
def list_member_remove(*, mailing_list: MailingList, address: str, kind: str = MemberKind.SUBSCRIBER,
                       acting_user: Any) -> None:
    removed, _by_model = ListMember.objects.filter(
        mailing_list=mailing_list, address=address.strip().lower(), kind=kind
    ).delete()
    if not removed:
        return
    MailingList.objects.filter(pk=mailing_list.pk).update(revision=domain_changed(mailing_list.domain))
    audit.record(acting_user, Action.LIST_MEMBER_REMOVE, mailing_list, address=address, kind=kind)


@transaction.atomic
def list_delete(*, mailing_list: MailingList, acting_user: Any) -> None:
    delete_address(mailing_list, local=mailing_list.name, action=Action.LIST_DELETE, acting_user=acting_user)
