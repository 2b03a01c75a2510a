"""Where a redirect may point: one rule for every redirect the panel makes.

A redirect is a forward, a mailbox that forwards, the forward a deleted mailbox leaves, a robot's
copy, or a catch-all that sends unknown names on (to a remote address, or to the same name of
another domain). It must reach a final address: a mailbox that keeps its mail, a robot without
copy, a mailing list, an address of another server. An address hosted here (in any domain) that
redirects again is refused as a destination (a chain: mail goes further than the person meant,
and a loop loses it all), and the other way round an address cannot start to redirect while a
redirect points at it. Names of a domain that do not exist go to its catch-all.

The service functions call these checks inside their transaction. Each check first locks the rows
of the domains the redirect joins (its own and its destinations', in one order): two redirects
that together would make a chain always share a domain, so the later one sees the earlier one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import reduce
from operator import or_
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, TextField, Value
from django.db.models.functions import Cast, Concat
from django.utils.translation import gettext as _

from hosting.models import Domain
from hosting.validators import domain_to_unicode
from mail.models import CatchAll, CatchAllMode, Forward, Mailbox, Robot, Routing

REDIRECTING_CATCHALLS = (CatchAllMode.REMOTE, CatchAllMode.DOMAIN)


def display(address: str) -> str:
    """A normalised address as people read it (the domain in Unicode)."""
    local, _at, host = address.rpartition("@")
    return f"{local}@{domain_to_unicode(host)}"


def _label(domain: Domain, local: str) -> str:
    return f"{local}@{domain.unicode_name}"


def lock_domains(names: Iterable[str]) -> None:
    """Lock the rows of the hosted domains among `names`, in primary-key order (no deadlock)."""
    list(Domain.objects.select_for_update().filter(name__in=set(names)).order_by("pk").values_list("pk"))


def _name_redirects(domain: Domain, local: str, *, tagged: bool = True) -> bool | None:
    """Whether a name of the domain sends its mail on (True) or keeps it (False); None: no such
    name. A `name+tag` that is not a name itself is `name`'s (Postfix's recipient delimiter),
    unless `tagged` is false. A mailing list (the lists app, above mail) is read through the
    domain's relation `lists`."""
    if Forward.objects.filter(domain=domain, local_part=local).exists():
        return True
    routing = Mailbox.objects.filter(domain=domain, local_part=local).values_list("routing", flat=True).first()
    if routing is not None:
        return routing == Routing.FORWARD
    copy_to = Robot.objects.filter(domain=domain, local_part=local).values_list("copy_to", flat=True).first()
    if copy_to is not None:
        return bool(copy_to)
    if Domain.objects.filter(pk=domain.pk, lists__name=local).exists():
        return False
    if tagged and "+" in local:
        return _name_redirects(domain, local.split("+", 1)[0])
    return None


def _catchall_redirects(domain: Domain) -> bool:
    catchall = CatchAll.objects.filter(domain=domain).first()
    if catchall is None:
        return False
    if catchall.mode == CatchAllMode.MAILBOX:
        return bool(_name_redirects(domain, catchall.target))
    return catchall.mode in REDIRECTING_CATCHALLS


def _reaches(domain: Domain, local: str, address: str) -> bool:
    """Whether mail to `address` is mail to local@domain: the same address, or `local+tag` when
    that is not a name of its own."""
    name, _at, host = address.rpartition("@")
    if host != domain.name:
        return False
    return name == local or (
        name.startswith(f"{local}+") and _name_redirects(domain, name, tagged=False) is None
    )


def reaches(domain: Domain, local: str, address: str) -> bool:
    """Whether mail to `address` (normalised) is mail to local@domain (`local+tag` included)."""
    return _reaches(domain, local, address)


def _is_unknown(domain: Domain, address: str) -> bool:
    local, _at, host = address.rpartition("@")
    return host == domain.name and _name_redirects(domain, local) is None


def _refuse_chained(destinations: list[str]) -> None:
    for address in destinations:
        local, _at, host = address.rpartition("@")
        domain = Domain.objects.filter(name=host).first()
        if domain is None:
            continue
        redirects = _name_redirects(domain, local)
        if redirects:
            raise ValidationError(
                _("%(address)s is itself a forward: forward to the final address instead.")
                % {"address": display(address)},
                code="chain",
            )
        if redirects is None and _catchall_redirects(domain):
            raise ValidationError(
                _("%(address)s is not an address of %(domain)s: its catch-all sends it on. "
                  "Forward to the final address instead.")
                % {"address": display(address), "domain": domain.unicode_name},
                code="chain",
            )


def _quoted(field: str) -> Concat:
    return Concat(Value('"'), field, Value('"'), output_field=TextField())


def _sources(patterns: list[str], hits: Callable[[str], bool]) -> list[tuple[Domain, str]]:
    """Every redirect with a destination for which `hits` is true, as (its domain, its label).

    One query per kind of redirect finds the candidates whose destinations, as JSON text
    (`["a@x", "b@y"]`; a single address is quoted the same way), contain one of `patterns`."""
    def matching(queryset: Any, text: Any) -> Any:
        wanted = reduce(or_, (Q(text__contains=pattern) for pattern in patterns))
        return queryset.select_related("domain__pack").annotate(text=text).filter(wanted)

    found: list[tuple[Domain, str]] = []
    for forward in matching(Forward.objects.all(), Cast("destinations", TextField())):
        if any(hits(a) for a in forward.destinations):
            found.append((forward.domain, _label(forward.domain, forward.local_part)))
    for mailbox in matching(Mailbox.objects.filter(routing=Routing.FORWARD), Cast("forward_to", TextField())):
        if any(hits(a) for a in mailbox.forward_to):
            found.append((mailbox.domain, _label(mailbox.domain, mailbox.local_part)))
    for robot in matching(Robot.objects.exclude(copy_to=""), _quoted("copy_to")):
        if hits(robot.copy_to):
            found.append((robot.domain, _label(robot.domain, robot.local_part)))
    for catchall in matching(CatchAll.objects.filter(mode=CatchAllMode.REMOTE), _quoted("target")):
        if hits(catchall.target):
            found.append((catchall.domain, catchall_label(catchall.domain)))
    return found


