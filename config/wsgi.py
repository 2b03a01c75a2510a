import os

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# gunicorn runs no system checks: refuse to serve with a missing production setting.
_errors = [e for e in checks.run_checks(tags=["mailpanel"]) if e.is_serious()]
if _errors:
    raise ImproperlyConfigured("\n".join(str(e) for e in _errors))
