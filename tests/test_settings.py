"""Settings from the environment, safe by default, with checks that name what is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test.utils import override_settings

from config.checks import production_services, production_settings
from config.env import env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parent.parent


def test_env_readers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BOOL", "yes")
    monkeypatch.setenv("X_INT", "42")
    monkeypatch.setenv("X_LIST", "a.test, b.test,,")
    assert env_bool("X_BOOL") is True
    assert env_bool("X_MISSING", default=False) is False
    assert env_int("X_INT", 0) == 42
    assert env_list("X_LIST") == ["a.test", "b.test"]
    monkeypatch.setenv("X_BOOL", "maybe")
    with pytest.raises(ValueError, match="X_BOOL"):
        env_bool("X_BOOL")
    monkeypatch.setenv("X_INT", "many")
    with pytest.raises(ValueError, match="X_INT"):
        env_int("X_INT", 0)


def test_checks_name_missing_production_settings() -> None:
    with override_settings(DEBUG=False, SECRET_KEY_MISSING=True, ALLOWED_HOSTS=[]):
        assert {e.id for e in production_settings(None)} == {"mailpanel.E001", "mailpanel.E002"}
    with override_settings(DEBUG=True, SECRET_KEY_MISSING=True, ALLOWED_HOSTS=[]):
        assert production_settings(None) == []
    with override_settings(DEBUG=False, DATABASE_URL="", REDIS_URL="", EMAIL_HOST=""):
        assert {e.id for e in production_services(None)} == {
            "mailpanel.W001", "mailpanel.W002", "mailpanel.W003"}


def run_manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL")}
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env},
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_without_debug_and_secret_the_panel_refuses_to_start() -> None:
    result = run_manage({}, "check")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_settings_follow_the_environment() -> None:
    code = ("from django.conf import settings as s; "
            "print(s.DEBUG, s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL.split(':')[0])")
    default = run_manage({"SECRET_KEY": "x" * 60, "ALLOWED_HOSTS": "a.test"}, "shell", "--no-imports", "-c", code)
    assert default.stdout.split() == ["False", "django.db.backends.sqlite3", "sqlite"], default.stderr
    configured = run_manage({
        "DEBUG": "1", "DATABASE_URL": "postgres://u@127.0.0.1:5432/x", "REDIS_URL": "redis://127.0.0.1:6379/3",
    }, "shell", "--no-imports", "-c", code)
    assert configured.stdout.split() == ["True", "django.db.backends.postgresql", "redis"], configured.stderr


def test_the_language_cookie_is_secure_under_https_only() -> None:
    """The cookie /i18n/setlang/ really sets: Secure (HTTPS_ONLY), HttpOnly and SameSite=Lax."""
    code = ("from django.test import Client; "
            "r = Client(HTTP_HOST='a.test').post('/i18n/setlang/', {'language': 'en'}, secure=True); "
            "c = r.cookies['django_language']; "
            "print(r.status_code, c.value, bool(c['secure']), bool(c['httponly']), c['samesite'])")
    base = {"SECRET_KEY": "x" * 60, "ALLOWED_HOSTS": "a.test"}
    https = run_manage({**base, "HTTPS_ONLY": "1"}, "shell", "--no-imports", "-c", code)
    assert https.stdout.split() == ["302", "en", "True", "True", "Lax"], https.stderr
    plain = run_manage(base, "shell", "--no-imports", "-c", code.replace("secure=True", "secure=False"))
    assert plain.stdout.split() == ["302", "en", "False", "True", "Lax"], plain.stderr
