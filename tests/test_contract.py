"""The panel–agent contract (`mailhost/contract.py`): one version number, one shape, one name for
each task and queue, on both sides.

- An agent refuses a document of a format it does not know, says so in its report, and the panel
  shows the domain as failed with that message; nothing changes on the host.
- What the panel builds (the document of a domain holding every kind of row, the "absent"
  document, the copy request of a move) has the contract's shape, every key written.
- The reports the agent sends have the shape of the contract's reports and the panel's tasks take them.
- No task or queue name is written as a bare string outside the contract.
"""

from __future__ import annotations

import ast
import base64
import zlib
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from celery import current_app

from config.celery import app as panel_app
from hostlink import moves, push, snapshot, tasks
from lists import tasks as list_tasks
from lists.services import list_create, list_member_add
from mail import tasks as mail_tasks
from mail.services import (
    catchall_set,
    forward_create,
    mailbox_set_access,
    mailbox_set_routing,
    mailbox_set_vacation,
    robot_create,
)
from mailhost import agent, contract, maps
from mailhost.apply import HostConfig, apply
from provisioning import revisions
from provisioning.models import DomainMove, DomainSync, SyncState
from tests.conftest import Cast
from tests.factories import MailHostFactory

PROJECT = Path(__file__).resolve().parent.parent
HASH = "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA"
READ = "1, 2, 3, 4, 5, 6, 7"  # contract.READS, as the agent names them


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The agent's task functions on a host under tmp_path; what it sends the panel is kept."""
    config = HostConfig(name="mx1", root=tmp_path)
    monkeypatch.setattr(agent, "CONFIG", config)
    monkeypatch.setattr(agent, "_prepared", False)
    sent: list[tuple[str, dict[str, Any], str]] = []
    monkeypatch.setattr(agent.app, "send_task",
                        lambda name, kwargs, queue: sent.append((name, kwargs, queue)))
    return {"config": config, "sent": sent}


def a_document(revision: int = 1, **changes: Any) -> dict[str, Any]:
    mailbox = {"local_part": "alice", "password_hash": HASH, "quota_bytes": 0, "active": True,
               "allow_pop3": True, "allow_imap": True, "allow_smtp": True}
    return {"format": contract.FORMAT, "domain": "alpha-domain.test", "revision": revision, "state": "present",
            "mailboxes": [mailbox], **changes}


# --- an unknown format --------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_unknown_format_is_refused_with_a_clear_report(cast: Cast, host: dict[str, Any]) -> None:
    agent.apply_document(a_document(0))
    mailbox_set_access(mailbox=cast.mailbox_user, allow_pop3=False, acting_user=cast.operator)  # a new revision
    domain = cast.a.domain
    domain.refresh_from_db()
    assert domain.pack.mail_host.name == "mx1" and domain.revision > 0
    host["sent"].clear()

    agent.apply_document(a_document(domain.revision, format=contract.FORMAT + 1))

    [(task, report, queue)] = host["sent"]
    assert (task, queue) == (contract.REPORT, contract.PANEL_QUEUE)
    assert report == {"host": "mx1", "domain": "alpha-domain.test", "revision": domain.revision,
                      "state": "present", "behind": False,
                      "error": f"unknown document format {contract.FORMAT + 1} (this agent reads {READ})"}
    contract.check(report, contract.Report, complete=True)
    db = maps.connect(host["config"].maps_db)
    assert db.execute("SELECT domain, revision FROM domains").fetchall() == [("alpha-domain.test", 0)]
    # The panel takes the report in through its task: the domain shows as failed, with the message.
    DomainSync.objects.update_or_create(domain=domain, defaults={"host": domain.pack.mail_host})
    tasks.report(**report)
    sync = DomainSync.objects.get(domain=domain)
    assert sync.state_of(domain.revision) == SyncState.FAILED
    assert sync.error == f"unknown document format {contract.FORMAT + 1} (this agent reads {READ})"


