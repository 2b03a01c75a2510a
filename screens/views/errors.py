"""The error pages (config/urls.py's handlers, settings.CSRF_FAILURE_VIEW): in the visitor's
language, with the panel's look and a way back (the previous page when it is one of the panel's,
and the home page). The 500 and 400 pages are rendered without the request, in the layout
`error_bare.html`: what failed may be the session, the user, the database that base.html's
context reads, or the request itself (a Host header refused); so is any other error page when
base.html cannot be rendered."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseServerError
from django.shortcuts import render
from django.template import loader
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)
BARE = "error_bare.html"


def previous_page(request: HttpRequest) -> str:
    """The page the visitor came from (Referer) when it is one of the panel's; "" otherwise."""
    referer = request.META.get("HTTP_REFERER", "")
    try:
        host = request.get_host()
    except Exception:  # noqa: BLE001 - a request refused for its Host header (400) has no safe host
        return ""
    same_site = url_has_allowed_host_and_scheme(referer, allowed_hosts={host}, require_https=request.is_secure())
    return referer if referer and same_site else ""


def bare(template: str, back: str = "") -> str:
    """An error page in the layout that reads nothing of the request."""
    return loader.get_template(template).render({"layout": BARE, "back": back})


def _page(request: HttpRequest, template: str, status: int) -> HttpResponse:
    """The page in base.html (who is signed in, the language switch), else in the bare layout."""
    back = previous_page(request)
    try:
        return render(request, template, {"layout": "base.html", "back": back}, status=status)
    except Exception:
        logger.exception("the error page %s could not be rendered in base.html", template)
        return HttpResponse(bare(template, back), status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The request itself may be what is wrong (its Host header): the page reads nothing of it."""
    return HttpResponseBadRequest(bare("400.html", previous_page(request)))


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _page(request, "403.html", 403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _page(request, "404.html", 404)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without its valid CSRF token: said in plain words, with the form to go back to."""
    return _page(request, "403_csrf.html", 403)


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 page from its template alone (no request, no context processor); should even that
    fail (a missing static manifest...), a plain sentence in the active language."""
    try:
        return HttpResponseServerError(bare("500.html"))
    except Exception:
        logger.exception("the 500 page could not be rendered")
        return HttpResponseServerError(_("Server error. Try again in a moment."),
                                       content_type="text/plain; charset=utf-8")
