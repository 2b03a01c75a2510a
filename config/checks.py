"""System checks that name a production setting that is missing or unsafe."""

from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register

TAG = "mailpanel"


@register(TAG)
def production_settings(app_configs: Any, **kwargs: Any) -> list[Any]:
    """Errors that stop `manage.py` commands and the WSGI app when DEBUG is off."""
    problems: list[Any] = []
    if settings.DEBUG:
        return problems
    if getattr(settings, "SECRET_KEY_MISSING", False):
        problems.append(
            Error(
                "SECRET_KEY is not set.",
                hint="Set the SECRET_KEY environment variable to a long random value "
                "(or DEBUG=1 for development only).",
                id="mailpanel.E001",
            )
        )
    if not settings.ALLOWED_HOSTS:
        problems.append(
            Error(
                "ALLOWED_HOSTS is empty.",
                hint="Set ALLOWED_HOSTS to the panel's host names, comma-separated.",
                id="mailpanel.E002",
            )
        )
    return problems


@register(TAG, deploy=True)
def production_services(app_configs: Any, **kwargs: Any) -> list[Any]:
    """Embedded defaults that `manage.py check --deploy` points out before going live."""
    problems: list[Any] = []
    if not settings.DATABASE_URL:
        problems.append(
            Warning(
                "DATABASE_URL is not set: the panel uses a SQLite file.",
                hint="Set DATABASE_URL=postgres://... for production.",
                id="mailpanel.W001",
            )
        )
    if not settings.REDIS_URL:
        problems.append(
            Warning(
                "REDIS_URL is not set: Celery uses the embedded SQLite broker (one machine only).",
                hint="Set REDIS_URL=redis://... for production.",
                id="mailpanel.W002",
            )
        )
    if not settings.EMAIL_HOST:
        problems.append(
            Warning(
                "EMAIL_HOST is not set: password-reset mails are written to files, not sent.",
                hint="Set EMAIL_HOST (and EMAIL_PORT, EMAIL_HOST_USER, ...) to a mail relay.",
                id="mailpanel.W003",
            )
        )
    return problems
