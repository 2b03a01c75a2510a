"""State changes of mailing lists and their members: one function per act, one transaction each."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from hosting import audit
from hosting.audit import Action
from hosting.models import Domain
from lists.models import ListMember, MailingList, MemberKind, Posting, ReplyTo
from mail.services import claim_name, delete_address
from mail.validators import clean_text, normalize_address
from provisioning.revisions import domain_changed

OPTION_FIELDS = (
    "digest", "remote_admin", "private", "sub_confirm", "sub_moderate", "unsub_confirm", "archive",
)


@transaction.atomic
def list_create(
    *, domain: Domain, name: str, owner: str, prefix: str = "", posting: str = Posting.SUBSCRIBERS,
    reply_to: str = ReplyTo.SENDER, reply_to_address: str = "", trailer: str = "", acting_user: Any,
    **options: bool,
) -> MailingList:
    """Create a list; its owner is subscribed, and made moderator when the list is moderated."""
    _pack, local = claim_name(domain, name, limit="max_lists", rows=MailingList.objects,
                              full=_("Maximum number of mailing lists reached."))
    if posting not in Posting.values or reply_to not in ReplyTo.values:
        raise ValidationError(_("Choose one of the options."), code="invalid")
    unknown = set(options) - set(OPTION_FIELDS)
    if unknown:
        raise TypeError(f"unknown list options: {sorted(unknown)}")
    owner_address = normalize_address(owner)
    mailing_list = MailingList.objects.create(
        domain=domain, name=local, owner=owner_address,
        prefix=clean_text(prefix, max_length=64, single_line=True),
        posting=posting, reply_to=reply_to,
        reply_to_address=normalize_address(reply_to_address) if reply_to == ReplyTo.ADDRESS else "",
        trailer=clean_text(trailer, max_length=2000),
        revision=domain_changed(domain),
        **{k: bool(v) for k, v in options.items()},
    )
    ListMember.objects.create(mailing_list=mailing_list, address=owner_address, kind=MemberKind.SUBSCRIBER)
    if posting in (Posting.SUBSCRIBERS_MODERATED, Posting.MODERATORS, Posting.MODERATED):
        ListMember.objects.create(mailing_list=mailing_list, address=owner_address, kind=MemberKind.MODERATOR)
    audit.record(acting_user, Action.LIST_CREATE, mailing_list)
    return mailing_list


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
