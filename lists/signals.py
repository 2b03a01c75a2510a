"""A renamed mailbox's place in its domain's lists follows it: its subscriptions (every kind), the
lists it owns and those whose replies go to it (`mail.rename.mailbox_renamed`)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from hosting.models import Domain
from lists.models import ListMember, MailingList
from mail.rename import mailbox_renamed


@receiver(mailbox_renamed)
def follow_rename(sender: Any, *, domain: Domain, old: str, new: str, revision: int, **kwargs: Any) -> list[str]:
    """Rewrite old@domain as new@domain in the domain's lists, each list changed stamped with the
    rename's revision (the host gets its new membership with the rename). A member already there
    under the new address is kept once. Returns "list@domain" of each list changed."""
    old_address, new_address = f"{old}@{domain.name}", f"{new}@{domain.name}"
    lists = MailingList.objects.filter(domain=domain)
    members = ListMember.objects.filter(mailing_list__domain=domain, address=old_address)
    touched = set(members.values_list("mailing_list_id", flat=True))
    touched |= set(lists.filter(owner=old_address).values_list("pk", flat=True))
    touched |= set(lists.filter(reply_to_address=old_address).values_list("pk", flat=True))
    if not touched:
        return []
    present = set(ListMember.objects.filter(mailing_list__domain=domain, address=new_address)
                  .values_list("mailing_list_id", "kind"))
    for member in members:
        if (member.mailing_list_id, member.kind) in present:
            member.delete()
        else:
            ListMember.objects.filter(pk=member.pk).update(address=new_address)
    lists.filter(owner=old_address).update(owner=new_address)
    lists.filter(reply_to_address=old_address).update(reply_to_address=new_address)
    lists.filter(pk__in=touched).update(revision=revision)
    return [f"{name}@{domain.name}" for name in lists.filter(pk__in=touched).values_list("name", flat=True)]
