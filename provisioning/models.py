"""The durable record of what each domain's mail host should have and what it confirmed.

Nothing that must reach a mail host lives only in a queue message: `Domain.revision` says what
the host should have, `DomainSync.applied_revision` what it last confirmed, and the periodic
reconcile re-sends every domain whose host lags.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from hosting.models import Domain, DomainChildQuerySet, MailHost


class SyncState(models.TextChoices):
    APPLIED = "applied", _("applied")
    PENDING = "pending", _("pending")
    FAILED = "failed", _("failed")


class DomainSync(models.Model):
    domain = models.OneToOneField(
        Domain, on_delete=models.CASCADE, related_name="sync", verbose_name=_("domain")
    )
    # The host the last snapshot went to; differs from the pack's host while a move is under way.
    host = models.ForeignKey(
        MailHost, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("mail host")
    )
    queued = models.BooleanField(_("push queued"), default=False)
    sent_revision = models.PositiveBigIntegerField(_("revision sent"), default=0)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    applied_revision = models.PositiveBigIntegerField(_("revision applied"), default=0)
    applied_at = models.DateTimeField(_("applied"), null=True, blank=True)
    error = models.TextField(_("error from the mail host"), blank=True)
    error_revision = models.PositiveBigIntegerField(_("revision that failed"), default=0)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)

    objects = DomainChildQuerySet.as_manager()

    class Meta:
        verbose_name = _("domain synchronisation")
        verbose_name_plural = _("domain synchronisations")

    def __str__(self) -> str:
        return f"{self.domain}: {self.applied_revision}"

    def state_of(self, revision: int) -> SyncState:
        """State on the host of an object last changed at `revision` of its domain."""
        if self.applied_revision >= revision:
            return SyncState.APPLIED
        if self.error and self.error_revision >= revision:
            return SyncState.FAILED
        return SyncState.PENDING


class RetiredDomain(models.Model):
    """A domain deleted in the panel, or moved away from a host, until that host confirms removal."""

    name = models.CharField(_("domain name"), max_length=253)
    host = models.ForeignKey(MailHost, on_delete=models.CASCADE, related_name="+", verbose_name=_("mail host"))
    revision = models.PositiveBigIntegerField(_("revision"))
    confirmed = models.BooleanField(_("removal confirmed"), default=False)
    error = models.TextField(_("error from the mail host"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("retired domain")
        verbose_name_plural = _("retired domains")
        constraints = [models.UniqueConstraint(fields=["name", "host"], name="retired_once_per_host")]

    def __str__(self) -> str:
        return f"{self.name} @ {self.host}"
