from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ListsConfig(AppConfig):
    name = "lists"
    verbose_name = _("Mailing lists")

    def ready(self) -> None:
        # Django's place for connecting receivers, once every model is loaded (allowed by
        # tests/test_import_graph.py).
        from lists import signals  # noqa: F401 - a renamed mailbox's lists follow it
