"""A domain's DKIM keys: made, rotated, switched (the services; `hosting.dkim` makes and seals a key).

- `dkim_key_ensure(domain)`: the domain's signing (ACTIVE) key, made if it has none. A new domain
  gets its key from the bulk queue after its creation commits (`enqueue_ensure`, called on commit
  by `provisioning.domains.domain_create`), and the beat's `dkim_maintain` makes the keys a lost
  task or an older panel left out: an RSA key of 2048 bits costs 0.1-0.5 s of CPU, made before any
  row is locked, so no page waits for it.
- `dkim_key_rotate(domain)`: a NEXT key, published beside the ACTIVE one (the domain's page shows
  both records); the host still signs with the ACTIVE one.
- `dkim_activate_seen(domain)`: once the NEXT key's record is seen in DNS (`DkimKey.dns_seen_at`,
  set by the DNS checks), it signs and the old one is RETIRED. `dkim_maintain` (beat) calls it for
  every domain whose NEXT key was seen.

An alias domain has no key: it signs (d=alias) and publishes with its target's. Every change of
the signing key bumps the domain's revision: its document carries the ACTIVE key to its host.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from config.celery import app as panel_app
from hosting import audit, dkim
from hosting.audit import Action
from hosting.models import DkimKey, DkimKeyState, Domain
from hosting.roles import Seat
from mailhost import contract
from provisioning.revisions import domain_changed

log = logging.getLogger(__name__)

ENSURE_TASK = "provisioning.dkim_ensure"
MAINTAIN_TASK = "provisioning.dkim_maintain"
# One beat run makes at most this many missing keys, within this budget (a panel upgraded with
# 10,000 domains gets their keys over a few runs, never a run that outlasts its interval).
MAINTAIN_BATCH = 200
MAINTAIN_BUDGET_SECONDS = 40.0


def _locked(domain_id: int) -> Domain | None:
    return Domain.objects.select_for_update(of=("self",)).filter(pk=domain_id).first()


def _create(locked: Domain, made: dkim.NewKey, state: DkimKeyState) -> DkimKey:
    taken = set(DkimKey.objects.filter(domain=locked).values_list("selector", flat=True))
    now = timezone.now()
    return DkimKey.objects.create(
        domain=locked, selector=dkim.selector_for(timezone.localdate(now), taken), bits=made.bits,
        public_key=made.public_b64, sealed_private_key=dkim.seal(made.private_pem), state=state,
        activated_at=now if state == DkimKeyState.ACTIVE else None,
    )


def dkim_key_ensure(domain: Domain, *, acting_user: Seat | None = None) -> DkimKey | None:
    """The domain's ACTIVE key, made (and sent to its host) when it has none; None for an alias
    domain (it uses its target's) or a domain deleted meanwhile. Idempotent."""
    if domain.alias_of_id is not None:
        return None
    current = DkimKey.objects.filter(domain=domain, state=DkimKeyState.ACTIVE).first()
    if current is not None:
        return current
    made = dkim.new_key()  # the slow part, before any lock
    with transaction.atomic():
        locked = _locked(domain.pk)
        if locked is None or locked.alias_of_id is not None:
            return None
        current = DkimKey.objects.filter(domain=locked, state=DkimKeyState.ACTIVE).first()
        if current is not None:  # made by another call meanwhile
            return current
        key = _create(locked, made, DkimKeyState.ACTIVE)
        domain_changed(locked)
        audit.record(acting_user, Action.DKIM_KEY_CREATE, locked, selector=key.selector)
    domain.revision = locked.revision
    return key


def dkim_key_rotate(domain: Domain, *, acting_user: Seat | None) -> DkimKey:
    """Publish a new key beside the signing one (state NEXT); it signs once its record is seen
    (`dkim_activate_seen`). A domain without a key gets its first one, signing at once; a rotation
    already under way returns its NEXT key."""
    if domain.alias_of_id is not None:
        raise ValidationError(_("An alias domain signs with the key of the domain it is an alias of."),
                              code="alias")
    if not DkimKey.objects.filter(domain=domain, state=DkimKeyState.ACTIVE).exists():
        first = dkim_key_ensure(domain, acting_user=acting_user)
        if first is None:
            raise ValidationError(_("This domain no longer exists."), code="gone")
        return first
    pending = DkimKey.objects.filter(domain=domain, state=DkimKeyState.NEXT).first()
    if pending is not None:
        return pending
    made = dkim.new_key()
    with transaction.atomic():
        locked = _locked(domain.pk)
        if locked is None:
            raise ValidationError(_("This domain no longer exists."), code="gone")
        pending = DkimKey.objects.filter(domain=locked, state=DkimKeyState.NEXT).first()
        if pending is not None:
            return pending
        key = _create(locked, made, DkimKeyState.NEXT)
        audit.record(acting_user, Action.DKIM_ROTATE, locked, selector=key.selector)
    return key


def dkim_activate_seen(domain: Domain, *, acting_user: Seat | None = None) -> bool:
    """Switch to the NEXT key if its DNS record was seen (`dns_seen_at`): it signs from now (the
    host gets it with the domain's next document), the old key is RETIRED. True if switched."""
    with transaction.atomic():
        locked = _locked(domain.pk)
        if locked is None:
            return False
        pending = DkimKey.objects.filter(domain=locked, state=DkimKeyState.NEXT, dns_seen_at__isnull=False).first()
        if pending is None:
            return False
        old = list(DkimKey.objects.filter(domain=locked, state=DkimKeyState.ACTIVE).values_list("selector", flat=True))
        DkimKey.objects.filter(domain=locked, state=DkimKeyState.ACTIVE).update(state=DkimKeyState.RETIRED)
        DkimKey.objects.filter(pk=pending.pk).update(state=DkimKeyState.ACTIVE, activated_at=timezone.now())
        domain_changed(locked)
        audit.record(acting_user, Action.DKIM_ACTIVATE, locked, selector=pending.selector, retired=old)
    domain.revision = locked.revision
    return True


def enqueue_ensure(domain_id: int) -> bool:
    """Queue the making of a new domain's key on the bulk queue (after its creation commits). A
    refusal of the broker is logged, never raised: the beat's `dkim_maintain` makes it later."""
    try:
        panel_app.send_task(ENSURE_TASK, args=[domain_id], queue=contract.BULK_QUEUE)
    except Exception as error:  # noqa: BLE001 - whatever the broker's client raises, the domain is saved
        log.warning("the DKIM key of domain %s could not be queued (%s: %s); the beat will make it",
                    domain_id, type(error).__name__, error)
        return False
    return True


def dkim_maintain(*, batch: int = MAINTAIN_BATCH, budget_seconds: float = MAINTAIN_BUDGET_SECONDS) -> int:
    """The beat's pass: switch every domain whose NEXT key's record was seen, then make the keys
    of (at most `batch`) domains that have none. Returns how many keys were made or switched."""
    done = 0
    seen = Domain.objects.filter(Exists(DkimKey.objects.filter(
        domain=OuterRef("pk"), state=DkimKeyState.NEXT, dns_seen_at__isnull=False)))
    for domain in seen.order_by("pk"):
        done += dkim_activate_seen(domain)
    keyless = Domain.objects.filter(alias_of__isnull=True).exclude(
        Exists(DkimKey.objects.filter(domain=OuterRef("pk"), state=DkimKeyState.ACTIVE)))
    deadline = time.monotonic() + budget_seconds
    for domain in keyless.order_by("pk")[:batch]:
        if time.monotonic() > deadline:
            break
        done += dkim_key_ensure(domain) is not None
    return done


def signing_key(domain: Domain) -> DkimKey | None:
    """The key the domain's host signs with: its own ACTIVE key, or its target's for an alias."""
    owner_id = domain.alias_of_id or domain.pk
    return DkimKey.objects.filter(domain_id=owner_id, state=DkimKeyState.ACTIVE).first()


def published_keys(domain: Domain) -> list[DkimKey]:
    """The keys whose records the domain publishes: the ACTIVE one and a NEXT one (its target's
    for an alias domain), signing key first."""
    owner_id = domain.alias_of_id or domain.pk
    keys = DkimKey.objects.filter(domain_id=owner_id, state__in=[DkimKeyState.ACTIVE, DkimKeyState.NEXT])
    return sorted(keys, key=lambda k: (k.state != DkimKeyState.ACTIVE, k.created_at))


@dataclass(frozen=True)
class Published:
    """One DKIM record a domain publishes: `name` (IDNA, no final dot), TXT, `value`."""

    name: str
    type: str
    value: str
    selector: str
    signing: bool  # the key the host signs with now (else: the next one, published ahead)


def records(domain: Domain) -> list[Published]:
    """The DKIM records to publish for `domain` and, for a domain, for each of its alias domains
    (the same keys under their names): the signing key's first, a rotation's next one after it."""
    keys = published_keys(domain)
    names = [domain.name]
    if domain.alias_of_id is None:
        names += list(Domain.objects.filter(alias_of=domain).order_by("name").values_list("name", flat=True))
    return [Published(name=dkim.record_name(key.selector, name), type="TXT", value=dkim.txt_value(key.public_key),
                      selector=key.selector, signing=key.state == DkimKeyState.ACTIVE)
            for name in names for key in keys]
