from django.apps import AppConfig


class VpopmailConfig(AppConfig):
    name = "vpopmail"
    verbose_name = "vpopmail import"
