"""What every screen of a domain shares: who may manage a domain, the context its pages get, and
how a form's service calls become one change.

Every screen of a domain takes its `pk` through `domain_screen`: the domain is fetched with
`get_domain_for_user` from the seat (404 for a domain outside the seat's tree, the same as one
that does not exist), so a domain admin sees only their domain, a customer theirs, a reseller
their customers', support and operators all. A plain mailbox user has no domain screen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, wraps
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse

from hosting.access import get_domain_for_user, get_pack_for_user, seat_of
from hosting.models import Domain, Pack, PackUsage
from hosting.roles import Role, Seat, role_of
from hosting.usage import Feature, pack_feature, room
from provisioning.models import sync_state

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations  # django-stubs' (a development requirement): types only


@dataclass
class DomainContext:
    """What every screen of a domain gets: who is asking, the domain, and its pack with its usage
    (read when a page shows it: a form's successful POST does not)."""

    seat: Seat
    domain: Domain

    @cached_property
    def pack(self) -> WithAnnotations[Pack, PackUsage]:
        return get_pack_for_user(self.seat, self.domain.pack_id)

    def feature(self, key: str) -> Feature:
        """The feature a list page shows with its counter: its own rows counted, not the others'."""
        return pack_feature(self.domain.pack, key)

    def room(self, key: str) -> Feature:
        """The feature for its add page: whether it is full, counted no further than the limit."""
        return room(self.domain.pack, key)

    def sync(self, revision: int) -> dict[str, Any]:
        """The banner of what was changed at `revision` of the domain: its state on the mail host,
        the host's error, and the URL the page asks while it is pending (static/js/sync.js)."""
        state, error = sync_state(getattr(self.domain, "sync", None), revision)
        url = reverse("screens:domain_state", args=[self.domain.pk])
        return {"state": state, "error": error, "state_url": f"{url}?revision={revision}"}

    def page(self, **extra: Any) -> dict[str, Any]:
        """The template context: the domain, the sync state of the domain's last change (an
        object's page passes its own: `**ctx.sync(obj.revision)`; the pack with its usage only
        where a page names it: `feature`)."""
        return {"domain": self.domain, "seat_can_manage": True, **self.sync(self.domain.revision), **extra}


def domain_screen(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """A screen of the domain `pk`, for the seats that may manage it (see the module). An alias
    domain holds nothing of its own: its screens answer 404, but for the views marked
    `serves_alias_domains` (its menu, which sends to its page under its target, its state, its check)."""

    @wraps(view)
    def wrapper(request: HttpRequest, pk: int, *args: Any, **kwargs: Any) -> HttpResponseBase:
        seat = seat_of(request)
        if role_of(seat) == Role.ANONYMOUS:
            return redirect(f"{reverse('screens:login')}?next={request.path}")
        domain = get_domain_for_user(seat, pk)
        if domain.alias_of_id is not None and not getattr(view, "serves_alias_domains", False):
            raise Http404
        return view(request, DomainContext(seat, domain), *args, **kwargs)

    return wrapper


def serves_alias_domains(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Mark a view of `domain_screen` (put under it) as one an alias domain has too."""
    view.serves_alias_domains = True  # type: ignore[attr-defined]
    return view


Field = str | None | dict[str, str | None]  # a field, the whole form (None), or by error code ("": else)


def apply_changes(form: Any, calls: list[tuple[Field, Callable[[], Any]]]) -> bool:
    """Run a form's service calls as one change: all of them or none (one transaction; each
    service keeps its own checks and audit row). A refusal becomes the error of the field it
    names and nothing is written. Returns whether all went through."""
    try:
        with transaction.atomic():
            for field, call in calls:
                try:
                    call()
                except ValidationError as error:
                    if not hasattr(form, "cleaned_data"):  # a form without fields, never validated
                        form.cleaned_data = {}
                    if isinstance(field, dict):
                        field = field.get(getattr(error, "code", None) or "", field.get(""))
                    form.add_error(field, error)
                    raise
    except ValidationError:
        return False
    return True


def confirm_delete(request: HttpRequest, ctx: DomainContext, obj: Any, *, delete: Callable[[], Any], back: str,
                   question: str, done: str) -> HttpResponse:
    """The "Confirmer la suppression" page of a forward or a robot: GET asks `question`, POST runs
    `delete` (the service) and goes `back` with `done`, or shows the service's refusal."""
    form = forms.Form()  # carries the service's refusal, if any
    if request.method == "POST" and apply_changes(form, [(None, delete)]):
        messages.success(request, done)
        return redirect(back, pk=ctx.domain.pk)
    return render(request, "mail/confirm_delete.html", ctx.page(
        form=form, object_label=str(obj), back=back, question=question), status=400 if form.errors else 200)
