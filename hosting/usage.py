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
    full_message: str = ""  # what its add page says when the limit is reached

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
    """The pack's features with their counters; `pack` must come from `with_usage()`."""
    plan = pack.plan
    return [
        Feature("mailboxes", _("POP accounts"), _("New POP account"), pack.used_mailboxes, plan.max_mailboxes,
                _("Maximum number of POP accounts reached.")),
        Feature("forwards", _("Forwards"), _("New forward"), pack.used_forwards, plan.max_forwards,
                _("Maximum number of forwards reached.")),
        Feature("robots", _("Robots"), _("New mail robot"), pack.used_robots, plan.max_robots,
                _("Maximum number of mail robots reached.")),
        Feature("lists", _("Mailing lists"), _("New mailing list"), pack.used_lists, plan.max_lists,
                _("Maximum number of mailing lists reached.")),
    ]
