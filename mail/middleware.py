"""Sets `request.mailbox`: the mailbox logged in through the QmailAdmin-style form, or None."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from mail.auth import PanelRequest, mailbox_from_session


class MailboxSessionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: PanelRequest) -> HttpResponse:
        request.mailbox = mailbox_from_session(request)
        return self.get_response(request)
