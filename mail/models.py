"""Mailboxes ("Comptes Pop") with their routing and vacation, forwards ("Redirections"), robots
(standalone autoresponders) and the domain's catch-all. Each row keeps the domain revision of
its last change, so its state on the mail host (applied / pending / failed) can be shown."""

from __future__ import annotations

import unicodedata
from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

from hosting.models import Domain, DomainChildQuerySet

POSTMASTER = "postmaster"  # every domain's first mailbox, its admin; never deleted
HOSTMASTER = "hostmaster"  # required on a .fr domain: the .fr registry checks it before a DNS change


def hostmaster_required(domain_name: str) -> bool:
    """Whether the domain (its IDNA name) must keep a `hostmaster` account: the .fr ones."""
    return domain_name.lower().rstrip(".").endswith(".fr")


def required_accounts(domain_name: str) -> tuple[str, ...]:
    """The accounts a new domain is created with (QmailAdmin's "2 comptes obligatoires pour les
    .fr, 1 pour les autres domaines")."""
    return (POSTMASTER, HOSTMASTER) if hostmaster_required(domain_name) else (POSTMASTER,)


def folded(text: str) -> str:
    """`text` for searching: lower-case, accents dropped ("Hélène" → "helene")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))

class Routing(models.TextChoices):
    STANDARD = "standard", _("Standard (no forwarding)")
    DELETE = "delete", _("All mail deleted")
    FORWARD = "forward", _("Forward to")


class MailboxQuerySet(DomainChildQuerySet):
    mailbox_path = "pk"  # a mailbox user sees its own mailbox


class Mailbox(models.Model):
    """A POP/IMAP mailbox. Its password is stored only as a `{SCHEME}hash` Dovecot verifies.

    A mailbox is also a seat: logged in through the QmailAdmin-style form it acts as the admin
    of its domain (postmaster, or flagged admin) or as a plain user of its own account.
    """

    ADMIN_LOCAL_PARTS = (POSTMASTER,)

    domain = models.ForeignKey(
        Domain, on_delete=models.CASCADE, related_name="mailboxes", verbose_name=_("domain")
    )
    local_part = models.CharField(_("account"), max_length=64)
    password_hash = models.CharField(_("password hash"), max_length=255, editable=False)
    real_name = models.CharField(_("real name"), max_length=200, blank=True)
    # "local_part real name", folded: what the POP accounts' search looks in (every database).
    search_name = models.CharField(max_length=300, blank=True, editable=False)
    quota_mb = models.PositiveIntegerField(
        _("quota (MB)"), default=0, help_text=_("0 means unlimited.")
    )
    quota_used_bytes = models.PositiveBigIntegerField(_("space used (bytes)"), default=0, editable=False)
    is_admin = models.BooleanField(_("domain admin"), default=False)
    enabled = models.BooleanField(_("enabled"), default=True)
    allow_pop3 = models.BooleanField(_("POP3 allowed"), default=True)
    allow_imap = models.BooleanField(_("IMAP allowed"), default=True)
    allow_smtp = models.BooleanField(_("sending (SMTP) allowed"), default=True)
    routing = models.CharField(_("routing"), max_length=10, choices=Routing, default=Routing.STANDARD)
    forward_to = models.JSONField(_("forward to"), default=list, blank=True)
    keep_copy = models.BooleanField(_("save a copy"), default=False)
    vacation_enabled = models.BooleanField(_("send vacation auto-response"), default=False)
    vacation_subject = models.CharField(_("vacation subject"), max_length=200, blank=True)
    vacation_message = models.TextField(_("vacation message"), max_length=4000, blank=True)
    vacation_start = models.DateField(_("vacation from"), null=True, blank=True)
    vacation_end = models.DateField(_("vacation until"), null=True, blank=True)
    vacation_days = models.PositiveSmallIntegerField(
        _("days between two replies to one sender"), default=1
    )
    revision = models.PositiveBigIntegerField(_("revision"), default=0, editable=False)
    # A rename not yet confirmed by the mail host: the previous name and the rename's revision
    # (the host moves the old home to the new name; mail.services.mailbox_rename).
    renamed_from = models.CharField(_("previous name"), max_length=64, blank=True, editable=False)
    renamed_revision = models.PositiveBigIntegerField(_("revision of the rename"), default=0, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = MailboxQuerySet.as_manager()

    is_mailbox_seat = True
    is_authenticated = True

    class Meta:
        verbose_name = _("POP account")
        verbose_name_plural = _("POP accounts")
        ordering = ["domain__name", "local_part"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "local_part"], name="mailbox_unique_address")
        ]
        indexes = [
            models.Index(fields=["domain", "revision"], name="mailbox_changed_since"),
            # The renames a host's report confirms: a few rows, whatever the domain's size.
            models.Index(fields=["domain", "renamed_revision"], name="mailbox_renamed",
                         condition=models.Q(renamed_revision__gt=0)),
        ]

    def __str__(self) -> str:
        return self.address

    @property
    def address(self) -> str:
        return f"{self.local_part}@{self.domain.unicode_name}"

    def searched_as(self) -> str:
        """The value of `search_name` for the current name and real name."""
        return folded(f"{self.local_part} {self.real_name}")

    @property
    def is_domain_admin(self) -> bool:
        return self.is_admin or self.local_part in self.ADMIN_LOCAL_PARTS

    @property
    def is_active(self) -> bool:
        return self.enabled


class Forward(models.Model):
    """A name of the domain that forwards to one or more destinations ("Redirection")."""

    domain = models.ForeignKey(
        Domain, on_delete=models.CASCADE, related_name="forwards", verbose_name=_("domain")
    )
    local_part = models.CharField(_("name"), max_length=64)
    destinations = models.JSONField(_("destinations"), default=list)
    revision = models.PositiveBigIntegerField(_("revision"), default=0, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = DomainChildQuerySet.as_manager()

    class Meta:
        verbose_name = _("forward")
        verbose_name_plural = _("forwards")
        ordering = ["domain__name", "local_part"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "local_part"], name="forward_unique_address")
        ]
        indexes = [models.Index(fields=["domain", "revision"], name="forward_changed_since")]

    def __str__(self) -> str:
        return f"{self.local_part}@{self.domain.unicode_name}"


# A robot answers each sender at most once in this many hours (Sieve's vacation :seconds).
ROBOT_REPLY_HOURS_MIN = 1
ROBOT_REPLY_HOURS_MAX = 30 * 24
ROBOT_REPLY_HOURS_DEFAULT = 24


class Robot(models.Model):
    """A standalone autoresponder: whoever writes gets the fixed reply (at most once per sender in
    `reply_hours`); a copy may go on."""

    domain = models.ForeignKey(
        Domain, on_delete=models.CASCADE, related_name="robots", verbose_name=_("domain")
    )
    local_part = models.CharField(_("mail robot name"), max_length=64)
    copy_to = models.CharField(_("send copy to"), max_length=320, blank=True)
    subject = models.CharField(_("subject"), max_length=200)
    message = models.TextField(_("message"), max_length=4000)
    reply_hours = models.PositiveIntegerField(
        _("hours between two replies to one sender"), default=ROBOT_REPLY_HOURS_DEFAULT
    )
    revision = models.PositiveBigIntegerField(_("revision"), default=0, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = DomainChildQuerySet.as_manager()

    class Meta:
        verbose_name = _("mail robot")
        verbose_name_plural = _("mail robots")
        ordering = ["domain__name", "local_part"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "local_part"], name="robot_unique_address"),
            models.CheckConstraint(
                condition=models.Q(reply_hours__gte=ROBOT_REPLY_HOURS_MIN, reply_hours__lte=ROBOT_REPLY_HOURS_MAX),
                name="robot_reply_hours_range",
            ),
        ]
        indexes = [models.Index(fields=["domain", "revision"], name="robot_changed_since")]

    def __str__(self) -> str:
        return f"{self.local_part}@{self.domain.unicode_name}"


class CatchAllMode(models.TextChoices):
    BOUNCE = "bounce", _("Unknown e-mail: bounced")
    DELETE = "delete", _("Unknown e-mail: deleted")
    MAILBOX = "mailbox", _("Deliver to a POP account of the domain")
    REMOTE = "remote", _("Remote catch-all address")
    DOMAIN = "domain", _("Forward x@ to x@ another domain")


class CatchAll(models.Model):
    """What happens to mail for unknown addresses of a domain (absent: bounced)."""

    domain = models.OneToOneField(
        Domain, on_delete=models.CASCADE, related_name="catchall", verbose_name=_("domain")
    )
    mode = models.CharField(_("catch-all"), max_length=10, choices=CatchAllMode, default=CatchAllMode.BOUNCE)
    target = models.CharField(_("target"), max_length=320, blank=True)
    revision = models.PositiveBigIntegerField(_("revision"), default=0, editable=False)

    objects = DomainChildQuerySet.as_manager()

    class Meta:
        verbose_name = _("catch-all")
        verbose_name_plural = _("catch-alls")

    def __str__(self) -> str:
        return f"{self.domain}: {self.get_mode_display()}"


class SpamMode(models.TextChoices):
    OFF = "off", _("Off: every message delivered as it is")
    MARK = "mark", _("Mark the subject of spam with ***SPAM***")
    JUNK = "junk", _("Move spam to the Junk folder")
    REJECT = "reject", _("Refuse spam when it is sent")


SPAM_SCORE_MIN, SPAM_SCORE_MAX = Decimal("5.0"), Decimal("30.0")  # mailhost.spam's bounds
SPAM_MAX_SENDERS = 200  # mailhost.spam.MAX_ENTRIES


class SpamFilter(models.Model):
    """A domain's spam filtering (absent: off): what rspamd does from a score, and the senders
    (addresses or domain names, IDNA) always let through or always refused."""

    domain = models.OneToOneField(
        Domain, on_delete=models.CASCADE, related_name="spam_filter", verbose_name=_("domain")
    )
    mode = models.CharField(_("spam filtering"), max_length=10, choices=SpamMode, default=SpamMode.OFF)
    score = models.DecimalField(_("score"), max_digits=3, decimal_places=1, default=Decimal("6.0"))
    allow = models.JSONField(_("allowed senders"), default=list, blank=True)
    block = models.JSONField(_("blocked senders"), default=list, blank=True)
    revision = models.PositiveBigIntegerField(_("revision"), default=0, editable=False)

    objects = DomainChildQuerySet.as_manager()

    class Meta:
        verbose_name = _("spam filtering")
        verbose_name_plural = _("spam filtering")

    def __str__(self) -> str:
        return f"{self.domain}: {self.get_mode_display()}"


class LoginThrottle(models.Model):
    """Mailbox-login attempts counted under one key (an address or a client IP) in a window that
    starts at the first attempt and does not slide. Rows, not cache entries: incremented with
    `UPDATE ... SET count = count + 1` in a transaction, they count atomically on every database."""

    key = models.CharField(max_length=600, unique=True)
    count = models.PositiveIntegerField(default=0)
    window_ends = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"


class ImportKind(models.TextChoices):
    MAILBOXES = "mailboxes", _("POP accounts")
    FORWARDS = "forwards", _("forwards")


class ImportState(models.TextChoices):
    RUNNING = "running", _("running")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")


class AccountImport(models.Model):
    """A bulk import of a domain's POP accounts or forwards (pasted or uploaded, mail.transfer):
    its progress and its report. Never a password: the lines are not kept, only the refused
    lines' numbers and reasons."""

    domain = models.ForeignKey(
        Domain, on_delete=models.CASCADE, related_name="account_imports", verbose_name=_("domain")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=ImportKind)
    state = models.CharField(_("state"), max_length=8, choices=ImportState, default=ImportState.RUNNING)
    total = models.PositiveIntegerField(_("lines"), default=0)
    done = models.PositiveIntegerField(_("lines read"), default=0)
    created = models.PositiveIntegerField(_("created"), default=0)
    present = models.PositiveIntegerField(_("already there"), default=0)
    refused = models.JSONField(_("refused lines"), default=list, blank=True)  # [[line number, reason], ...]
    refused_count = models.PositiveIntegerField(_("refused"), default=0)
    windows_1252 = models.BooleanField(_("read as Windows-1252"), default=False)
    error = models.TextField(_("error"), blank=True)
    created_by = models.CharField(_("by"), max_length=320, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = DomainChildQuerySet.as_manager()

    class Meta:
        verbose_name = _("account import")
        verbose_name_plural = _("account imports")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.domain} {self.kind} {self.created}/{self.total}"
