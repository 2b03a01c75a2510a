"""The host names mail clients derive from an address (`autoconfig.<domain>` for Thunderbird,
`autodiscover.<domain>` for Outlook) are not the panel's: they cannot all be in ALLOWED_HOSTS,
one per customer domain. This middleware, first in the chain, answers them for the
autoconfiguration paths only, and only for a domain the panel serves (the views check it: 404
otherwise); any other path under those names goes on to Django's host check (400), so they open
nothing else of the panel.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from screens.views.autoconfig import OUTLOOK_PATHS, THUNDERBIRD_PATHS, domain_of_host, outlook, raw_host, thunderbird

VIEWS: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    **dict.fromkeys(THUNDERBIRD_PATHS, thunderbird),
    **dict.fromkeys(OUTLOOK_PATHS, outlook),
}


class ClientAutoconfigHosts:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = VIEWS.get(request.path_info)
        if view is not None and domain_of_host(raw_host(request)) is not None:
            response = view(request)
            response["X-Content-Type-Options"] = "nosniff"
            return response
        return self.get_response(request)
