from django.apps import AppConfig, apps
from django.utils.translation import gettext_lazy as _

from config import checks  # noqa: F401 - registers the system checks

# allauth.mfa's Authenticator names itself and its fields in English only (no verbose_name): the
# admin shows them through our catalogue. Only the names read at run time change, never the
# model's declared options (`_meta.original_attrs`, the fields' own arguments): no migration.
AUTHENTICATOR_NAMES = {"verbose_name": _("authenticator"), "verbose_name_plural": _("authenticators")}
AUTHENTICATOR_FIELDS = {"user": _("user"), "type": _("type"), "data": _("data"),
                        "created_at": _("created"), "last_used_at": _("last used")}


class HostingConfig(AppConfig):
    name = "hosting"
    verbose_name = _("Hosting")

    def ready(self) -> None:
        if not apps.is_installed("allauth.mfa"):
            return
        authenticator = apps.get_model("mfa", "Authenticator")
        for name, label in AUTHENTICATOR_NAMES.items():
            setattr(authenticator._meta, name, label)
        for name, label in AUTHENTICATOR_FIELDS.items():
            authenticator._meta.get_field(name).verbose_name = label
