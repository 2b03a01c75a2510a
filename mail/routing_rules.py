"""Where a redirect may point: one rule for every redirect the panel makes.

A redirect is a forward, a mailbox that forwards, the forward a deleted mailbox leaves, a robot's
copy, or a catch-all that sends unknown names on (to a remote address, or to the same name of
another domain). It must reach a final address: a mailbox that keeps its mail, a robot without
copy, a mailing list, an address of another server. An address of the customer's own domains
that redirects again is refused as a destination (a chain: mail goes further than the person meant,
and a loop loses it all), and the other way round an address cannot start to redirect while a
redirect points at it. Names of a domain that do not exist go to its catch-all.
An alias domain's addresses are its target's (`name@alias` is `name@target`): the rules read a
destination at one of the customer's alias domains as the same name at the domain it is an alias of.

A mailbox that forwards with "keep a copy" delivers its mail: it is final as a destination, and a
redirect may point at it while it forwards. Mail may then go on from it, so each redirect is
followed through such mailboxes (and catch-alls) until it leaves the customer's domains or stops:
one that would come back to where it started is refused (a loop).

These rules hold inside one customer's own domains. An address of another customer is opaque,
exactly as an address of another server: a redirect to it is never refused for what it is (no
kind revealed), and it never stops that customer from changing the address (no pin). A loop
across customers is left to the mail servers' own loop detection (Postfix bounces a message past
`hopcount_limit` Received headers: "mail forwarding loop"; tests/e2e/test_cross_customer_loop_e2e.py).

The service functions call these checks inside their transaction. Each check first locks the rows
of the customer's domains the redirect joins (its own and its destinations', in one order): two
redirects that together would make a chain always share a domain, so the later one sees the
earlier one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial, reduce
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


def _own_domains(domain: Domain) -> Any:
    """The domains of `domain`'s customer: the only ones the rules look into."""
    return Domain.objects.filter(pack__customer_id=domain.pack.customer_id)


def _own_domain(own: Domain, host: str) -> Domain | None:
    """The domain of `own`'s customer where mail to `host` is delivered: the one named `host`, or
    the one it is an alias of; None: another customer's, or another server's."""
    domain = _own_domains(own).filter(name=host).select_related("alias_of").first()
    return domain.alias_of if domain is not None and domain.alias_of is not None else domain


def names_of(domain: Domain) -> set[str]:
    """The names mail reaches `domain` by: its own and its alias domains'."""
    return {domain.name, *Domain.objects.filter(alias_of=domain).values_list("name", flat=True)}


def _at(domain: Domain, host: str) -> bool:
    """Whether mail to `host` is mail to `domain` (its own name, or one of its alias domains)."""
    return host == domain.name or Domain.objects.filter(name=host, alias_of=domain).exists()


def lock_domains(domain: Domain, names: Iterable[str]) -> None:
    """Lock the rows of `domain`'s customer's domains among `names` (`domain` included) and of the
    domains the alias domains among them are aliases of, in primary-key order (no deadlock)."""
    names = {domain.name, *names}
    own = _own_domains(domain)
    targets = own.filter(name__in=names, alias_of__isnull=False).values("alias_of_id")
    list(own.select_for_update(of=("self",)).filter(Q(name__in=names) | Q(pk__in=targets))
         .order_by("pk").values_list("pk"))


def _name_redirects(domain: Domain, local: str, *, tagged: bool = True) -> bool | None:
    """Whether a name of the domain sends its mail on (True) or keeps it (False); None: no such
    name. A `name+tag` that is not a name itself is `name`'s (Postfix's recipient delimiter),
    unless `tagged` is false. A mailing list (the lists app, above mail) is read through the
    domain's relation `lists`."""
    if Forward.objects.filter(domain=domain, local_part=local).exists():
        return True
    mailbox = Mailbox.objects.filter(domain=domain, local_part=local).values_list("routing", "keep_copy").first()
    if mailbox is not None:
        return mailbox == (Routing.FORWARD, False)  # with a copy, it delivers: final
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
    name, _sep, host = address.rpartition("@")
    if not _at(domain, host):
        return False
    return name == local or (
        name.startswith(f"{local}+") and _name_redirects(domain, name, tagged=False) is None
    )


def reaches(domain: Domain, local: str, address: str) -> bool:
    """Whether mail to `address` (normalised) is mail to local@domain (`local+tag` included)."""
    return _reaches(domain, local, address)


def _is_unknown(domain: Domain, address: str) -> bool:
    local, _sep, host = address.rpartition("@")
    return _at(domain, host) and _name_redirects(domain, local) is None


