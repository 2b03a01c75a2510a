"""Audit actions are members of one enum (hosting.audit.Action): no action string is written by
hand at a call site, the row stores the member's value, and every model the admin saves or deletes
itself has its actions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib import admin
from django.test import RequestFactory

from hosting import audit
from hosting.audit import Action
from tests.conftest import Cast

ROOT = Path(__file__).resolve().parent.parent
APPS = ["hosting", "mail", "lists", "provisioning"]
# audit.record(actor, <a string literal or an f-string>, ...)
LITERAL_ACTION = re.compile(r"""audit\.record\(\s*[^,]+,\s*f?["']""")


def literal_actions() -> list[str]:
    return [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        for line in path.read_text(encoding="utf-8").splitlines()
        if LITERAL_ACTION.search(line)
    ]


def test_the_checker_sees_a_literal_action() -> None:
    assert LITERAL_ACTION.search('audit.record(acting_user, "forward.create", forward)')
    assert LITERAL_ACTION.search('audit.record(request.user, f"{name}.create", obj)')
    assert not LITERAL_ACTION.search("audit.record(acting_user, Action.FORWARD_CREATE, forward)")


def test_no_action_is_written_as_a_string() -> None:
    assert not literal_actions()


@pytest.mark.django_db
def test_the_row_stores_the_actions_value(cast: Cast) -> None:
    assert audit.record(cast.operator, Action.FORWARD_CREATE, None).action == "forward.create"


@pytest.mark.django_db
def test_every_model_the_admin_saves_itself_has_its_actions(cast: Cast) -> None:
    request = RequestFactory().get("/admin/")
    request.user = cast.operator
    missing = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in APPS:
            continue
        verbs = []
        if not getattr(model_admin, "service_saves", True) and model_admin.has_add_permission(request):
            verbs.append("create")
        if not getattr(model_admin, "service_saves", True) and model_admin.has_change_permission(request):
            verbs.append("change")
        if not getattr(model_admin, "service_deletes", True) and model_admin.has_delete_permission(request):
            verbs.append("delete")
        for verb in verbs:
            try:
                Action.of(model, verb)
            except ValueError:
                missing.append(f"{model._meta.model_name}.{verb}")
    assert not missing, f"audit actions missing from hosting.audit.Action: {missing}"
