"""The access helpers of mail's own objects, beside hosting's (see hosting/access.py)."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404

from mail.models import Mailbox


def get_mailbox_for_user(user: Any, pk: Any) -> Mailbox:
    return get_object_or_404(Mailbox.objects.visible_to(user).select_related("domain"), pk=pk)