@pytest.mark.parametrize("version", [0, contract.FORMAT + 1, "2", 2.0, True, None])
def test_only_the_known_format_is_read(tmp_path: Path, version: Any) -> None:
    config = HostConfig(name="t", root=tmp_path)
    (tmp_path / "db").mkdir()
    maps.create(config.maps_db)
    with pytest.raises(contract.UnknownFormat,
                       match=rf"^unknown document format {version!r} \(this agent reads {READ}\)$"):
        apply(a_document(format=version), config)
    missing = a_document()
    del missing["format"]
    with pytest.raises(contract.UnknownFormat, match="unknown document format None"):
        apply(missing, config)
    assert maps.connect(config.maps_db).execute("SELECT * FROM domains").fetchall() == []
    assert apply(a_document(), config).applied


def test_a_whole_domain_of_format_1_is_read_a_delta_of_format_1_is_not(tmp_path: Path) -> None:
    """An older panel's documents are whole domains: an agent upgraded first applies them. Format
    1 had no delta: one that says format 1 is refused (a format-1 agent would have dropped
    everything it does not list)."""
    config = HostConfig(name="t", root=tmp_path)
    (tmp_path / "db").mkdir()
    maps.create(config.maps_db)
    assert apply(a_document(1, format=1), config).applied
    with pytest.raises(contract.UnknownFormat, match="unknown document format 1"):
        apply(a_document(2, format=1, base=1), config)
    assert apply(a_document(2, format=2, base=1), config).applied
    assert apply(a_document(3, format=3, base=2), config).applied


def test_a_document_of_another_shape_is_refused_and_says_where(tmp_path: Path, host: dict[str, Any]) -> None:
    cases = {
        "mailboxes[0].quota_bytes: expected int, got str": a_document(
            mailboxes=[{**a_document()["mailboxes"][0], "quota_bytes": "1024"}]),
        "mailboxes[0].active: expected bool, got int": a_document(
            mailboxes=[{**a_document()["mailboxes"][0], "active": 1}]),
        "mailboxes[0]: missing password_hash": a_document(mailboxes=[{"local_part": "alice", "quota_bytes": 0,
            "active": True, "allow_pop3": True, "allow_imap": True, "allow_smtp": True}]),
        "the document: unknown changes": a_document(changes=[]),
        "state: expected one of 'present', got 'gone'": a_document(state="gone"),
        "revision: expected int, got bool": a_document(revision=True),
        "lists[0].subscribers[1]: expected str, got int": a_document(
            lists=[{"name": "news", "subscribers": ["a@b.test", 7]}]),
    }
    for message, document in cases.items():
        host["sent"].clear()
        agent.apply_document(document)
        [(_task, report, _queue)] = host["sent"]
        assert report["error"] == f"refused: {message}"
    assert maps.connect(host["config"].maps_db).execute("SELECT * FROM mailboxes").fetchall() == []


# --- what the panel builds has the contract's shape --------------------------------------------


# --- a packed document (the APPLY task's argument) ------------------------------------------------


