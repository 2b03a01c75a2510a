"""A mailing list's options, each named once: the one table the service, the form (its fields,
labels, help and sections: the page's fieldsets) and the document for the mail host
(`hostlink/snapshot.py`) read. Each option is a column of `MailingList` (its type, its default);
the agent's name for it (`mailhost.contract.MailingList`, Django-free) is the same unless the
table says otherwise (`contract`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django_stubs_ext import StrPromise  # django-stubs' (a development requirement): types only


@dataclass(frozen=True)
class Section:
    key: str
    legend: Promise | str  # "" : the form's first block, without a legend
    note: Promise | str = ""


@dataclass(frozen=True)
class Option:
    name: str  # the column of MailingList, the service's keyword, the form's field
    label: StrPromise
    section: str
    help: Promise | str = ""  # may name the list: %(name)s
    radio: bool = False  # choices shown as radio buttons (else a select)
    fixed: bool = False  # what mlmmj cannot change: shown, never posted (`help` says why)
    contract: str = ""  # the agent's field name when it differs from `name`

    @property
    def field(self) -> str:
        """The option's name in the document the mail host applies."""
        return self.contract or self.name


# The seed's sections of QmailAdmin's list page, in its order.
SECTIONS = (
    Section("main", ""),
    Section("posting", _("Posting messages")),
    Section("options", _("List options")),
    Section("remote", _("Remote administration"), _(
        "Remote administrators may edit the text files: not possible with this list server; edit them on "
        "the list's page.")),
    Section("subscription", _("Subscription requests")),
    Section("unsubscription", _("Unsubscription requests")),
    Section("archive", _("Message archives")),
)

OPTIONS = (
    Option("owner", _("List owner"), "main",
           _("Receives the list's administrative mail; subscribed to the list when it is made.")),
    Option("prefix", _("Subject prefix"), "main", _("Put at the start of each message's subject, for example "
                                                    "[club].")),
    Option("posting", _("Posting messages"), "posting", radio=True),
    Option("reply_to", _("Replies go to:"), "options", radio=True),
    Option("reply_to_address", _("Reply address"), "options", _("When replies go to the address.")),
    Option("trailer", _("Trailer"), "options", _("Added at the end of every message.")),
    Option("digest", _("Digest version"), "options", _(
        "Subscribers may choose to receive one digest instead of each message: %(name)s+subscribe-digest@ "
        "(or %(name)s-digest-subscribe@).")),
    Option("request_address", _("-request command address"), "options", _(
        "%(name)s-request@ takes a command in its subject: subscribe, unsubscribe or help.")),
    Option("language", _("Language of the list's messages"), "options", _(
        "The language of the mail the list server sends: welcome, help, confirmations.")),
    Option("remote_admin", _("Remote administration by moderators"), "remote", _(
        "The list server has no administration by mail beyond moderation: moderators approve the messages and "
        "subscriptions held for them by replying to its mail, and the rest is done on this page."), fixed=True),
    Option("private", _("Private list"), "remote", _(
        "Only the administrators subscribe people: requests by mail are dropped without an answer. "
        "Subscribers may still leave by mail.")),
    Option("remote_admin_list", _("Remote administrators may list the subscribers"), "remote", _(
        "The list's owner may ask for the subscribers by writing to %(name)s+list@ (the list server answers "
        "the owner only, not the moderators).")),
    Option("sub_confirm", _("Subscription requires confirmation by reply"), "subscription", _(
        "A new subscriber must answer a confirmation mail.")),
    Option("sub_moderate", _("Subscription requires moderator approval"), "subscription", _(
        "A moderator must approve each new subscriber.")),
    Option("unsub_confirm", _("Unsubscription requires confirmation by reply"), "unsubscription", _(
        "The list server always asks for a confirmation by reply before it unsubscribes someone: nobody can "
        "unsubscribe another person."), fixed=True),
    Option("archive", _("Archive the messages"), "archive", _(
        "The list keeps its messages; %(name)s+get-N@ retrieves message N.")),
    Option("archive_access", _("Archive retrieval open to"), "archive", _(
        "The list server has no retrieval for moderators only: with \"moderators\", nobody gets old messages "
        "by mail."), radio=True),
)

NAMES = tuple(option.name for option in OPTIONS)
