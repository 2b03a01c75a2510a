"""The forms of a domain's mailing lists. They only parse what is typed: the rules (limits, names,
addresses, text) are the services', and their refusal is shown on the form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy
from django.utils.translation import gettext_lazy as _

from lists import imports, options
from lists.models import MailingList, MemberKind, ReplyTo
from lists.services import MAX_LIST_NAME, option_column
from mail.validators import clean_text, normalize_address
from screens.forms.domain import MailboxCreateForm, NameField


class ListForm(forms.Form):
    """QmailAdmin's list page: name (when it is made) and the list's options, each field made from
    its column and its line in `lists.options` (label, help, section)."""

    name = NameField(label=_("Mailing list name"), max_length=MAX_LIST_NAME)

    def __init__(self, *args: Any, mailing_list: MailingList | None = None, list_name: str = "", **kwargs: Any):
        if mailing_list is not None:
            kwargs.setdefault("initial", {name: getattr(mailing_list, name) for name in options.NAMES})
        super().__init__(*args, **kwargs)
        if mailing_list is not None:  # a list's name is set when it is made
            del self.fields["name"]
        shown = {"name": mailing_list.name if mailing_list is not None else list_name or _("list")}
        for option in options.OPTIONS:
            self.fields[option.name] = option_field(option, str(option.help) % shown if option.help else "")

    def sections(self) -> list[tuple[Any, list[Any], Any]]:
        """(legend, bound fields, a note) of each section (`lists.options.SECTIONS`), for the template."""
        names: dict[str, list[str]] = {section.key: [] for section in options.SECTIONS}
        names["main"].append("name")
        for option in options.OPTIONS:
            names[option.section].append(option.name)
        return [(section.legend, [self[name] for name in names[section.key] if name in self.fields], section.note)
                for section in options.SECTIONS]

    # The services' own rules, run here too so that each refusal shows on its field.
    def clean_owner(self) -> str:
        return normalize_address(self.cleaned_data["owner"])

    def clean_prefix(self) -> str:
        return clean_text(self.cleaned_data["prefix"], max_length=64, single_line=True)

    def clean_trailer(self) -> str:
        return clean_text(self.cleaned_data["trailer"], max_length=2000)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("reply_to") == ReplyTo.ADDRESS:
            try:
                data["reply_to_address"] = normalize_address(data.get("reply_to_address", ""))
            except ValidationError as error:
                self.add_error("reply_to_address", error)
        return data

    def settings(self) -> dict[str, Any]:
        """The service's keyword arguments (list_create and list_update share them)."""
        return {name: self.cleaned_data[name] for name in options.NAMES}


def option_field(option: options.Option, help_text: str) -> forms.Field:
    """The form field of a list's option: its column's (type, length, choices, default) with the
    table's label and help; radio buttons, a short text box, or shown and never posted (`fixed`)."""
    column = option_column(option.name)
    widget: dict[str, Any] = {"widget": forms.RadioSelect} if option.radio else {}
    if isinstance(column, models.TextField):
        widget = {"widget": forms.Textarea(attrs={"rows": 3})}
    field = column.formfield(label=option.label, help_text=help_text, **widget)
    assert field is not None  # every option's column has a form field
    field.disabled = option.fixed
    return field


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
        attrs={"rows": 16}), help_text=_(
            "It may begin with its subject, written “Subject: …” on the first line, then an empty line; no other "
            "header. Leave empty to use the list server's own text, in the list's language."))


class MemberForm(forms.Form):
    address = forms.CharField(label=_("E-mail address"), max_length=320, widget=forms.TextInput(
        attrs={"autocapitalize": "none", "autocomplete": "off", "inputmode": "email"}))

    def clean_address(self) -> str:
        """The service's own reading of an address, so that one already on the list is found."""
        return normalize_address(self.cleaned_data["address"])


class MailboxWithListsForm(MailboxCreateForm):
    """"Nouveau compte Pop" with QmailAdmin's "subscribe to these lists" checkboxes."""

    # The queryset is the view's: the domain's lists the seat may see (`visible_to`).
    lists: forms.ModelMultipleChoiceField[MailingList] = forms.ModelMultipleChoiceField(
        label=_("Subscribe to these lists"), required=False, queryset=None, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args: Any, lists: QuerySet[MailingList] | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if lists is None:
            del self.fields["lists"]
        else:
            field = self.fields["lists"]
            assert isinstance(field, forms.ModelMultipleChoiceField)
            field.queryset = lists



def member_kind(value: str | None) -> MemberKind:
    """The kind of member a page is about (`?kind=`): subscribers unless it names another."""
    return MemberKind(value) if value in MemberKind.values else MemberKind.SUBSCRIBER


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
        super().clean()
        data = self.cleaned_data
        if data.get("file") and data.get("text", "").strip():
            raise ValidationError(_("Paste addresses or choose a file, not both."), code="both")
        return data
