"""The house is one-way: each floor imports only its own floor and the floors below, there is no
import circle, and no import of a project module is hidden in a function (the way to dodge a
circle). Read from the source with `ast`, nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["mailhost", "config", "hosting", "provisioning", "mail", "lists", "hostlink", "vpopmail", "screens",
            "bench"]

# Lowest first. A module belongs to the floor of its longest matching prefix and may import
# modules of its own floor and of the floors below it, never above. Each floor is one folder.
LAYERS: list[tuple[str, list[str]]] = [
    ("the agent, plain Python (no Django)", ["mailhost"]),
    ("settings, system checks, Celery app", ["config"]),
    ("the tenant tree: users, hosts, resellers, customers, plans, packs, domains", ["hosting"]),
    ("provisioning's records, the revision and push claim, a domain's life on the hosts", ["provisioning"]),
    ("mailboxes, forwards, robots, catch-all, the mailbox login", ["mail"]),
    ("mailing lists", ["lists"]),
    ("the link to the hosts: documents, push, reports, moves, tasks; the pack and domain admin", ["hostlink"]),
    ("moving in: a vpopmail / QmailAdmin server's tree read and imported", ["vpopmail"]),
    ("the front: every page", ["screens"]),
    ("benchmarks", ["bench"]),
]

# Function-level imports of project modules that are allowed, with the reason. Keep it short.
ALLOWED_LOCAL_IMPORTS = {
    ("mail/apps.py", "mail.signals"): "Django connects receivers in AppConfig.ready(), once every model is loaded",
    ("lists/apps.py", "lists.signals"): "the same, for the lists' receivers",
}


def layer_of(module: str) -> int:
    best, best_len = -1, -1
    for index, (_label, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}


def imported(node: ast.Import | ast.ImportFrom, known: set[str]) -> list[str]:
    """The project modules an import statement names (`from a import b` is `a.b` when b is one)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif node.level or node.module is None:
        raise AssertionError("relative import: write the module's full name")
    else:
        names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                 for alias in node.names]
    return [name for name in names if name.split(".")[0] in PACKAGES]


def imports_of(source: str, known: set[str]) -> tuple[list[str], list[str]]:
    """(module-level imports, imports inside a function or class) of project modules."""
    tree = ast.parse(source)
    top: list[str] = []
    local: list[str] = []
    nested = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            nested.update(id(inner) for inner in ast.walk(node) if inner is not node)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            (local if id(node) in nested else top).extend(imported(node, known))
    return top, local


def graph() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    modules = project_modules()
    known = set(modules)
    top, local = {}, {}
    for name, path in modules.items():
        top[name], local[name] = imports_of(path.read_text(encoding="utf-8"), known)
    return top, local


def upward_imports(top: dict[str, list[str]]) -> list[str]:
    wrong = []
    for module, targets in top.items():
        for target in targets:
            if layer_of(target) > layer_of(module):
                wrong.append(f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} "
                             f"({LAYERS[layer_of(target)][0]})")
    return wrong


def circles(top: dict[str, list[str]]) -> list[list[str]]:
    """Every import circle, one path each (depth-first search; a grey node met again closes one)."""
    found, state, stack = [], {}, []

    def visit(module: str) -> None:
        state[module] = "grey"
        stack.append(module)
        for target in top.get(module, []):
            if state.get(target) == "grey":
                found.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "black"

    for module in sorted(top):
        if module not in state:
            visit(module)
    return found


def test_every_module_has_a_floor() -> None:
    assert not [m for m in project_modules() if layer_of(m) < 0]


def test_the_checks_see_an_upward_import_a_circle_and_a_hidden_import() -> None:
    known = {"hosting.models", "mail.models", "provisioning.services"}
    source = "from hosting.models import Domain\n\ndef f():\n    from provisioning.services import push\n"
    assert imports_of(source, known) == (["hosting.models"], ["provisioning.services"])
    assert imports_of("from provisioning import services\n", known) == (["provisioning.services"], [])
    assert upward_imports({"hosting.models": ["mail.models"]})
    assert not upward_imports({"mail.models": ["hosting.models"]})
    assert upward_imports({"provisioning.revisions": ["hostlink.push"]})
    assert upward_imports({"mail.services": ["screens.kit"]})
    assert circles({"a": ["b"], "b": ["c"], "c": ["a"]}) == [["a", "b", "c", "a"]]
    assert not circles({"a": ["b"], "b": ["c"]})


def test_each_floor_imports_only_the_floors_below() -> None:
    top, _local = graph()
    assert not upward_imports(top)


def test_no_import_circle() -> None:
    top, _local = graph()
    assert not circles(top)


def test_no_import_hidden_in_a_function() -> None:
    _top, local = graph()
    modules = project_modules()
    hidden = [
        f"{modules[module].relative_to(ROOT)} imports {target}"
        for module, targets in local.items()
        if ".migrations." not in module
        for target in targets
        if (str(modules[module].relative_to(ROOT)), target) not in ALLOWED_LOCAL_IMPORTS
    ]
    assert not hidden
