"""Settings of the panel, read from the environment with safe defaults.

Nothing here needs a server to start: without DATABASE_URL the panel uses a SQLite file under
var/, without REDIS_URL an embedded Celery broker (one SQLite file, mailhost/broker.py) and a file cache.
DEBUG is off unless asked; a missing production setting is named by a system check
(config/checks.py) rather than guessed.
"""

from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.utils.translation import gettext_lazy as _

from config.env import env_bool, env_int, env_list, env_str
from mailhost import broker, contract

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)

# A development key is used only when DEBUG is on; without DEBUG and without SECRET_KEY the
# placeholder stays and the system check `mailpanel.E001` refuses to serve.
DEV_SECRET_KEY = "dev-only-not-a-secret-never-use-in-production"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY") or (DEV_SECRET_KEY if DEBUG else "")
SECRET_KEY_MISSING = not SECRET_KEY
if SECRET_KEY_MISSING:
    SECRET_KEY = "unset"  # noqa: S105 - refused by the system check mailpanel.E001

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
CSRF_FAILURE_VIEW = "screens.views.errors.csrf_failure"  # says in plain words why, and the way back

HTTPS_ONLY = env_bool("HTTPS_ONLY", False)
SESSION_COOKIE_SECURE = HTTPS_ONLY
CSRF_COOKIE_SECURE = HTTPS_ONLY
SECURE_SSL_REDIRECT = HTTPS_ONLY
SECURE_HSTS_SECONDS = 31536000 if HTTPS_ONLY else 0
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600)
# The language chosen at /i18n/setlang/: sent only over HTTPS under HTTPS_ONLY, never read by
# scripts, not sent along cross-site requests.
LANGUAGE_COOKIE_SECURE = HTTPS_ONLY
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
# Content-Security-Policy on every response (django-csp): scripts, styles, images, fonts and
# forms from the panel's own origin only; no inline script or style, no plugin, no <base>, never
# framed. Images may also be data: URIs (the TOTP QR code of allauth's MFA page is one).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "django_tables2",
    "hosting",
    "mail",
    "lists",
    "provisioning",
    "hostlink",
    "vpopmail",
    "screens",
]

MIDDLEWARE = [
    "screens.middleware.ClientAutoconfigHosts",  # autoconfig.<domain>, autodiscover.<domain>: their paths only
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "mail.middleware.MailboxSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "screens.context_processors.seat",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
# SQLite: every transaction takes the write lock at its start, waiting up to 20 s for it (a
# deferred one that read first and then writes is refused at once, "database is locked", when
# another process holds the lock: the e2e workers' imports failed so). A sqlite:// DATABASE_URL
# (the e2e workers') gets the same.
SQLITE_OPTIONS = {"transaction_mode": "IMMEDIATE", "timeout": 20}
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        DATABASES["default"]["OPTIONS"] = {**SQLITE_OPTIONS, **DATABASES["default"].get("OPTIONS", {})}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "panel.sqlite3"),
            "OPTIONS": SQLITE_OPTIONS,
            # A file, not memory: the end-to-end tests' Celery workers open the test database too.
            "TEST": {"NAME": str(VAR_DIR / "test-panel.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_PREFIX", "mailpanel"),
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

AUTH_USER_MODEL = "hosting.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "screens:home"

# django-allauth: e-mail + password, no public sign-up (resellers create customers), TOTP 2FA.
ACCOUNT_ADAPTER = "hosting.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env_str("MFA_TOTP_ISSUER", "Mail panel")

# The QmailAdmin-style mailbox login: failed attempts allowed per window, per address and per IP.
MAILBOX_LOGIN_MAX_FAILURES = env_int("MAILBOX_LOGIN_MAX_FAILURES", 5)
MAILBOX_LOGIN_MAX_FAILURES_PER_IP = env_int("MAILBOX_LOGIN_MAX_FAILURES_PER_IP", 30)
MAILBOX_LOGIN_WINDOW_SECONDS = env_int("MAILBOX_LOGIN_WINDOW_SECONDS", 300)

EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 25)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
else:
    # No mail relay configured: messages (password resets) are written to files under var/.
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = VAR_DIR / "outbox"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "panel@localhost")

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", _("French")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = env_str("TIME_ZONE", "Europe/Paris")
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

