"""The panel's URLs and handlers, plus views that fail on purpose (tests/test_error_pages.py)."""

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import handler400, handler403, handler404, handler500
from config.urls import urlpatterns as panel_urls

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


def forbidden(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied


def bad(request: HttpRequest) -> HttpResponse:
    raise SuspiciousOperation("a test's bad request")


def broken(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a test's server error")


urlpatterns = [
    path("test-errors/403/", forbidden),
    path("test-errors/400/", bad),
    path("test-errors/500/", broken),
    *panel_urls,
]
