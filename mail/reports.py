"""What a mail host says of its mailboxes: the space each uses (its agent's usage report)."""

from __future__ import annotations

from mail.models import Mailbox


def record_usage(*, host: str, usage: dict[str, int]) -> int:
    """Store the space each mailbox of a host uses (reported by its agent); no revision change."""
    by_domain: dict[str, dict[str, int]] = {}
    for address, size in usage.items():
        local, _at, domain = str(address).rpartition("@")
        by_domain.setdefault(domain, {})[local] = max(int(size), 0)
    updated = []
    for domain, sizes in by_domain.items():
        for mailbox in Mailbox.objects.filter(
            domain__name=domain, domain__pack__mail_host__name=host, local_part__in=list(sizes)
        ).only("pk", "local_part", "quota_used_bytes"):
            if mailbox.quota_used_bytes != sizes[mailbox.local_part]:
                mailbox.quota_used_bytes = sizes[mailbox.local_part]
                updated.append(mailbox)
    Mailbox.objects.bulk_update(updated, ["quota_used_bytes"], batch_size=500)
    return len(updated)