DJANGO_TABLES2_TEMPLATE = "tables/table.html"
DJANGO_TABLES2_PAGE_RANGE = 7

# Celery: Redis when REDIS_URL is set, otherwise the embedded broker, a SQLite file under var/ that
# needs no server (mailhost/broker.py; the local agent's default is the same file).
CELERY_BROKER_URL = REDIS_URL or broker.url_for(VAR_DIR / broker.FILE_NAME)
CELERY_TASK_DEFAULT_QUEUE = contract.PANEL_QUEUE
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ROUTES = {
    contract.PANEL_TASK_PATTERN: {"queue": contract.PANEL_QUEUE},
    # Long tasks on the bulk queue and its own worker (bin/run): pushes never wait behind them.
    "lists.import_members": {"queue": contract.BULK_QUEUE},
    "mail.import_accounts": {"queue": contract.BULK_QUEUE},
    # The background DNS check of unproven domains (up to a minute when DNS is slow: hosting.dns).
    "provisioning.check_unproven": {"queue": contract.BULK_QUEUE},
    # The DNS checks of every domain (MX, SPF, DKIM, DMARC: provisioning.dnscheck), beat and "Check now".
    "provisioning.dns_check_due": {"queue": contract.BULK_QUEUE},
    "provisioning.dns_check_domains": {"queue": contract.BULK_QUEUE},
    # DKIM keys made (RSA: a fraction of a second of CPU each) and switched (provisioning.dkim).
    "provisioning.dkim_ensure": {"queue": contract.BULK_QUEUE},
    "provisioning.dkim_maintain": {"queue": contract.BULK_QUEUE},
}
# At most one document per domain in this many milliseconds: the changes made meanwhile travel
# together in the next one (a burst of 1,000 changes sends a few dozen documents, not hundreds).
PUSH_INTERVAL_MS = env_int("PUSH_INTERVAL_MS", 150)
# Long imports of one customer (list members: lists.imports; POP accounts, forwards: mail.transfer)
# queued or running at once; a further one is refused.
IMPORTS_IN_FLIGHT = env_int("IMPORTS_IN_FLIGHT", 2)
CELERY_BEAT_SCHEDULE = {
    # Re-send every domain whose mail host has not confirmed its revision (the durable record): a
    # lost push or a killed apply heals in seconds (hostlink.push.reconcile); flag silent hosts.
    "reconcile": {"task": contract.RECONCILE, "schedule": env_int("RECONCILE_SECONDS", 5)},
    # Check against DNS whether the domains not yet proven their customers' are (provisioning.domains).
    "check-unproven-domains": {
        "task": "provisioning.check_unproven", "schedule": env_int("OWNERSHIP_CHECK_SECONDS", 300),
        "options": {"expires": 240},  # a run still queued when the next is due is dropped, never piled up
    },
    # DKIM: a new key whose record is seen in DNS signs; a domain without a key gets one.
    "dkim-maintain": {"task": "provisioning.dkim_maintain", "schedule": env_int("DKIM_MAINTAIN_SECONDS", 60),
                      "options": {"expires": 55}},
}
# Each domain's DNS checks are run again when older than this (provisioning.dnscheck); the beat
# looks for the ones due every minute, each run bounded (25 s, twice its share of the domains).
DNS_CHECK_SECONDS = env_int("DNS_CHECK_SECONDS", 3600)
# Domains checked at once (threads waiting for DNS answers, not CPU: BENCHMARKS.md).
DNS_CHECK_THREADS = env_int("DNS_CHECK_THREADS", 32)
CELERY_BEAT_SCHEDULE["dns-checks"] = {"task": "provisioning.dns_check_due", "schedule": 60, "options": {"expires": 55}}
# The DNS servers the panel asks (a domain's ownership proof: hosting/dns.py): "ADDRESS[:PORT]",
# several separated by commas; empty: the system's (/etc/resolv.conf).
DNS_RESOLVER = env_str("DNS_RESOLVER", "")
# The key that seals the DKIM private keys in the database (hosting/dkim.py); empty: derived from
# SECRET_KEY. Set it to keep the keys readable across a change of SECRET_KEY.
DKIM_SEAL_KEY = env_str("DKIM_SEAL_KEY", "")
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
