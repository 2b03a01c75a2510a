"""Counters shown as `Utilisé : n/max`, with −1 shown as unlimited."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from hosting.models import UNLIMITED, Domain, Pack


def usage_label(used: int, limit: int) -> str:
    if limit == UNLIMITED:
        return _("%(used)d/unlimited") % {"used": used}
    return f"{used}/{limit}"


@dataclass(frozen=True)
class Feature:
    key: str
    label: str
    new_label: str
    used: int
    limit: int
    full_message: str = ""  # what its add page says when the limit is reached
    by_domain: dict[int, int] = field(default_factory=dict, compare=False)  # `pack_feature`'s: each domain's rows

    @property
    def shown(self) -> bool:
        return self.limit != 0

    @property
    def full(self) -> bool:
        return self.limit != UNLIMITED and self.used >= self.limit

    @property
    def usage(self) -> str:
        return usage_label(self.used, self.limit)


# key, the domain's relation that holds its rows, the plan's limit, labels, the add page's refusal.
FEATURES = (
    ("mailboxes", "max_mailboxes", _lazy("POP accounts"), _lazy("New POP account"),
     _lazy("Maximum number of POP accounts reached.")),
    ("forwards", "max_forwards", _lazy("Forwards"), _lazy("New forward"),
     _lazy("Maximum number of forwards reached.")),
    ("robots", "max_robots", _lazy("Robots"), _lazy("New mail robot"),
     _lazy("Maximum number of mail robots reached.")),
    ("lists", "max_lists", _lazy("Mailing lists"), _lazy("New mailing list"),
     _lazy("Maximum number of mailing lists reached.")),
)


def pack_features(pack: Pack) -> list[Feature]:
    """The pack's features with their counters; `pack` must come from `with_usage()`."""
    return [Feature(key, str(label), str(new_label), getattr(pack, f"used_{key}"), getattr(pack.plan, limit),
                    str(full)) for key, limit, label, new_label, full in FEATURES]


def _rows(pack: Pack, key: str) -> models.QuerySet[Any]:
    """The pack's rows of a feature (mailboxes, forwards...: models of an app above), from their table."""
    model = Domain._meta.get_field(key).related_model
    assert isinstance(model, type)  # a reverse relation's: the model class itself
    return model._base_manager.filter(domain__pack=pack)


def pack_feature(pack: Pack, key: str) -> Feature:
    """One feature of the pack with its counter, for a list page (`Utilisé : n/max`): only its own
    rows are counted (`pack` with its plan; no `with_usage`, which counts them all), domain by
    domain in one query (`by_domain`: a list of all a domain's rows needs no count of its own).
    Each domain's rows are counted by a subquery of their own, an index-only count of that domain
    (a GROUP BY over the rows joined to their domains cost PostgreSQL about twice as much)."""
    _key, limit_field, label, new_label, full = next(f for f in FEATURES if f[0] == key)
    each = _rows(pack, key).model._base_manager.filter(domain=models.OuterRef("pk")).order_by().values("domain")
    count = models.Subquery(each.annotate(n=models.Count("*")).values("n"), output_field=models.IntegerField())
    counts = {pk: n or 0 for pk, n in Domain._base_manager.filter(pack=pack).order_by().annotate(n=count)
              .values_list("pk", "n")}
    return Feature(key, str(label), str(new_label), sum(counts.values()), getattr(pack.plan, limit_field),
                   str(full), by_domain=counts)


def room(pack: Pack, key: str) -> Feature:
    """One feature of the pack for its add page, which only needs to know whether it is full: the
    rows are counted up to the plan's limit, and not at all when it is unlimited (or 0: hidden).
    The same cost for a domain of ten rows or 100,000 (`pack` with its plan; no `with_usage`)."""
    _key, limit_field, label, new_label, full = next(f for f in FEATURES if f[0] == key)
    limit = getattr(pack.plan, limit_field)
    used = 0
    if limit > 0:
        rows = _rows(pack, key)
        used = rows.order_by().values("pk")[:limit].count()
    return Feature(key, str(label), str(new_label), used, limit, str(full))
