"""How an audit event reads on a page: the action's label, who did it (and on which domain, when
it is not the domain's own admin), what changed. Nothing here queries the database: the model of
an event's object is looked up in the app registry (its field names and choices), not imported,
so hosting stays below the apps whose rows it describes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from hosting.models import AuditEvent
from hosting.roles import Role
from hosting.validators import domain_to_unicode

# Every action's label, keyed by its value (`Action` member values; tests check that none lacks one).
ACTION_LABELS: dict[str, Any] = {
    "dkim.create": gettext_lazy("DKIM key created"),
    "dkim.rotate": gettext_lazy("DKIM key rotation started"),
    "dkim.activate": gettext_lazy("New DKIM key signing"),
    "customer.create": gettext_lazy("Customer created"),
    "customer.change": gettext_lazy("Customer changed"),
    "customer.delete": gettext_lazy("Customer deleted"),
    "plan.create": gettext_lazy("Plan created"),
    "plan.change": gettext_lazy("Plan changed"),
    "plan.delete": gettext_lazy("Plan deleted"),
    "pack.create": gettext_lazy("Pack created"),
    "pack.change": gettext_lazy("Pack changed"),
    "pack.delete": gettext_lazy("Pack deleted"),
    "pack.move": gettext_lazy("Pack moved to another mail host"),
    "domain.create": gettext_lazy("Domain created"),
    "domain.delete": gettext_lazy("Domain deleted"),
    "domain.retry": gettext_lazy("Domain sent again to its mail host"),
    "domain.verify": gettext_lazy("Domain proven its customer's (served by its mail host)"),
    "domain.alias_create": gettext_lazy("Alias domain created"),
    "domain.alias_delete": gettext_lazy("Alias domain deleted"),
    "mailbox.create": gettext_lazy("POP account created"),
    "mailbox.delete": gettext_lazy("POP account deleted"),
    "mailbox.rename": gettext_lazy("POP account renamed"),
    "mailbox.set_password": gettext_lazy("Password changed"),
    "mailbox.set_routing": gettext_lazy("Routing changed"),
    "mailbox.set_vacation": gettext_lazy("Vacation auto-response changed"),
    "mailbox.set_access": gettext_lazy("Access rights changed"),
    "mailbox.set_real_name": gettext_lazy("Real name changed"),
    "mailbox.set_admin": gettext_lazy("Domain admin rights changed"),
    "mailbox.set_quota": gettext_lazy("Quota changed"),
    "mailbox.export": gettext_lazy("POP accounts exported as CSV"),
    "mailbox.import": gettext_lazy("POP accounts imported (a CSV file, or another server)"),
    "forward.create": gettext_lazy("Forward created"),
    "forward.change": gettext_lazy("Forward changed"),
    "forward.delete": gettext_lazy("Forward deleted"),
    "forward.export": gettext_lazy("Forwards exported as CSV"),
    "forward.import": gettext_lazy("Forwards imported (a CSV file, or another server)"),
    "robot.create": gettext_lazy("Mail robot created"),
    "robot.change": gettext_lazy("Mail robot changed"),
    "robot.delete": gettext_lazy("Mail robot deleted"),
    "catchall.set": gettext_lazy("Handling of unknown e-mail changed"),
    "spam_filter.set": gettext_lazy("Spam filtering changed"),
    "list.create": gettext_lazy("Mailing list created"),
    "list.delete": gettext_lazy("Mailing list deleted"),
    "list.member_add": gettext_lazy("Address added to a mailing list"),
    "list.member_remove": gettext_lazy("Address removed from a mailing list"),
    "list.update": gettext_lazy("Mailing list changed"),
    "list.member_import": gettext_lazy("Addresses imported into a mailing list"),
    "list.moderate": gettext_lazy("Held message approved or rejected"),
    "mailhost.create": gettext_lazy("Mail host created"),
    "mailhost.change": gettext_lazy("Mail host changed"),
    "mailhost.delete": gettext_lazy("Mail host deleted"),
    "reseller.create": gettext_lazy("Reseller created"),
    "reseller.change": gettext_lazy("Reseller changed"),
    "reseller.delete": gettext_lazy("Reseller deleted"),
    "user.create": gettext_lazy("User created"),
    "user.change": gettext_lazy("User changed"),
    "user.delete": gettext_lazy("User deleted"),
}

ROLE_LABELS: dict[str, Any] = {
    Role.OPERATOR: gettext_lazy("operator"),
    Role.SUPPORT: gettext_lazy("support"),
    Role.RESELLER: gettext_lazy("reseller"),
    Role.CUSTOMER: gettext_lazy("customer"),
    Role.DOMAIN_ADMIN: gettext_lazy("domain admin"),
    Role.MAILBOX: gettext_lazy("POP account"),
}
SYSTEM = "system"  # `actor_role` of an act of the panel itself (no actor)
# Seats that act on a domain from outside it: their events say "acting on <domain>".
ACTING_ON = {Role.OPERATOR, Role.SUPPORT, Role.RESELLER, Role.CUSTOMER}
EMPTY = "—"


def action_label(action: str) -> str:
    """The action's label in the current language (an action without one: its stored name)."""
    label = ACTION_LABELS.get(action)
    return str(label) if label is not None else action


