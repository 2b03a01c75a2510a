"""The durable record of what each domain's mail host should have and what it confirmed.

Nothing that must reach a mail host lives only in a queue message: `Domain.revision` says what
the host should have, `DomainSync.applied_revision` what it last confirmed, and the periodic
reconcile re-sends every domain whose host lags.
"""

from __future__ import annotations

from django.db import models
from django.utils import formats, timezone
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
    # Database defaults too: the claim of a first change inserts the row in plain SQL (revisions.py).
    queued = models.BooleanField(_("push queued"), default=False, db_default=False)
    sent_revision = models.PositiveBigIntegerField(_("revision sent"), default=0, db_default=0)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    applied_revision = models.PositiveBigIntegerField(_("revision applied"), default=0, db_default=0)
    applied_at = models.DateTimeField(_("applied"), null=True, blank=True)
    error = models.TextField(_("error from the mail host"), blank=True, db_default="")
    error_revision = models.PositiveBigIntegerField(_("revision that failed"), default=0, db_default=0)
    attempts = models.PositiveIntegerField(_("attempts"), default=0, db_default=0)
    # The host said it lacks the base of a delta (or support asked): the next push is complete.
    needs_full = models.BooleanField(_("send the whole domain"), default=False, db_default=False)

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


def sync_state(sync: DomainSync | None, revision: int) -> tuple[SyncState, str]:
    """The state on the host of an object last changed at `revision` of its domain (`sync`: the
    domain's DomainSync, None before its first push), and the host's error when it failed."""
    if sync is None:
        return SyncState.PENDING, ""
    state = sync.state_of(revision)
    return state, sync.error if state == SyncState.FAILED else ""


def sync_state_label(sync: DomainSync | None, revision: int) -> str:
    """`sync_state` in one line, as the admin lists show it."""
    state, error = sync_state(sync, revision)
    return f"{state.label}: {error[:200]}" if error else str(state.label)


class RemovedName(models.Model):
    """A name of a domain whose object (mailbox, forward, robot, list) was deleted at `revision`:
    the tombstone a delta carries to the host. Kept until the domain's host confirms `revision`."""

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="+", verbose_name=_("domain"))
    name = models.CharField(_("name"), max_length=64)
    revision = models.PositiveBigIntegerField(_("revision"))

    objects = DomainChildQuerySet.as_manager()

    class Meta:
        verbose_name = _("removed name")
        verbose_name_plural = _("removed names")
        constraints = [models.UniqueConstraint(fields=["domain", "name"], name="removed_once_per_domain")]
        indexes = [models.Index(fields=["domain", "revision"], name="removed_since")]

    def __str__(self) -> str:
        return f"{self.name}@{self.domain} ({self.revision})"


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


class MoveState(models.TextChoices):
    WAITING = "waiting_new_host", _("waiting for the new host")
    COPYING = "copying", _("copying mail")
    REMOVING = "removing_old", _("mail copied, removing from the old host")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")


class DomainMoveQuerySet(DomainChildQuerySet):
    def open(self) -> models.QuerySet:
        """Moves not finished yet (the old host still keeps the domain and its maildirs)."""
        return self.exclude(state=MoveState.DONE)


class DomainMove(models.Model):
    """A domain handed from one mail host to another, mail included (provisioning.services):
    the new host confirms the domain, the old host copies every mailbox there (doveadm sync),
    then, only then, the old host removes the domain and its maildirs."""

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="moves", verbose_name=_("domain"))
    from_host = models.ForeignKey(MailHost, on_delete=models.PROTECT, related_name="+",
                                  verbose_name=_("from mail host"))
    to_host = models.ForeignKey(MailHost, on_delete=models.PROTECT, related_name="+",
                                verbose_name=_("to mail host"))
    # The new host must confirm at least this revision (the move's) before mail is copied there.
    revision = models.PositiveBigIntegerField(_("revision"))
    state = models.CharField(_("state"), max_length=20, choices=MoveState.choices, default=MoveState.WAITING)
    error = models.TextField(_("error"), blank=True)
    copied = models.JSONField(_("mailboxes copied"), default=list, blank=True)
    attempts = models.PositiveIntegerField(_("copy attempts"), default=0)
    created_at = models.DateTimeField(_("started"), auto_now_add=True)
    copy_sent_at = models.DateTimeField(_("copy asked"), null=True, blank=True)
    copied_at = models.DateTimeField(_("mail copied"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    objects = DomainMoveQuerySet.as_manager()

    class Meta:
        verbose_name = _("domain move")
        verbose_name_plural = _("domain moves")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["domain"], condition=~models.Q(state="done"), name="one_open_move_per_domain"
            )
        ]

    def __str__(self) -> str:
        return f"{self.domain}: {self.from_host} → {self.to_host}"

    def describe(self) -> str:
        """The state as the admin shows it: "failed: <error>", "done (<when>)"."""
        if self.state == MoveState.FAILED:
            return f"{self.get_state_display()}: {self.error}"
        if self.state == MoveState.DONE and self.finished_at:
            when = formats.date_format(timezone.localtime(self.finished_at), "DATETIME_FORMAT")
            return f"{self.get_state_display()} ({when})"
        return str(self.get_state_display())