def catchall_label(domain: Domain) -> str:
    return _("the catch-all of %(domain)s") % {"domain": domain.unicode_name}


def _refuse_sources(
    domain: Domain, sources: list[tuple[Domain, str]], *, seen: str, hidden: str, **params: str
) -> None:
    """Raise when `sources` is not empty: `seen` names the sources of the domain's own customer;
    `hidden` says only that another customer's redirect is in the way."""
    if not sources:
        return
    customer_id = domain.pack.customer_id
    labels = [label for source_domain, label in sources if source_domain.pack.customer_id == customer_id]
    if labels:
        raise ValidationError(seen % {"sources": ", ".join(sorted(set(labels))), **params}, code="pointed_at")
    raise ValidationError(hidden % params, code="pointed_at")


def _pointing_at(domain: Domain, local: str) -> list[tuple[Domain, str]]:
    """The redirects that reach local@domain (directly or as `local+tag`), catch-all aside."""
    return _sources([f'"{local}@{domain.name}"', f'"{local}+'], lambda a: _reaches(domain, local, a))


def check_redirect(*, domain: Domain, local: str, destinations: list[str]) -> None:
    """local@domain is to redirect to `destinations` (normalised addresses): none may redirect
    again, none may come back to local@domain, and no redirect may point at local@domain."""
    lock_domains([domain.name, *(a.rpartition("@")[2] for a in destinations)])
    if any(_reaches(domain, local, a) for a in destinations):
        raise ValidationError(_("An address cannot forward to itself."), code="loop")
    _refuse_chained(destinations)
    sources = _pointing_at(domain, local)
    if CatchAll.objects.filter(domain=domain, mode=CatchAllMode.MAILBOX, target=local).exists():
        sources.append((domain, catchall_label(domain)))
    _refuse_sources(
        domain, sources, address=_label(domain, local),
        seen=_("%(address)s cannot forward its mail: it receives mail forwarded by %(sources)s. "
               "Change those first (no chains)."),
        hidden=_("%(address)s cannot forward its mail: an address of another customer already "
                 "forwards to it."),
    )


def check_catchall(*, domain: Domain, mode: str, target: str) -> None:
    """The domain's catch-all is to be `mode` with `target` (normalised): a remote address that
    is final, a mailbox that keeps its mail, another domain whose catch-all is final; and when
    it sends mail on, no redirect may point at a name of the domain that does not exist."""
    if mode == CatchAllMode.MAILBOX:
        lock_domains([domain.name])
        _refuse_chained([f"{target}@{domain.name}"])
        return
    if mode not in REDIRECTING_CATCHALLS:
        return
    other = target if mode == CatchAllMode.DOMAIN else target.rpartition("@")[2]
    lock_domains([domain.name, other])
    if mode == CatchAllMode.REMOTE:
        if _is_unknown(domain, target):
            raise ValidationError(_("An address cannot forward to itself."), code="loop")
        _refuse_chained([target])
    else:
        target_domain = Domain.objects.filter(name=target).first()
        if target_domain is not None and _catchall_redirects(target_domain):
            raise ValidationError(
                _("The catch-all of %(domain)s itself sends mail on: choose the final domain instead.")
                % {"domain": target_domain.unicode_name},
                code="chain",
            )
    sources = _sources([f'@{domain.name}"'], lambda a: _is_unknown(domain, a))
    sources += [(c.domain, catchall_label(c.domain)) for c in
                CatchAll.objects.filter(mode=CatchAllMode.DOMAIN, target=domain.name).select_related("domain__pack")]
    _refuse_sources(
        domain, sources,
        seen=_("The catch-all cannot send mail on: mail forwarded by %(sources)s goes to names of "
               "this domain that do not exist. Change those first (no chains)."),
        hidden=_("The catch-all cannot send mail on: an address of another customer already "
                 "forwards to a name of this domain that does not exist."),
    )


def check_rename(*, domain: Domain, local: str) -> None:
    """local@domain is to take another name: the redirects of its own domain follow it (the
    rename rewrites them), those of other domains would lose their mail: refused, named when they
    are the same customer's."""
    lock_domains([domain.name])
    _refuse_sources(
        domain, [(d, label) for d, label in _pointing_at(domain, local) if d.pk != domain.pk],
        address=_label(domain, local),
        seen=_("%(address)s cannot be renamed: it receives mail forwarded by %(sources)s, of another "
               "domain. Change those first."),
        hidden=_("%(address)s cannot be renamed: an address of another customer forwards to it."),
    )


def check_removal(*, domain: Domain, local: str) -> None:
    """local@domain is to disappear: when the domain's catch-all sends unknown names on, no
    redirect may point at it (its mail would go through the catch-all: a chain)."""
    lock_domains([domain.name])
    if not _catchall_redirects(domain):
        return
    _refuse_sources(
        domain, _pointing_at(domain, local), address=_label(domain, local),
        seen=_("%(address)s cannot be deleted: it receives mail forwarded by %(sources)s, which "
               "the catch-all would send on (no chains)."),
        hidden=_("%(address)s cannot be deleted: it receives mail forwarded by an address of "
                 "another customer, which the catch-all would send on."),
    )
