from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from hosting.validators import DOMAIN_TYPED_HELP, DOMAIN_TYPED_MAX
from mail.auth import DEFAULT_ACCOUNT
from mail.validators import check_new_password


class MailboxLoginForm(forms.Form):
    """QmailAdmin's login: Compte (postmaster by default), Nom de domaine, Mot de passe."""

    account = forms.CharField(
        label=_("Account"), initial=DEFAULT_ACCOUNT, max_length=320,
        help_text=_("postmaster to manage the domain, or your own address (name@domain)."),
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none"}),
    )
    domain = forms.CharField(  # read by hosting.validators.domain_as_typed, as when it was added
        label=_("Domain name"), max_length=DOMAIN_TYPED_MAX, required=False,
        help_text=DOMAIN_TYPED_HELP,
        widget=forms.TextInput(attrs={"autocapitalize": "none"}),
    )
    password = forms.CharField(  # verified exactly as typed, as the mail server does
        label=_("Password"), max_length=1024, strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        account = data.get("account", "")
        if "@" not in account and not data.get("domain"):
            self.add_error("domain", _("Enter the domain name, or type name@domain in the Account field."))
        return data


class NewPasswordForm(forms.Form):
    """A new password twice, kept as typed and checked by `check_new_password` (no maxlength in
    the page: a browser would cut a longer pasted password without a word)."""

    new_password1 = forms.CharField(
        label=_("New password"), strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    new_password2 = forms.CharField(
        label=_("New password (again)"), strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_new_password1(self) -> str:
        password = self.cleaned_data["new_password1"]
        check_new_password(password)
        return password

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if "new_password1" in data and data["new_password1"] != data.get("new_password2"):
            self.add_error("new_password2", ValidationError(_("Passwords don't match."), code="mismatch"))
        return data


class StandalonePasswordForm(NewPasswordForm):
    """The public "change my password" page: address, old password, new password twice."""

    address = forms.CharField(
        label=_("E-mail address"), max_length=320,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none"}),
    )
    old_password = forms.CharField(
        label=_("Current password"), max_length=1024, strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    field_order = ["address", "old_password", "new_password1", "new_password2"]


class OwnPasswordForm(NewPasswordForm):
    """A logged-in user's new password: the current one is asked too (a session left open is not
    enough to take the account)."""

    current_password = forms.CharField(
        label=_("Current password"), max_length=1024, strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    field_order = ["current_password", "new_password1", "new_password2"]