def role_label(role: str) -> str:
    label = ROLE_LABELS.get(role)
    return str(label) if label is not None else role


def who(event: AuditEvent) -> str:
    """"agent@support.test (support) acting on example.fr", "postmaster@example.fr (domain admin)"."""
    if event.actor_role == SYSTEM:
        return _("the system")
    names = {"who": event.actor_label, "role": role_label(event.actor_role)}
    if event.actor_role in ACTING_ON and event.domain_name:
        return _("%(who)s (%(role)s) acting on %(domain)s") % {
            **names, "domain": domain_to_unicode(event.domain_name)}
    return _("%(who)s (%(role)s)") % names


def _model_of(event: AuditEvent) -> type[models.Model] | None:
    try:
        return apps.get_model(event.target_type) if event.target_type else None
    except (LookupError, ValueError):
        return None


def _field(model: type[models.Model] | None, name: str) -> models.Field | None:
    if model is None:
        return None
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    return field if isinstance(field, models.Field) else None


def value_label(field: models.Field | None, value: Any) -> str:
    """A stored value as a reader wants it: a choice's label, yes/no, a list joined, "—" for none."""
    if value is None or value == "" or value == []:
        return EMPTY
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list):
        return ", ".join(value_label(field, item) for item in value)
    if field is not None and field.choices:
        return str(dict(field.flatchoices).get(value, value))
    return str(value)


LIST_TEXT = "text:"  # a mailing list's text file changed: "text:<file>" (lists.services.list_set_text)


def change_label(field: models.Field | None, name: str, names: Mapping[str, str] | None = None) -> str:
    """The name of a changed thing in the current language: the field's verbose name, else its
    label in `names` (the floors above name what they store: a list's texts), else a list's text
    by its file; a name the panel no longer knows stays as stored."""
    if field is not None:
        return str(field.verbose_name)
    if names and name in names:
        return names[name]
    if name.startswith(LIST_TEXT):
        return _("list text “%(file)s”") % {"file": name.removeprefix(LIST_TEXT)}
    return name


def changes(event: AuditEvent, names: Mapping[str, str] | None = None) -> list[tuple[str, str, str]]:
    """What the act changed: (the field's name in the current language, before, after). The row
    keeps names and values, never labels: they are read in the reader's language here."""
    model = _model_of(event)
    detail = event.detail if isinstance(event.detail, dict) else {}
    rows = []
    for name, pair in (detail.get("changes") or {}).items():
        if not isinstance(pair, list) or len(pair) != 2:
            continue
        field = _field(model, name)
        rows.append((change_label(field, name, names), value_label(field, pair[0]), value_label(field, pair[1])))
    return rows


def changes_html(event: AuditEvent, names: Mapping[str, str] | None = None) -> SafeString | str:
    """The before → after list of an event (escaped), or "—" when it names no change; `names`:
    labels of changed things that are not fields (`change_label`)."""
    rows = [_("%(field)s: %(before)s → %(after)s") % {"field": f, "before": b, "after": a}
            for f, b, a in changes(event, names)]
    detail = event.detail if isinstance(event.detail, dict) else {}
    if detail.get("password_changed"):
        rows.append(_("The password was changed."))
    if not rows:
        return EMPTY
    return format_html('<ul class="changes">{}</ul>', format_html_join("", "<li>{}</li>", ((r,) for r in rows)))


def object_kind(event: AuditEvent) -> str:
    """The kind of the event's object (its model's name in the current language), or ""."""
    model = _model_of(event)
    return capfirst(str(model._meta.verbose_name)) if model is not None else ""


CATCHALL = "mail.catchall"


def object_name(event: AuditEvent) -> str:
    """The event's object as stored (an address, a name), except the catch-all's, whose stored
    name carries its mode in the language of the act: it is read again from the row's `mode`
    ("example.fr: E-mail inconnu : rejeté"), old rows included."""
    detail = event.detail if isinstance(event.detail, dict) else {}
    if event.target_type == CATCHALL and "mode" in detail and event.domain_name:
        mode = value_label(_field(_model_of(event), "mode"), detail["mode"])
        return _("%(domain)s: %(mode)s") % {"domain": domain_to_unicode(event.domain_name), "mode": mode}
    return event.target_repr or EMPTY
