"""The durable record of what each domain's mail host should have and what it confirmed.

Nothing that must reach a mail host lives only in a queue message: `Domain.revision` says what
the host should have, `DomainSync.applied_revision` what it last confirmed, and the periodic
reconcile re-sends every domain whose host lags.
"""

from __future__ import annotations

from typing import Self

from django.db import models
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

from hosting.models import Domain, DomainChildQuerySet, MailHost, ScopedQuerySet
from hosting.roles import Role, Seat, role_of


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
    # When the flag was taken: a flag older than a few seconds has lost its push (a worker killed
    # holding it, a broker down when it was sent) and the reconcile frees it (services.reconcile).
    queued_at = models.DateTimeField(_("push queued at"), null=True, blank=True)
    # Since when the host lacks a change of the domain (the first claim after its last complete
    # confirmation; a report that confirms only part of it restarts it): the mail host's health.
    pending_since = models.DateTimeField(_("change waiting since"), null=True, blank=True)
    sent_revision = models.PositiveBigIntegerField(_("revision sent"), default=0, db_default=0)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    applied_revision = models.PositiveBigIntegerField(_("revision applied"), default=0, db_default=0)
    applied_at = models.DateTimeField(_("applied"), null=True, blank=True)
    error = models.TextField(_("error from the mail host"), blank=True, db_default="")
    error_revision = models.PositiveBigIntegerField(_("revision that failed"), default=0, db_default=0)
    attempts = models.PositiveIntegerField(_("attempts"), default=0, db_default=0)
    # Documents the reconcile sent again since the host last confirmed one: each waits twice as
    # long as the one before for the host's answer (services.resend_delay).
    resends = models.PositiveIntegerField(_("sent again"), default=0, db_default=0)
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
    # When its "absent" document last went: the reconcile sends it again STALE_AFTER later, not
    # at each of its ticks (every 5 s) to a host that is down.
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

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
    """A domain handed from one mail host to another, mail included (hostlink.moves):
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


class HostHealthQuerySet(ScopedQuerySet):
    def visible_to(self, seat: Seat) -> Self:
        """The operators' and support's: the health of the mail hosts is none of a tenant's business."""
        return self.all() if role_of(seat) in (Role.OPERATOR, Role.SUPPORT) else self.none()


class HostHealth(models.Model):
    """What the panel last heard from a mail host's agent: its heartbeat (every
    contract.HEARTBEAT_SECONDS, with the document formats it reads) or any report. A host silent
    for longer than services.HOST_SILENT_AFTER is flagged (`silent_since`) and logged as an error,
    once per silence (services.check_hosts, run by the reconcile)."""

    host = models.OneToOneField(MailHost, on_delete=models.CASCADE, related_name="health",
                                verbose_name=_("mail host"))
    last_report_at = models.DateTimeField(_("last report"), null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)
    # The highest document format the agent reads (contract.READS), from its heartbeat.
    contract_version = models.PositiveIntegerField(_("contract version"), null=True, blank=True)
    silent_since = models.DateTimeField(_("silent since"), null=True, blank=True)
    created_at = models.DateTimeField(_("first expected"), auto_now_add=True)

    objects = HostHealthQuerySet.as_manager()

    class Meta:
        verbose_name = _("mail host health")
        verbose_name_plural = _("mail hosts' health")
        ordering = ["host__name"]

    def __str__(self) -> str:
        return str(self.host)


class MailImportState(models.TextChoices):
    WAITING = "waiting_host", _("waiting for the mail host to have the mailboxes")
    SENT = "sent", _("copying mail")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")


class MailImport(models.Model):
    """Mail of an old server (vpopmail's Maildirs, copied onto the domain's mail host) brought
    into the domain's mailboxes by the host's agent (hostlink.mailimport, mailhost.mailimport).
    The row is the record: a request waits here until the host has applied `revision` (the one
    that created the mailboxes), and is sent again while no report came; the agent's copy is
    idempotent, so a request sent twice copies nothing twice."""

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="mail_imports",
                               verbose_name=_("domain"))
    # The host must have applied at least this revision of the domain (its mailboxes) first.
    revision = models.PositiveBigIntegerField(_("revision"))
    # [[address, absolute path of the old Maildir on the mail host], ...]
    mailboxes = models.JSONField(_("mailboxes and their old Maildirs"), default=list)
    state = models.CharField(_("state"), max_length=20, choices=MailImportState.choices,
                             default=MailImportState.WAITING)
    host = models.ForeignKey(MailHost, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                             verbose_name=_("mail host"))
    # Per mailbox, as the host reported it: {address, copied, present, folders, subscribed, error}.
    results = models.JSONField(_("results"), default=list, blank=True)
    copied = models.PositiveIntegerField(_("messages copied"), default=0)
    error = models.TextField(_("error"), blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    seconds = models.FloatField(_("seconds"), default=0.0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    objects = DomainChildQuerySet.as_manager()

    class Meta:
        verbose_name = _("mail import")
        verbose_name_plural = _("mail imports")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["state", "sent_at"], name="mail_import_state")]

    def __str__(self) -> str:
        return f"{self.domain}: {len(self.mailboxes)} ({self.state})"

    def errors(self) -> dict[str, str]:
        """address → error, for the mailboxes whose import failed at the last run."""
        return {str(r.get("address")): str(r["error"]) for r in self.results if isinstance(r, dict) and r.get("error")}


class DnsCheck(models.Model):
    """The last DNS check of a domain (MX, SPF, DKIM, DMARC: `hosting.dnscheck`), written by
    `provisioning.dnscheck` from the bulk worker (Celery beat, and "Check now"). `results` has the
    fixed shape of `hosting.dnscheck.Outcome.results`: {"format": 1, "checks": [{"kind", "status",
    "reason", "selector", "found", "publish": [{"name", "type", "value"}]}]}."""

    domain = models.OneToOneField(Domain, on_delete=models.CASCADE, primary_key=True, related_name="dns_check",
                                  verbose_name=_("domain"))
    checked_at = models.DateTimeField(_("last DNS check"), null=True, blank=True, db_index=True)
    results = models.JSONField(_("results"), default=dict, blank=True)
    # When "Check now" last queued a check (at most one per dnscheck.ASK_AGAIN_AFTER).
    requested_at = models.DateTimeField(_("check asked"), null=True, blank=True)

    objects = DomainChildQuerySet.as_manager()

    class Meta:
        verbose_name = _("DNS check")
        verbose_name_plural = _("DNS checks")

    def __str__(self) -> str:
        return str(self.domain)

    @property
    def pending(self) -> bool:
        """A check was asked and has not run since."""
        return self.requested_at is not None and (self.checked_at is None or self.checked_at < self.requested_at)
