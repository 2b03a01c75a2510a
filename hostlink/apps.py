from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HostlinkConfig(AppConfig):
    name = "hostlink"
    verbose_name = _("Provisioning")
