"""Mailing lists ("Listes de diffusion") and their members, applied on the host as mlmmj lists."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from hosting.models import Domain, DomainChildQuerySet, ScopedQuerySet


class Posting(models.TextChoices):
    ANYONE = "anyone", _("Anyone can post.")
    SUBSCRIBERS = "subscribers", _("Only subscribers can post, all others bounce.")
    SUBSCRIBERS_MODERATED = "subscribers_moderated", _(
        "Only subscribers can post, all others go to moderators for approval."
    )
    MODERATORS = "moderators", _("Only moderators can post, all others bounce.")
    MODERATED = "moderated", _("Only moderators can post, all messages go to moderators for approval.")


class ReplyTo(models.TextChoices):
    SENDER = "sender", _("original sender")
    LIST = "list", _("entire list")
    ADDRESS = "address", _("the address")


class ArchiveAccess(models.TextChoices):
    ANYONE = "anyone", _("anyone")
    SUBSCRIBERS = "subscribers", _("subscribers")
    MODERATORS = "moderators", _("moderators")


class MailingList(models.Model):
    domain = models.ForeignKey(
        Domain, on_delete=models.CASCADE, related_name="lists", verbose_name=_("domain")
    )
    name = models.CharField(_("mailing list name"), max_length=64)
    owner = models.CharField(_("list owner"), max_length=320)
    prefix = models.CharField(_("subject prefix"), max_length=64, blank=True)
    posting = models.CharField(
        _("posting messages"), max_length=24, choices=Posting, default=Posting.SUBSCRIBERS
    )
    reply_to = models.CharField(_("replies go to"), max_length=10, choices=ReplyTo, default=ReplyTo.SENDER)
    reply_to_address = models.CharField(_("reply address"), max_length=320, blank=True)
    trailer = models.TextField(_("trailer"), max_length=2000, blank=True)
    digest = models.BooleanField(_("digest version"), default=False)
    remote_admin = models.BooleanField(_("remote administration by moderators"), default=False)
    private = models.BooleanField(_("private list"), default=False)
    sub_confirm = models.BooleanField(_("subscription requires confirmation"), default=True)
    sub_moderate = models.BooleanField(_("subscription requires moderator approval"), default=False)
    unsub_confirm = models.BooleanField(_("unsubscription requires confirmation"), default=True)
    archive = models.BooleanField(_("archive"), default=True)
    archive_access = models.CharField(
        _("archive retrieval"), max_length=12, choices=ArchiveAccess, default=ArchiveAccess.SUBSCRIBERS
    )
    revision = models.PositiveBigIntegerField(_("revision"), default=0, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = DomainChildQuerySet.as_manager()

    class Meta:
        verbose_name = _("mailing list")
        verbose_name_plural = _("mailing lists")
        ordering = ["domain__name", "name"]
        constraints = [models.UniqueConstraint(fields=["domain", "name"], name="list_unique_address")]
        indexes = [models.Index(fields=["domain", "revision"], name="list_changed_since")]

    def __str__(self) -> str:
        return f"{self.name}@{self.domain.unicode_name}"


class MemberKind(models.TextChoices):
    SUBSCRIBER = "subscriber", _("subscriber")
    MODERATOR = "moderator", _("moderator")
    DIGEST = "digest", _("digest subscriber")


class MemberQuerySet(ScopedQuerySet):
    reseller_path = "mailing_list__domain__pack__customer__reseller"
    customer_path = "mailing_list__domain__pack__customer"
    domain_path = "mailing_list__domain"


class ListMember(models.Model):
    mailing_list = models.ForeignKey(
        MailingList, on_delete=models.CASCADE, related_name="members", verbose_name=_("mailing list")
    )
    address = models.CharField(_("e-mail address"), max_length=320)
    kind = models.CharField(_("kind"), max_length=10, choices=MemberKind, default=MemberKind.SUBSCRIBER)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = MemberQuerySet.as_manager()

    class Meta:
        verbose_name = _("list member")
        verbose_name_plural = _("list members")
        ordering = ["mailing_list", "kind", "address"]
        constraints = [
            models.UniqueConstraint(fields=["mailing_list", "kind", "address"], name="member_unique")
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.get_kind_display()})"
