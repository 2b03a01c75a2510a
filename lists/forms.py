"""The forms of a domain's mailing lists. They only parse what is typed: the rules (limits, names,
addresses, text) are the services', and their refusal is shown on the form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy
from django.utils.translation import gettext_lazy as _

from lists import imports
from lists.models import ArchiveAccess, Language, MailingList, MemberKind, Posting, ReplyTo
from lists.services import MAX_LIST_NAME, OPTION_FIELDS
from mail.screen_forms import MailboxCreateForm
from mail.validators import clean_text, normalize_address

# What mlmmj (the list server) cannot do, said on the form instead of pretending.
NOT_ON_MLMMJ = {
    "unsub_confirm": _("The list server always asks for a confirmation by reply before it unsubscribes "
                       "someone: nobody can unsubscribe another person."),
    "remote_admin": _("The list server has no administration by mail beyond moderation: moderators approve "
                      "the messages and subscriptions held for them by replying to its mail, and the rest is "
                      "done on this page."),
}

OPTION_HELP = {
    "digest": _("Subscribers may choose to receive one digest instead of each message: %(name)s+subscribe-digest@ "
                "(or %(name)s-digest-subscribe@)."),
    "request_address": _("%(name)s-request@ takes a command in its subject: subscribe, unsubscribe or help."),
    "remote_admin_list": _("The list's owner may ask for the subscribers by writing to %(name)s+list@ (the list "
                           "server answers the owner only, not the moderators)."),
    "private": _("Only the administrators subscribe people: requests by mail are dropped without an answer. "
                 "Subscribers may still leave by mail."),
    "sub_confirm": _("A new subscriber must answer a confirmation mail."),
    "sub_moderate": _("A moderator must approve each new subscriber."),
    "archive": _("The list keeps its messages; %(name)s+get-N@ retrieves message N."),
    "archive_access": _("The list server has no retrieval for moderators only: with \"moderators\", nobody "
                        "gets old messages by mail."),
}


class ListForm(forms.Form):
    """QmailAdmin's list page: name (when it is made), owner, prefix, who may post, replies,
    trailer, and the list's options."""

    name = forms.CharField(label=_("Mailing list name"), max_length=MAX_LIST_NAME, widget=forms.TextInput(
        attrs={"autocapitalize": "none", "autocomplete": "off"}))
    owner = forms.CharField(label=_("List owner"), max_length=320, help_text=_(
        "Receives the list's administrative mail; subscribed to the list when it is made."))
    prefix = forms.CharField(label=_("Subject prefix"), max_length=64, required=False, help_text=_(
        "Put at the start of each message's subject, for example [club]."))
    posting = forms.ChoiceField(label=_("Posting messages"), choices=Posting.choices, widget=forms.RadioSelect,
                                initial=Posting.SUBSCRIBERS)
    reply_to = forms.ChoiceField(label=_("Replies go to:"), choices=ReplyTo.choices, widget=forms.RadioSelect,
                                 initial=ReplyTo.SENDER)
    reply_to_address = forms.CharField(label=_("Reply address"), max_length=320, required=False,
                                       help_text=_("When replies go to the address."))
    trailer = forms.CharField(label=_("Trailer"), max_length=2000, required=False, widget=forms.Textarea(
        attrs={"rows": 3}), help_text=_("Added at the end of every message."))
    language = forms.ChoiceField(label=_("Language of the list's messages"), choices=Language.choices,
                                 initial=Language.FRENCH, help_text=_(
                                     "The language of the mail the list server sends: welcome, help, confirmations."))
    digest = forms.BooleanField(label=_("Digest version"), required=False)
    request_address = forms.BooleanField(label=_("-request command address"), required=False, initial=True)
    remote_admin = forms.BooleanField(label=_("Remote administration by moderators"), required=False,
                                      disabled=True)
    remote_admin_list = forms.BooleanField(label=_("Remote administrators may list the subscribers"),
                                           required=False)
    private = forms.BooleanField(label=_("Private list"), required=False)
    sub_confirm = forms.BooleanField(label=_("Subscription requires confirmation by reply"), required=False,
                                     initial=True)
    sub_moderate = forms.BooleanField(label=_("Subscription requires moderator approval"), required=False)
    unsub_confirm = forms.BooleanField(label=_("Unsubscription requires confirmation by reply"), required=False,
                                       initial=True, disabled=True)
    archive = forms.BooleanField(label=_("Archive the messages"), required=False, initial=True)
    archive_access = forms.ChoiceField(label=_("Archive retrieval open to"), choices=ArchiveAccess.choices,
                                       widget=forms.RadioSelect, initial=ArchiveAccess.SUBSCRIBERS)

    # The seed's sections of the form, in its order.
    SECTIONS = (
        ("", ("name", "owner", "prefix"), ""),
        (_("Posting messages"), ("posting",), ""),
        (_("List options"), ("reply_to", "reply_to_address", "trailer", "digest", "request_address", "language"),
         ""),
        (_("Remote administration"), ("remote_admin", "private", "remote_admin_list"), _(
            "Remote administrators may edit the text files: not possible with this list server; edit them on "
            "the list's page.")),
        (_("Subscription requests"), ("sub_confirm", "sub_moderate"), ""),
        (_("Unsubscription requests"), ("unsub_confirm",), ""),
        (_("Message archives"), ("archive", "archive_access"), ""),
    )

    def sections(self) -> list[tuple[Any, list[Any], Any]]:
        """(legend, bound fields, a note) of each section, for the template."""
        return [(legend, [self[name] for name in names if name in self.fields], note)
                for legend, names, note in self.SECTIONS]

    def __init__(self, *args: Any, mailing_list: MailingList | None = None, list_name: str = "", **kwargs: Any):
        if mailing_list is not None:
            kwargs.setdefault("initial", {name: getattr(mailing_list, name) for name in (
                "owner", "prefix", "posting", "reply_to", "reply_to_address", "trailer", "language",
                "archive_access", *OPTION_FIELDS)})
        super().__init__(*args, **kwargs)
        if mailing_list is not None:  # a list's name is set when it is made
            del self.fields["name"]
        shown = {"name": mailing_list.name if mailing_list is not None else list_name or _("list")}
        for name, text in OPTION_HELP.items():
            self.fields[name].help_text = text % shown
        for name, text in NOT_ON_MLMMJ.items():
            self.fields[name].help_text = text
        self.fields["unsub_confirm"].initial = True  # disabled: the posted value is ignored

    # The services' own rules, run here too so that each refusal shows on its field.
    def clean_owner(self) -> str:
        return normalize_address(self.cleaned_data["owner"])

    def clean_prefix(self) -> str:
        return clean_text(self.cleaned_data["prefix"], max_length=64, single_line=True)

    def clean_trailer(self) -> str:
        return clean_text(self.cleaned_data["trailer"], max_length=2000)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("reply_to") == ReplyTo.ADDRESS:
            try:
                data["reply_to_address"] = normalize_address(data.get("reply_to_address", ""))
            except ValidationError as error:
                self.add_error("reply_to_address", error)
        return data

    def options(self) -> dict[str, bool]:
        return {name: self.cleaned_data[name] for name in OPTION_FIELDS}

    def settings(self) -> dict[str, Any]:
        """The service's keyword arguments (list_create and list_update share them)."""
        data = self.cleaned_data
        return {"owner": data["owner"], "prefix": data["prefix"], "posting": data["posting"],
                "reply_to": data["reply_to"], "reply_to_address": data["reply_to_address"],
                "trailer": data["trailer"], "archive_access": data["archive_access"],
                "language": data["language"], **self.options()}