def _refuse_chained(own: Domain, destinations: list[str]) -> None:
    """Refuse a destination of `own`'s customer that redirects again; another customer's
    address is final, as another server's."""
    for address in destinations:
        local, _sep, host = address.rpartition("@")
        domain = _own_domain(own, host)
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


def _onward(own: Domain, address: str) -> list[str]:
    """Where mail to `address` goes on from there, when it is an address of `own`'s customer: a
    forward's or a forwarding mailbox's destinations, a robot's copy, or what the catch-all does
    with a name that does not exist; a `name+tag` that is not a name itself is `name`'s."""
    local, _sep, host = address.rpartition("@")
    domain = _own_domain(own, host)
    if domain is None:
        return []
    found = (Forward.objects.filter(domain=domain, local_part=local).values_list("destinations", flat=True).first()
             or Mailbox.objects.filter(domain=domain, local_part=local, routing=Routing.FORWARD)
             .values_list("forward_to", flat=True).first())
    if found:
        return list(found)
    copy_to = Robot.objects.filter(domain=domain, local_part=local).values_list("copy_to", flat=True).first()
    if copy_to is not None:
        return [copy_to] if copy_to else []
    if _name_redirects(domain, local, tagged=False) is not None:  # a mailbox or a list: delivered here
        return []
    if "+" in local and _name_redirects(domain, local.split("+", 1)[0]) is not None:
        return _onward(own, f"{local.split('+', 1)[0]}@{host}")
    catchall = CatchAll.objects.filter(domain=domain).first()
    if catchall is None:
        return []
    targets: dict[str, list[str]] = {CatchAllMode.MAILBOX: [f"{catchall.target}@{host}"],
                                     CatchAllMode.REMOTE: [catchall.target],
                                     CatchAllMode.DOMAIN: [f"{local}@{catchall.target}"]}
    return targets.get(catchall.mode, [])


def _refuse_loop(own: Domain, destinations: list[str], *, source: str, comes_back: Callable[[str], bool]) -> None:
    """Follow mail sent to `destinations` through the customer's own addresses (mailboxes that
    forward with a copy, catch-alls: what the chain rule lets through); refuse when it comes back
    to `source` (`comes_back`). Each address is followed once: the walk ends."""
    for start in destinations:
        seen, todo = set(), [start]
        while todo:
            address = todo.pop()
            if comes_back(address):
                raise ValidationError(
                    _("Mail forwarded to %(address)s would come back to %(source)s: that would be a loop.")
                    % {"address": display(start), "source": source}, code="loop")
            if address not in seen:
                seen.add(address)
                todo.extend(_onward(own, address))


def _quoted(field: str) -> Concat:
    return Concat(Value('"'), field, Value('"'), output_field=TextField())


def _sources(own: Domain, patterns: list[str], hits: Callable[[str], bool]) -> list[tuple[Domain, str]]:
    """Every redirect of `own`'s customer with a destination for which `hits` is true, as (its
    domain, its label); another customer's redirects do not count (they pin nothing).

    One query per kind of redirect finds the candidates whose destinations, as JSON text
    (`["a@x", "b@y"]`; a single address is quoted the same way), contain one of `patterns`."""
    customer_id = own.pack.customer_id

    def matching(queryset: Any, text: Any) -> Any:
        wanted = reduce(or_, (Q(text__contains=pattern) for pattern in patterns))
        return (queryset.filter(domain__pack__customer_id=customer_id).select_related("domain")
                .annotate(text=text).filter(wanted))

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


def _refuse_sources(sources: list[tuple[Domain, str]], *, message: str, **params: str) -> None:
    """Raise when `sources` (redirects of the customer's own domains) is not empty, naming them."""
    if sources:
        labels = ", ".join(sorted({label for _domain, label in sources}))
        raise ValidationError(message % {"sources": labels, **params}, code="pointed_at")


def _pointing_at(domain: Domain, local: str) -> list[tuple[Domain, str]]:
    """The customer's redirects that reach local@domain (directly or as `local+tag`), catch-all aside."""
    names = [f'"{local}@{name}"' for name in sorted(names_of(domain))]
    return _sources(domain, [*names, f'"{local}+'], lambda a: _reaches(domain, local, a))


