"""A domain's screens start here: who may manage a domain, its main menu, the quick box.

Every screen of a domain takes its `pk` through `domain_screen`: the domain is fetched with
`get_domain_for_user` from the seat (404 for a domain outside the seat's tree, the same as one
that does not exist), so a domain admin sees only their domain, a customer theirs, a reseller
their customers', support and operators all. A plain mailbox user has no domain screen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from hosting.access import get_domain_for_user, get_pack_for_user, seat_of
from hosting.models import Domain, Pack
from hosting.roles import Role, role_of
from hosting.usage import Feature, pack_features, room
from mail.access import find_address
from mail.validators import normalize_local_part
from provisioning.models import sync_state


@dataclass
class DomainContext:
    """What every screen of a domain gets: who is asking, the domain, and its pack with its usage
    (read when a page shows it: a form's successful POST does not)."""

    seat: Any
    domain: Domain

    @cached_property
    def pack(self) -> Pack:
        return get_pack_for_user(self.seat, self.domain.pack_id)

    def feature(self, key: str) -> Feature:
        return next(f for f in pack_features(self.pack) if f.key == key)

    def room(self, key: str) -> Feature:
        """The feature for its add page: whether it is full, counted no further than the limit."""
        return room(self.domain.pack, key)

    def page(self, **extra: Any) -> dict[str, Any]:
        """The template context: the domain, the sync state of the domain's last change (the pack
        with its usage only where a page names it: `feature`)."""
        state, error = sync_state(getattr(self.domain, "sync", None), self.domain.revision)
        return {"domain": self.domain, "seat_can_manage": True, "state": state, "error": error, **extra}


def domain_screen(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A screen of the domain `pk`, for the seats that may manage it (see the module)."""

    @wraps(view)
    def wrapper(request: HttpRequest, pk: int, *args: Any, **kwargs: Any) -> HttpResponse:
        seat = seat_of(request)
        if role_of(seat) == Role.ANONYMOUS:
            return redirect(f"{reverse('mail:login')}?next={request.path}")
        return view(request, DomainContext(seat, get_domain_for_user(seat, pk)), *args, **kwargs)

    return wrapper


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


@domain_screen
def domain_menu(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    """The domain's main menu (QmailAdmin's "Menu principal"): the lists, the "new" links, the quick box."""
    features = [f for f in pack_features(ctx.pack) if f.shown]
    return render(request, "mail/domain_menu.html", ctx.page(features=features))


QUICK_TARGETS = {
    "mailbox": ("mail:mailbox_modify", "mail:mailbox_delete"),
    "forward": ("mail:forward_modify", "mail:forward_delete"),
    "robot": ("mail:robot_modify", "mail:robot_delete"),
    "list": ("lists:list_modify", "lists:list_delete"),  # the lists' floor: named, never imported
}


@domain_screen
def quick(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    """The quick box: a name typed, Modify or Delete pressed; the panel finds what holds the name."""
    name, action = request.GET.get("name", ""), request.GET.get("do", "modify")
    try:
        local = normalize_local_part(name)
    except ValidationError as error:
        messages.error(request, error.messages[0])
        return redirect("mail:domain", pk=ctx.domain.pk)
    found = find_address(ctx.seat, ctx.domain, local)
    if found is None:
        messages.error(request, _("Nothing is called %(name)s@%(domain)s.") % {
            "name": local, "domain": ctx.domain.unicode_name})
        return redirect("mail:domain", pk=ctx.domain.pk)
    kind, obj = found
    modify, delete = QUICK_TARGETS[kind]
    return redirect(delete if action == "delete" else modify, pk=ctx.domain.pk, obj=getattr(obj, "pk", obj))