TEXT_LABELS = {
    "prologue": _("Top of the list's messages to a new subscriber"),
    "help": _("Help (answer to %(name)s+help@)"),
    "finish-sub": _("Welcome (sent when a subscription is done)"),
    "deny-post": _("Refused message (sent to a sender who may not post)"),
    "moderate-post": _("Message held for the moderators (sent to the moderators)"),
    "notify": _("Notice to the owner of a subscription or an unsubscription"),
    "digest": _("Top of each digest"),
}


class ListTextForm(forms.Form):
    text = forms.CharField(label=_("Text"), max_length=20_000, required=False, strip=False, widget=forms.Textarea(
        attrs={"rows": 16}), help_text=_("Leave empty to use the list server's own text, in the list's language."))


class MemberForm(forms.Form):
    address = forms.CharField(label=_("E-mail address"), max_length=320, widget=forms.TextInput(
        attrs={"autocapitalize": "none", "autocomplete": "off", "inputmode": "email"}))


class MailboxWithListsForm(MailboxCreateForm):
    """"Nouveau compte Pop" with QmailAdmin's "subscribe to these lists" checkboxes."""

    # The queryset is the view's: the domain's lists the seat may see (`visible_to`).
    lists = forms.ModelMultipleChoiceField(label=_("Subscribe to these lists"), required=False, queryset=None,
                                           widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args: Any, lists: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if lists is None:
            del self.fields["lists"]
        else:
            self.fields["lists"].queryset = lists



def member_kind(value: str | None) -> str:
    """The kind of member a page is about (`?kind=`): subscribers unless it names another."""
    return value if value in MemberKind.values else MemberKind.SUBSCRIBER


MB = 1024 * 1024
PASTE_MAX_CHARS = 2_000_000  # under Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB): more goes in a file


class ImportForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Import as"), choices=MemberKind.choices)
    text = forms.CharField(
        label=gettext_lazy("Addresses"), required=False, max_length=PASTE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false", "autocomplete": "off"}),
        help_text=gettext_lazy("One address a line, or Name <address>."))
    file = forms.FileField(
        label=gettext_lazy("Or a CSV file"), required=False,
        help_text=gettext_lazy("A column of addresses, separated by ; or , (at most 5 MB)."))

    def clean_file(self) -> bytes | None:
        upload = self.cleaned_data.get("file")
        if upload is None:
            return None
        if upload.size > imports.MAX_UPLOAD_BYTES:
            raise ValidationError(_("The file is too large (at most %(max)d MB)."), code="too_large",
                                  params={"max": imports.MAX_UPLOAD_BYTES // MB})
        return upload.read(imports.MAX_UPLOAD_BYTES + 1)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("file") and data.get("text", "").strip():
            raise ValidationError(_("Paste addresses or choose a file, not both."), code="both")
        return data
