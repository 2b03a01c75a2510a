"""A domain's mailing lists: the list of lists, create, modify (with the text files), delete, members."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from mail.views.domain import DomainContext, domain_screen


@domain_screen
def list_list(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    raise NotImplementedError


@domain_screen
def list_create(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    raise NotImplementedError


@domain_screen
def list_modify(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    raise NotImplementedError


@domain_screen
def list_delete(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    raise NotImplementedError


@domain_screen
def members(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    raise NotImplementedError