def check_redirect(*, domain: Domain, local: str, destinations: list[str], keeps_copy: bool = False) -> None:
    """local@domain is to redirect to `destinations` (normalised addresses): none may redirect
    again, none may come back to local@domain, and no redirect may point at local@domain unless it
    is a mailbox that keeps a copy (`keeps_copy`: it still delivers)."""
    lock_domains(domain, [a.rpartition("@")[2] for a in destinations])
    if any(_reaches(domain, local, a) for a in destinations):
        raise ValidationError(_("An address cannot forward to itself."), code="loop")
    _refuse_chained(domain, destinations)
    _refuse_loop(domain, destinations, source=_label(domain, local), comes_back=lambda a: _reaches(domain, local, a))
    if keeps_copy:
        return
    sources = _pointing_at(domain, local)
    if CatchAll.objects.filter(domain=domain, mode=CatchAllMode.MAILBOX, target=local).exists():
        sources.append((domain, catchall_label(domain)))
    _refuse_sources(
        sources, address=_label(domain, local),
        message=_("%(address)s cannot forward its mail: it receives mail forwarded by %(sources)s. "
                  "Change those first (no chains)."),
    )


def check_catchall(*, domain: Domain, mode: str, target: str) -> None:
    """The domain's catch-all is to be `mode` with `target` (normalised): a remote address that
    is final, a mailbox that keeps its mail, another domain whose catch-all is final; and when
    it sends mail on, no redirect may point at a name of the domain that does not exist."""
    comes_back = partial(_is_unknown, domain)
    if mode == CatchAllMode.MAILBOX:
        lock_domains(domain, [])
        _refuse_chained(domain, [f"{target}@{domain.name}"])
        _refuse_loop(domain, [f"{target}@{domain.name}"], source=catchall_label(domain), comes_back=comes_back)
        return
    if mode not in REDIRECTING_CATCHALLS:
        return
    other = target if mode == CatchAllMode.DOMAIN else target.rpartition("@")[2]
    lock_domains(domain, [other])
    if mode == CatchAllMode.DOMAIN and _at(domain, target):
        raise ValidationError(_("%(target)s is an alias domain of this domain: its names are this domain's. "
                                "Choose another domain.") % {"target": domain_to_unicode(target)}, code="loop")
    if mode == CatchAllMode.REMOTE:
        if _is_unknown(domain, target):
            raise ValidationError(_("An address cannot forward to itself."), code="loop")
        _refuse_chained(domain, [target])
        _refuse_loop(domain, [target], source=catchall_label(domain), comes_back=comes_back)
    else:
        target_domain = _own_domain(domain, target)
        if target_domain is not None and _catchall_redirects(target_domain):
            raise ValidationError(
                _("The catch-all of %(domain)s itself sends mail on: choose the final domain instead.")
                % {"domain": target_domain.unicode_name},
                code="chain",
            )
        if target_domain is not None:  # its catch-all may give unknown names to a mailbox that forwards with a copy
            catchall = CatchAll.objects.filter(domain=target_domain, mode=CatchAllMode.MAILBOX).first()
            if catchall is not None:
                _refuse_loop(domain, [f"{catchall.target}@{target}"], source=catchall_label(domain),
                             comes_back=comes_back)
    names = names_of(domain)
    sources = _sources(domain, [f'@{name}"' for name in sorted(names)], comes_back)
    sources += [(c.domain, catchall_label(c.domain)) for c in CatchAll.objects.filter(
        mode=CatchAllMode.DOMAIN, target__in=names, domain__pack__customer_id=domain.pack.customer_id,
    ).select_related("domain")]
    _refuse_sources(
        sources,
        message=_("The catch-all cannot send mail on: mail forwarded by %(sources)s goes to names of "
                  "this domain that do not exist. Change those first (no chains)."),
    )


def check_rename(*, domain: Domain, local: str) -> None:
    """local@domain is to take another name: the redirects of its own domain follow it (the
    rename rewrites them), those of the customer's other domains would lose their mail: refused,
    named. Another customer's redirects do not count: where they point is theirs to mind."""
    lock_domains(domain, [])
    _refuse_sources(
        [(d, label) for d, label in _pointing_at(domain, local) if d.pk != domain.pk],
        address=_label(domain, local),
        message=_("%(address)s cannot be renamed: it receives mail forwarded by %(sources)s, of another "
                  "domain. Change those first."),
    )


def check_removal(*, domain: Domain, local: str) -> None:
    """local@domain is to disappear: when the domain's catch-all sends unknown names on, no
    redirect may point at it (its mail would go through the catch-all: a chain)."""
    lock_domains(domain, [])
    if not _catchall_redirects(domain):
        return
    _refuse_sources(
        _pointing_at(domain, local), address=_label(domain, local),
        message=_("%(address)s cannot be deleted: it receives mail forwarded by %(sources)s, which "
                  "the catch-all would send on (no chains)."),
    )
