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


class Language(models.TextChoices):
    FRENCH = "fr", _("French")
    ENGLISH = "en", _("English")


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
    remote_admin_list = models.BooleanField(_("remote administrators may list the subscribers"), default=False)
    request_address = models.BooleanField(_("-request command address"), default=True)
    private = models.BooleanField(_("private list"), default=False)
    sub_confirm = models.BooleanField(_("subscription requires confirmation"), default=True)
    sub_moderate = models.BooleanField(_("subscription requires moderator approval"), default=False)
    unsub_confirm = models.BooleanField(_("unsubscription requires confirmation"), default=True)
    archive = models.BooleanField(_("archive"), default=True)
    archive_access = models.CharField(
        _("archive retrieval"), max_length=12, choices=ArchiveAccess, default=ArchiveAccess.SUBSCRIBERS
    )
    language = models.CharField(_("language of the list's texts"), max_length=2, choices=Language,
                                default=Language.FRENCH)
    texts = models.JSONField(_("edited text files"), default=dict, blank=True)  # {file name: text}
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


class ListChildQuerySet(ScopedQuerySet):
    reseller_path = "mailing_list__domain__pack__customer__reseller"
    customer_path = "mailing_list__domain__pack__customer"
    domain_path = "mailing_list__domain"


class MemberKind(models.TextChoices):
    SUBSCRIBER = "subscriber", _("subscriber")
    MODERATOR = "moderator", _("moderator")
    DIGEST = "digest", _("digest subscriber")
    NOMAIL = "nomail", _("subscriber without mail")


class ListMember(models.Model):
    mailing_list = models.ForeignKey(
        MailingList, on_delete=models.CASCADE, related_name="members", verbose_name=_("mailing list")
    )
    address = models.CharField(_("e-mail address"), max_length=320)
    kind = models.CharField(_("kind"), max_length=10, choices=MemberKind, default=MemberKind.SUBSCRIBER)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = ListChildQuerySet.as_manager()

    class Meta:
        verbose_name = _("list member")
        verbose_name_plural = _("list members")
        ordering = ["mailing_list", "kind", "address"]
        constraints = [
            models.UniqueConstraint(fields=["mailing_list", "kind", "address"], name="member_unique")
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.get_kind_display()})"


class HeldKind(models.TextChoices):
    POST = "post", _("message")
    SUBSCRIPTION = "subscription", _("subscription request")


class Decision(models.TextChoices):
    PENDING = "pending", _("waiting for a moderator")
    APPROVE = "approve", _("approved, being sent to the mail host")
    REJECT = "reject", _("rejected, being sent to the mail host")


class HeldMessage(models.Model):
    """A post or a subscription request held for the moderators on the mail host, as the host
    reported it; a decision taken here goes to the host, one taken by mail makes it disappear."""

    mailing_list = models.ForeignKey(
        MailingList, on_delete=models.CASCADE, related_name="held", verbose_name=_("mailing list")
    )
    kind = models.CharField(_("kind"), max_length=12, choices=HeldKind)
    key = models.CharField(_("key on the mail host"), max_length=64)  # mlmmj's cookie
    sender = models.CharField(_("sender"), max_length=320)
    subject = models.CharField(_("subject"), max_length=998, blank=True)
    received_at = models.DateTimeField(_("received"), null=True, blank=True)
    preview = models.TextField(_("preview"), blank=True)  # plain text, bounded, never HTML
    decision = models.CharField(_("decision"), max_length=8, choices=Decision, default=Decision.PENDING)
    decided_by = models.CharField(_("decided by"), max_length=320, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = ListChildQuerySet.as_manager()

    class Meta:
        verbose_name = _("held message")
        verbose_name_plural = _("held messages")
        ordering = ["mailing_list", "received_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["mailing_list", "key"], name="held_unique_key")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.sender}"


class ImportState(models.TextChoices):
    RUNNING = "running", _("running")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")


class MemberImport(models.Model):
    """A bulk import of members (pasted or uploaded), its progress and its report."""

    mailing_list = models.ForeignKey(
        MailingList, on_delete=models.CASCADE, related_name="imports", verbose_name=_("mailing list")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=MemberKind, default=MemberKind.SUBSCRIBER)
    state = models.CharField(_("state"), max_length=8, choices=ImportState, default=ImportState.RUNNING)
    total = models.PositiveIntegerField(_("lines"), default=0)
    done = models.PositiveIntegerField(_("lines read"), default=0)
    added = models.PositiveIntegerField(_("added"), default=0)
    present = models.PositiveIntegerField(_("already present"), default=0)
    invalid = models.JSONField(_("invalid lines"), default=list, blank=True)  # [[line number, text], ...]
    error = models.TextField(_("error"), blank=True)
    created_by = models.CharField(_("by"), max_length=320, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = ListChildQuerySet.as_manager()

    class Meta:
        verbose_name = _("member import")
        verbose_name_plural = _("member imports")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.mailing_list} {self.added}/{self.total}"
