"""Counters shown as `Utilisé : n/max`, with −1 shown as unlimited."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

from hosting.models import UNLIMITED, Pack


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

    @property
    def shown(self) -> bool:
        return self.limit != 0

    @property
    def full(self) -> bool:
        return self.limit != UNLIMITED and self.used >= self.limit

    @property
    def usage(self) -> str:
        return usage_label(self.used, self.limit)


def pack_features(pack: Pack) -> list[Feature]:
    """The pack's features with their counters; `pack` must come from `with_usage()`.

    Forwards, robots and lists have no rows before issue 3, so they count zero until then.
    """
    plan = pack.plan
    return [
        Feature(
            "mailboxes", _("POP accounts"), _("New POP account"), pack.used_mailboxes, plan.max_mailboxes
        ),
        Feature("forwards", _("Forwards"), _("New forward"), 0, plan.max_forwards),
        Feature("robots", _("Robots"), _("New mail robot"), 0, plan.max_robots),
        Feature("lists", _("Mailing lists"), _("New mailing list"), 0, plan.max_lists),
    ]
