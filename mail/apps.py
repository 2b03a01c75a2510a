from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MailConfig(AppConfig):
    name = "mail"
    verbose_name = _("Mail")

    def ready(self) -> None:
        # Django's place for connecting receivers: once every model is loaded (the project's one
        # function-level import, allowed by tests/test_import_graph.py).
        from mail import signals  # noqa: F401 - connects the login signal
