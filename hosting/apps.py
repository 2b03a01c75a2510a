from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HostingConfig(AppConfig):
    name = "hosting"
    verbose_name = _("Hosting")

    def ready(self) -> None:
        from config import checks  # noqa: F401 - registers the system checks
        from hosting import signals  # noqa: F401 - connects the login signal
