"""A person signing in with e-mail + password leaves any mailbox session of this browser."""

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from mail.auth import SESSION_HASH, SESSION_ID


@receiver(user_logged_in)
def end_mailbox_session(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        request.session.pop(SESSION_ID, None)
        request.session.pop(SESSION_HASH, None)
        request.mailbox = None