def test_the_document_the_panel_sends_is_the_one_the_agent_applies(host: dict[str, Any],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    queued: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(panel_app, "send_task", lambda name, **kw: queued.append((name, kw)))
    vacation = {"subject": "Absente jusqu'à lundi", "message": "Réponse — à bientôt"}
    document = a_document(3, mailboxes=[{**a_document()["mailboxes"][0], "vacation": vacation}])
    push.send(MailHostFactory.build(name="mx1"), document)

    [(task, sent)] = queued
    assert (task, sent["queue"], list(sent)) == (contract.APPLY, "host.mx1", ["args", "queue"])
    [packed] = sent["args"]
    assert isinstance(packed, str) and packed.isascii() and contract.unpack(packed) == document
    agent.apply_document(packed)
    assert host["sent"] == [(contract.REPORT, {"host": "mx1", "domain": "alpha-domain.test", "revision": 3,
                                               "state": "present"}, contract.PANEL_QUEUE)]
    db = maps.connect(host["config"].maps_db)
    [(email, sieve)] = db.execute("SELECT email, sieve FROM mailboxes").fetchall()
    assert email == "alice@alpha-domain.test" and "Réponse — à bientôt" in Path(sieve).read_text()


def test_a_packed_document_that_does_not_unpack_changes_nothing(host: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    def packed(data: bytes) -> str:
        return base64.b64encode(zlib.compress(data)).decode()

    whole = packed(b'{"format": 2}')
    cases = {
        "not base64": "%%%",
        "not zlib": base64.b64encode(b"plain text").decode(),
        "cut short": base64.b64encode(zlib.compress(b'{"format": 2, "domain": "x.test"}')[:-6]).decode(),
        "not UTF-8": packed(b'{"domain": "\xff"}'.replace(b"\\xff", b"\xff")),
        "not JSON": packed(b"{format: 2"),
        "larger than the bound": packed(b" " * 200 + b"{}"),
        "not an object": packed(b"[1, 2]"),
    }
    monkeypatch.setattr(contract, "MAX_DOCUMENT_BYTES", 100)
    assert isinstance(contract.unpack(whole), dict)
    for case, value in cases.items():
        caplog.clear()
        agent.apply_document(value)
        assert host["sent"] == [], case
        [record] = [r for r in caplog.records if r.levelname == "ERROR"]
        assert "does not unpack" in record.getMessage() or "not an object" in record.getMessage(), case
    for case in ("not base64", "not zlib", "cut short", "not UTF-8", "not JSON", "larger than the bound"):
        with pytest.raises(contract.DocumentError):
            contract.unpack(cases[case])
    assert maps.connect(host["config"].maps_db).execute("SELECT * FROM domains").fetchall() == []


@pytest.mark.django_db
def test_the_panels_documents_have_the_contracts_shape(cast: Cast) -> None:
    domain, operator = cast.a.domain, cast.operator
    mailbox_set_routing(mailbox=cast.mailbox_user, routing="forward", forward_to=["someone@else.test"],
                        keep_copy=True, acting_user=operator)
    mailbox_set_vacation(mailbox=cast.mailbox_user, enabled=True, subject="away", message="back soon",
                         start=date(2026, 12, 1), end=date(2026, 12, 24), days=3, acting_user=operator)
    forward_create(domain=domain, local_part="sales", destinations=["a@else.test", "b@else.test"], acting_user=operator)
    robot_create(domain=domain, local_part="info", subject="Hi", message="Hello", copy_to="c@else.test",
                 acting_user=operator)
    catchall_set(domain=domain, mode="remote", target="all@else.test", acting_user=operator)
    news = list_create(domain=domain, name="news", owner="boss@else.test", prefix="[news]", trailer="bye",
                       acting_user=operator)
    for kind, address in (("subscriber", "s@else.test"), ("moderator", "m@else.test"), ("digest", "d@else.test")):
        list_member_add(mailing_list=news, address=address, kind=kind, acting_user=operator)
    domain.refresh_from_db()

    document = snapshot.build(domain)
    contract.check_document(document, complete=True)
    assert document["format"] == contract.FORMAT
    assert {len(document[part]) for part in ("forwards", "robots", "lists")} == {1}  # every kind of row is there
    user = next(m for m in document["mailboxes"] if m["local_part"] == cast.mailbox_user.local_part)
    assert user["vacation"] == {"subject": "away", "message": "back soon", "days": 3, "start": "2026-12-01",
                                "end": "2026-12-24"}
    assert document["lists"][0]["moderators"] == ["m@else.test"]

    absent = snapshot.absent(domain.name, domain.revision + 1)
    contract.check_document(absent, complete=True)

    move = DomainMove.objects.create(domain=domain, from_host=domain.pack.mail_host,
                                     to_host=MailHostFactory(name="mx9", fqdn="mx9.example.test"),
                                     revision=domain.revision)
    contract.check(moves.copy_request(move), contract.CopyRequest, complete=True)


def test_the_check_is_exact() -> None:
    """The shape is checked both ways: a missing key, an unknown key, a type that only looks right."""
    complete = a_document(verified=True, forwards=[], robots=[], lists=[], catchall={"mode": "bounce", "target": ""},
                          dkim=None, language="fr", spam=None)
    complete["mailboxes"][0].update(routing="standard", forward_to=[], keep_copy=False, vacation=None, renamed_from="")
    contract.check_document(complete, complete=True)
    with pytest.raises(contract.DocumentError, match=r"^the document: missing catchall$"):
        contract.check_document({k: v for k, v in complete.items() if k != "catchall"}, complete=True)
    contract.check_document({k: v for k, v in complete.items() if k != "catchall"})  # the agent has a default
    with pytest.raises(contract.DocumentError, match=r"^mailboxes\[0\]\.vacation\.days: expected int, got bool$"):
        contract.check_document(a_document(mailboxes=[{**complete["mailboxes"][0], "vacation": {"days": True}}]))
    with pytest.raises(contract.DocumentError, match=r"^\['a@b\.test'\]: expected int, got str$"):
        contract.check({"host": "mx1", "usage": {"a@b.test": "12"}}["usage"], dict[str, int])
    with pytest.raises(contract.DocumentError, match=r"^mailboxes: expected a list, got dict$"):
        contract.check_document(a_document(mailboxes={}))


# --- what the agent reports, the panel takes -----------------------------------------------------


@pytest.mark.django_db
def test_the_agents_reports_have_the_contracts_shape(cast: Cast, host: dict[str, Any], tmp_path: Path) -> None:
    agent.apply_document(a_document(cast.a.domain.revision))
    agent.migrate_domain({"move": 7, "domain": "alpha-domain.test", "mailboxes": [], "target": "ssh:bad"})
    mailbox = tmp_path / "vmail" / "alpha-domain.test" / "alice" / "Maildir" / "cur"
    mailbox.mkdir(parents=True)
    (mailbox / "1").write_bytes(b"x" * 10)
    agent.report_usage()
    shapes = {contract.REPORT: contract.Report, contract.MIGRATED: contract.Migrated, contract.USAGE: contract.Usage}
    assert [task for task, _kwargs, _queue in host["sent"]] == list(shapes)
    for task, kwargs, queue in host["sent"]:
        assert queue == contract.PANEL_QUEUE
        contract.check(kwargs, shapes[task])
    assert host["sent"][1][1]["error"].startswith("invalid doveadm target")
    assert host["sent"][2][1] == {"host": "mx1", "usage": {"alice@alpha-domain.test": 10}}
    registered = {task.name for task in (tasks.report, tasks.migrated, mail_tasks.usage, list_tasks.list_members)}
    assert registered == {contract.REPORT, contract.MIGRATED, contract.USAGE, contract.LIST_MEMBERS}
    for task, kwargs, _queue in host["sent"]:
        handlers = {contract.REPORT: tasks.report, contract.MIGRATED: tasks.migrated, contract.USAGE: mail_tasks.usage}
        handlers[task](**kwargs)


def test_a_copy_request_of_another_shape_is_refused(host: dict[str, Any]) -> None:
    agent.migrate_domain({"move": 7, "domain": "alpha-domain.test", "target": "tcp:mx2:12424"})
    [(task, report, _queue)] = host["sent"]
    assert task == contract.MIGRATED and report["error"] == "DocumentError: the document: missing mailboxes"


# --- names ---------------------------------------------------------------------------------------

def _queue_literals(tree: ast.AST) -> set[str]:
    """String literals in the places of a queue: `queue=...`, `{"queue": ...}`, `X_QUEUE = ...`,
    after "-Q" in a command line ("panel" alone is also the name of many other things)."""
    found: set[str] = set()

    def add(node: ast.AST | None) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.add(node.value)

    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "queue":
            add(node.value)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "queue":
                    add(value)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and "QUEUE" in t.id for t in targets):
                add(node.value)
        elif isinstance(node, ast.List | ast.Tuple):
            for before, item in zip(node.elts, node.elts[1:], strict=False):
                if isinstance(before, ast.Constant) and before.value == "-Q":
                    add(item)
    return found


def bare_names(path: Path) -> set[str]:
    """The task and queue names written as string literals in a Python file (f"host.{...}" too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    tasks = {*contract.AGENT_TASKS, *contract.PANEL_TASKS, contract.PANEL_TASK_PATTERN}
    found = {name for name in _queue_literals(tree) if name == contract.PANEL_QUEUE}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value in tasks:
            found.add(node.value)
        elif (isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant)
              and str(node.values[0].value).startswith(contract.HOST_QUEUE_PREFIX)):
            found.add(f"{contract.HOST_QUEUE_PREFIX}{{...}}")
    return found


def test_no_task_or_queue_name_outside_the_contract() -> None:
    offenders = {}
    for path in sorted(PROJECT.rglob("*.py")):
        relative = path.relative_to(PROJECT).as_posix()
        if relative.startswith((".venv/", "var/")) or relative in ("mailhost/contract.py", "tests/test_contract.py"):
            continue
        found = bare_names(path)
        if found:
            offenders[relative] = sorted(found)
    assert offenders == {}


def test_the_name_check_finds_bare_names(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('send_task("mailhost.apply", queue=f"host.{name}")\nROUTES = {"a.*": {"queue": "panel"}}\n'
                      'Worker("panel", ["celery", "-Q", "panel"])\n', encoding="utf-8")
    assert bare_names(sample) == {"mailhost.apply", "host.{...}", "panel"}
    for line in ('DEFAULT_QUEUE = "panel"', 'send_task(name, queue="panel")', 'run(["-Q", "panel"])'):
        sample.write_text(line, encoding="utf-8")
        assert bare_names(sample) == {"panel"}, line
    sample.write_text('Worker("panel", log="panel.log")', encoding="utf-8")
    assert bare_names(sample) == set()


def test_every_task_is_registered_under_its_contract_name() -> None:
    assert {name for name in agent.app.tasks if name.startswith("mailhost.")} == set(contract.AGENT_TASKS)
    panel = {tasks.push_domain, tasks.push_retired, tasks.report, tasks.migrated, tasks.reconcile, tasks.mail_imported,
             list_tasks.list_members, mail_tasks.usage, list_tasks.held, tasks.heartbeat}
    assert {task.name for task in panel} == set(contract.PANEL_TASKS)
    assert MailHostFactory.build(name="mx7").queue == contract.host_queue("mx7") == "host.mx7"


def test_importing_the_agent_leaves_the_panel_app_current(monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent's Celery app (imported above) must not become the current app of a panel process:
    the panel's pushes would then go to the agent's broker and default queue, and nothing would
    reach the panel's worker (seen: every e2e test failed when run after this file)."""
    assert agent.app is not panel_app and current_app._get_current_object() is panel_app
    sent: list[tuple[Any, str, dict]] = []
    monkeypatch.setattr(panel_app, "send_task", lambda name, **kw: sent.append((panel_app, name, kw)))
    monkeypatch.setattr(agent.app, "send_task", lambda name, **kw: sent.append((agent.app, name, kw)))
    revisions.enqueue_push(7)
    assert [(app, name, {k: v for k, v in kw.items() if v is not None}) for app, name, kw in sent] == [
        (panel_app, contract.PUSH_DOMAIN, {"args": [7], "queue": contract.PANEL_QUEUE})]  # no countdown: at once
