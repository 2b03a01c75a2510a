"""Every file of the front (`screens/`: views, forms, tables, template tags, the kit) and every
admin reach tenant objects only through `visible_to` or the access helpers (hosting/access.py): a
bare `Model.objects.get(` / `.all()` / `.filter(` there is the classic cross-tenant bug, so it
fails the build. The front is read whole, whatever its files are named."""

import re
from pathlib import Path

from django.apps import apps

from hosting.access import tenant_models

ROOT = Path(__file__).resolve().parent.parent
APPS = ["hosting", "mail", "lists", "provisioning", "hostlink", "screens"]
FRONT = "screens"
NAMES = "|".join(sorted(m.__name__ for m in tenant_models()))
BARE = re.compile(rf"\b({NAMES})\.(objects|_default_manager|_base_manager)\.(?!visible_to\()")


def checked_files() -> list[Path]:
    """Every Python file of the front, and each app's admin."""
    return sorted({*(ROOT / FRONT).rglob("*.py"), *(path for app in APPS for path in (ROOT / app).glob("admin.py"))})


def find_bare_queries(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if BARE.search(line)]


def test_checker_catches_bare_queries() -> None:
    assert find_bare_queries("d = Domain.objects.get(pk=pk)")
    assert find_bare_queries("qs = Mailbox.objects.all()")
    assert find_bare_queries("qs = Pack.objects.with_usage().get(pk=1)")
    assert not find_bare_queries("qs = Domain.objects.visible_to(request.user)")


def test_every_scoped_model_is_watched() -> None:
    """The list comes from the managers: each model of the tenant tree the screens query is in it."""
    watched = {model._meta.label for model in tenant_models()}
    assert {"hosting.Domain", "mail.Mailbox", "mail.Forward", "mail.Robot", "mail.CatchAll", "lists.MailingList",
            "lists.ListMember", "provisioning.DomainSync", "provisioning.DomainMove"} <= watched
    assert find_bare_queries("move = DomainMove.objects.filter(pk=1)")


def test_every_row_of_a_domain_is_a_tenant_model() -> None:
    """A model hanging under a domain, pack or customer cannot forget to scope its manager."""
    tenant = set(tenant_models())
    roots = {apps.get_model("hosting", name) for name in ("Customer", "Pack", "Domain")}
    unscoped = [
        model._meta.label
        for model in apps.get_models()
        if model._meta.app_label in APPS and model not in tenant
        and any(field.related_model in roots for field in model._meta.get_fields() if field.many_to_one)
    ]
    assert not unscoped, f"models under a domain, pack or customer whose manager is not scoped: {unscoped}"


def test_no_bare_tenant_queries_in_views_forms_tables_admin() -> None:
    files = checked_files()
    assert files, "no file checked: the layout changed"
    names = {str(path.relative_to(ROOT)) for path in files}
    assert {"screens/views/audit.py", "screens/tables.py", "screens/forms/domain.py", "screens/kit.py",
            "hostlink/admin.py", "mail/admin.py", "hosting/admin.py"} <= names
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in files
        if (found := find_bare_queries(path.read_text(encoding="utf-8")))
    }
    assert not offenders, f"tenant objects fetched without visible_to/access helpers: {offenders}"
