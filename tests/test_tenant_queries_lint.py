"""Views, forms, tables and the admin reach tenant objects only through `visible_to` or the
access helpers (hosting/access.py): a bare `Model.objects.get(` / `.all()` / `.filter(` there is
the classic cross-tenant bug, so it fails the build."""

import re
from pathlib import Path

from mail.access import VISIBLE_MODELS

ROOT = Path(__file__).resolve().parent.parent
APPS = ["hosting", "mail", "lists", "provisioning"]
CHECKED = {"views.py", "forms.py", "tables.py", "admin.py"}
NAMES = "|".join(sorted(m.__name__ for m in VISIBLE_MODELS))
BARE = re.compile(rf"\b({NAMES})\.(objects|_default_manager|_base_manager)\.(?!visible_to\()")


def checked_files() -> list[Path]:
    files = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if path.name in CHECKED or path.parent.name in {"views", "forms", "tables", "admin"}:
                files.append(path)
    return files


def find_bare_queries(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if BARE.search(line)]


def test_checker_catches_bare_queries() -> None:
    assert find_bare_queries("d = Domain.objects.get(pk=pk)")
    assert find_bare_queries("qs = Mailbox.objects.all()")
    assert find_bare_queries("qs = Pack.objects.with_usage().get(pk=1)")
    assert not find_bare_queries("qs = Domain.objects.visible_to(request.user)")


def test_no_bare_tenant_queries_in_views_forms_tables_admin() -> None:
    files = checked_files()
    assert files, "no file checked: the layout changed"
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in files
        if (found := find_bare_queries(path.read_text(encoding="utf-8")))
    }
    assert not offenders, f"tenant objects fetched without visible_to/access helpers: {offenders}"
