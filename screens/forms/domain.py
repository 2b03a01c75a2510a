"""The forms of a domain's screens (POP accounts, catch-all, forwards, robots) and of a mailbox
user's own account. They only parse what is typed: every rule (limits, names, loops, quotas,
passwords' strength) is the service's, and its refusal is shown on the form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from hosting.validators import DOMAIN_TYPED_HELP, DOMAIN_TYPED_MAX
from mail.models import (
    ROBOT_REPLY_HOURS_DEFAULT,
    SPAM_MAX_SENDERS,
    SPAM_SCORE_MAX,
    SPAM_SCORE_MIN,
    CatchAllMode,
    Routing,
    SpamMode,
)
from mail.validators import check_new_password, clean_text


class NameField(forms.CharField):
    """A name typed in (an account's, a forward's, a robot's, a list's, a domain's): one too long is
    refused with a clear error, never cut. The input has no `maxlength`, with which the browser
    silently drops what is typed or pasted past it (and the shorter name would be made)."""

    def __init__(self, *, max_length: int, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.TextInput(attrs={"autocapitalize": "none", "autocomplete": "off"}))
        super().__init__(max_length=max_length, error_messages={"max_length": _(
            "This name is too long: at most %(limit_value)d characters (it has %(show_value)d).")}, **kwargs)

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        attrs = super().widget_attrs(widget)
        attrs.pop("maxlength", None)
        return attrs


def lines(value: str) -> list[str]:
    """The non-empty lines (or comma-separated items) of a text box, stripped."""
    return [item.strip() for line in value.splitlines() for item in line.split(",") if item.strip()]


class PasswordPair(forms.Form):
    """A password typed twice, kept as typed; `required=False` for "leave empty to keep it"."""

    password_required = True

    password1 = forms.CharField(label=_("Password"), strip=False, widget=forms.PasswordInput(
        attrs={"autocomplete": "new-password"}))
    password2 = forms.CharField(label=_("Password (again)"), strip=False, widget=forms.PasswordInput(
        attrs={"autocomplete": "new-password"}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("password1", "password2"):
            self.fields[name].required = self.password_required

    def clean_password1(self) -> str:
        password = self.cleaned_data["password1"]
        if password or self.password_required:
            check_new_password(password)  # the services' one rule, shown on its field
        return password

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        # Compared only once the first is accepted: a refused one is not in `data`, and its own
        # error is the one to fix (a weak password typed twice is not a mismatch).
        if "password1" in data and data["password1"] != data.get("password2", ""):
            self.add_error("password2", ValidationError(_("Passwords don't match."), code="mismatch"))
        return data


class MailboxCreateForm(PasswordPair):
    local_part = NameField(label=_("POP account"), max_length=64)
    real_name = forms.CharField(label=_("Real name"), max_length=200, required=False)
    quota_mb = forms.CharField(label=_("Quota (MB)"), max_length=20, required=False)

    field_order = ["local_part", "password1", "password2", "real_name", "quota_mb"]

    def __init__(self, *args: Any, default_quota: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["quota_mb"].help_text = _("Leave empty for the pack's default: %(quota)s.") % {
            "quota": default_quota}


class RoutingFields(forms.Form):
    """Routing and vacation, as QmailAdmin's "Modifier l'utilisateur" and a user's own page."""

    routing = forms.ChoiceField(label=_("Routing"), choices=Routing.choices, widget=forms.RadioSelect)
    forward_to = forms.CharField(
        label=_("Forwarding addresses"), required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One address a line (name@domain); a name alone is a POP account of this domain."),
    )
    keep_copy = forms.BooleanField(label=_("Save a copy"), required=False)
    vacation_enabled = forms.BooleanField(label=_("Send vacation auto-response"), required=False)
    vacation_subject = forms.CharField(label=_("Vacation subject"), max_length=200, required=False)
    vacation_message = forms.CharField(label=_("Vacation message"), max_length=4000, required=False,
                                       widget=forms.Textarea(attrs={"rows": 5}))
    vacation_start = forms.DateField(label=_("From (optional)"), required=False,
                                     widget=forms.DateInput(attrs={"type": "date"}))
    vacation_end = forms.DateField(label=_("Until (optional)"), required=False,
                                   widget=forms.DateInput(attrs={"type": "date"}))

    def clean_vacation_subject(self) -> str:  # the services' text rule, shown on its own field
        return clean_text(self.cleaned_data["vacation_subject"], max_length=200, single_line=True)

    def clean_vacation_message(self) -> str:
        return clean_text(self.cleaned_data["vacation_message"], max_length=4000)

    def clean_forward_to(self) -> list[str]:
        return lines(self.cleaned_data["forward_to"])  # their number and form: the service's rules


class MailboxModifyForm(PasswordPair, RoutingFields):
    """What a domain's admin changes on a POP account (QmailAdmin's "Modifier l'utilisateur")."""

    password_required = False

    real_name = forms.CharField(label=_("Real name"), max_length=200, required=False)
    quota_mb = forms.CharField(label=_("Quota (MB)"), max_length=20, required=False,
                               help_text=_("Empty or 0: unlimited, when the pack allows it."))
    enabled = forms.BooleanField(label=_("Account enabled"), required=False,
                                 help_text=_("A disabled account receives no mail and cannot log in."))
    allow_pop3 = forms.BooleanField(label=_("POP3 allowed"), required=False)
    allow_imap = forms.BooleanField(label=_("IMAP allowed"), required=False)
    allow_smtp = forms.BooleanField(label=_("Sending (SMTP) allowed"), required=False)

    field_order = ["real_name", "password1", "password2", "quota_mb", "enabled", "allow_pop3", "allow_imap",
                   "allow_smtp"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["password1"].label = _("New password")
        self.fields["password2"].label = _("New password (again)")
        self.fields["password1"].help_text = _(
            "Leave empty to keep the current password. A new one replaces it at once: give it to every mail "
            "program that uses this account.")


class OwnAccountForm(PasswordPair, RoutingFields):
    """What a mailbox user changes on their own account: real name, password (the current one
    asked), routing, vacation."""

    password_required = False

    real_name = forms.CharField(label=_("Real name"), max_length=200, required=False)
    current_password = forms.CharField(label=_("Current password"), strip=False, required=False,
                                       widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))

    field_order = ["real_name", "current_password", "password1", "password2"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["password1"].label = _("New password")
        self.fields["password2"].label = _("New password (again)")
        self.fields["password1"].help_text = _("Leave empty to keep the current password.")


class MailboxDeleteForm(forms.Form):
    redirect = forms.BooleanField(label=_("Redirect the e-mail"), required=False)
    redirect_to = forms.CharField(label=_("Yes, forward it to:"), max_length=320, required=False)
    confirm_hostmaster = forms.BooleanField(required=False, label=_(
        "I understand: without hostmaster@, the .fr registry refuses changes to this domain's DNS."))

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("redirect") and not data.get("redirect_to", "").strip():
            self.add_error("redirect_to", ValidationError(_("Enter the address to forward to."), code="required"))
        if not data.get("redirect"):
            data["redirect_to"] = ""
        return data


class CatchAllForm(forms.Form):
    mode = forms.ChoiceField(label=_("Unknown e-mail"), choices=CatchAllMode.choices, widget=forms.RadioSelect)
    mailbox = forms.ChoiceField(label=_("POP account"), required=False)
    remote = forms.CharField(label=_("Remote catch-all address"), max_length=320, required=False)
    other_domain = forms.CharField(label=_("Other domain"), max_length=253, required=False)

    def __init__(self, *args: Any, mailboxes: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["mailbox"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "—"), *((m, m) for m in mailboxes)]

    def target(self) -> str:
        data, mode = self.cleaned_data, self.cleaned_data["mode"]
        return {CatchAllMode.MAILBOX: data.get("mailbox", ""), CatchAllMode.REMOTE: data.get("remote", ""),
                CatchAllMode.DOMAIN: data.get("other_domain", "")}.get(mode, "")


class SpamFilterForm(forms.Form):
    mode = forms.ChoiceField(label=_("Spam"), choices=SpamMode.choices, widget=forms.RadioSelect)
    score = forms.DecimalField(
        label=_("Score"), min_value=SPAM_SCORE_MIN, max_value=SPAM_SCORE_MAX, max_digits=3, decimal_places=1,
        help_text=_("From this score a message is spam: 5 catches more (and more mistakes), 15 only the obvious; "
                    "6 is a good start."))
    allow = forms.CharField(
        label=_("Allowed senders"), required=False, max_length=SPAM_MAX_SENDERS * 330,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Never treated as spam: one address (user@example.com) or domain (example.com) a line."))
    block = forms.CharField(
        label=_("Blocked senders"), required=False, max_length=SPAM_MAX_SENDERS * 330,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Always refused: one address or domain a line."))

    def clean_allow(self) -> list[str]:
        return lines(self.cleaned_data["allow"])  # their form and number: the service's rules

    def clean_block(self) -> list[str]:
        return lines(self.cleaned_data["block"])


class ForwardCreateForm(forms.Form):
    local_part = NameField(label=_("Name"), max_length=64)
    destinations = forms.CharField(
        label=_("Destination"), widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("The forwarding e-mail must be in the form user@domain.com; one address a line."),
    )

    def clean_destinations(self) -> list[str]:
        return lines(self.cleaned_data["destinations"])  # none, too many, their form: the service's rules


class DestinationForm(forms.Form):
    destination = forms.CharField(label=_("Add the e-mail address"), max_length=320)


class RobotForm(forms.Form):
    local_part = NameField(label=_("Mail robot name"), max_length=64)
    copy_to = forms.CharField(label=_("Send copy to"), max_length=320, required=False)
    subject = forms.CharField(label=_("Subject"), max_length=200)
    message = forms.CharField(label=_("Message"), max_length=4000, widget=forms.Textarea(attrs={"rows": 8}))
    reply_hours = forms.IntegerField(
        label=_("Hours between two replies to one sender"), initial=ROBOT_REPLY_HOURS_DEFAULT,
        help_text=_("A sender who writes again within this time gets no second reply."),
    )

    def clean_subject(self) -> str:  # the services' text rule, shown on its own field
        return clean_text(self.cleaned_data["subject"], max_length=200, single_line=True)

    def clean_message(self) -> str:
        return clean_text(self.cleaned_data["message"], max_length=4000)

    def __init__(self, *args: Any, renaming: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not renaming:  # a robot's name is set when it is made
            del self.fields["local_part"]


class DomainAddForm(PasswordPair):
    """A new domain of a pack, with the password of its postmaster (and hostmaster on a .fr)."""

    name = NameField(label=_("Domain name"), max_length=DOMAIN_TYPED_MAX, help_text=DOMAIN_TYPED_HELP,
                     widget=forms.TextInput(attrs={"autocapitalize": "none"}))  # read by the service

    field_order = ["name", "password1", "password2"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["password1"].label = _("Password of postmaster")


class AliasDomainForm(forms.Form):
    """A new alias domain of a domain: its name alone (the service checks it as a new domain's)."""

    name = NameField(label=_("Alias domain name"), max_length=DOMAIN_TYPED_MAX, help_text=DOMAIN_TYPED_HELP,
                     widget=forms.TextInput(attrs={"autocapitalize": "none"}))


class RenameForm(forms.Form):
    new_local_part = NameField(label=_("New name"), max_length=64, help_text=_(
        "The account's mail, password and settings follow it; the old address stops receiving."))
    confirm_hostmaster = forms.BooleanField(required=False, label=_(
        "I understand: without hostmaster@, the .fr registry refuses changes to this domain's DNS."))

    def __init__(self, *args: Any, hostmaster: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not hostmaster:  # the confirmation is asked of a .fr domain's hostmaster only
            del self.fields["confirm_hostmaster"]
