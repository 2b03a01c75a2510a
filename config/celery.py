"""The panel's Celery application; its settings come from Django's (CELERY_*)."""

import os

from celery import Celery

import mailhost.broker  # noqa: F401 - registers the embedded broker's URL scheme (sqlite://)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("mailpanel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
