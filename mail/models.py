"""Mailboxes ("Comptes Pop"). Forwards, robots, catch-all and vacation come with issue 3."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from hosting.models import Domain, ScopedQuerySet


class MailboxQuerySet(ScopedQuerySet):
    reseller_path = "domain__pack__customer__reseller"
    customer_path = "domain__pack__customer"
    domain_path = "domain"
    mailbox_path = "pk"


class Mailbox(models.Model):
    """A POP/IMAP mailbox. Its password is stored only as a `{SCHEME}hash` Dovecot verifies.

    A mailbox is also a seat: logged in through the QmailAdmin-style form it acts as the admin
    of its domain (postmaster, or flagged admin) or as a plain user of its own account.
    """

    ADMIN_LOCAL_PARTS = ("postmaster",)

    domain = models.ForeignKey(
        Domain, on_delete=models.CASCADE, related_name="mailboxes", verbose_name=_("domain")
    )
    local_part = models.CharField(_("account"), max_length=64)
    password_hash = models.CharField(_("password hash"), max_length=255, editable=False)
    real_name = models.CharField(_("real name"), max_length=200, blank=True)
    quota_mb = models.PositiveIntegerField(
        _("quota (MB)"), default=0, help_text=_("0 means unlimited.")
    )
    quota_used_bytes = models.PositiveBigIntegerField(_("space used (bytes)"), default=0, editable=False)
    is_admin = models.BooleanField(_("domain admin"), default=False)
    enabled = models.BooleanField(_("enabled"), default=True)
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

    def __str__(self) -> str:
        return self.address

    @property
    def address(self) -> str:
        return f"{self.local_part}@{self.domain.unicode_name}"

    @property
    def is_domain_admin(self) -> bool:
        return self.is_admin or self.local_part in self.ADMIN_LOCAL_PARTS

    @property
    def is_active(self) -> bool:
        return self.enabled
