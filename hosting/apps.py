from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from config import checks  # noqa: F401 - registers the system checks


class HostingConfig(AppConfig):
    name = "hosting"
    verbose_name = _("Hosting")
