"""Robots (standalone autoresponders): the per-sender reply limit, `robot_update`, and what the
document and the Sieve script carry.

- The reply limit is a whole number of hours from 1 to 720 (30 days), 24 by default; outside
  that, the services refuse it with a message in the user's language and change nothing; the
  database refuses it too.
- `robot_update` checks what `robot_create` checks (the same helper), returns early when nothing
  changes (no revision, no push, no audit row), otherwise writes the changed fields, the revision,
  one `robot.change` audit row with each changed field as [before, after], and queues the push.
- The document carries `reply_seconds` (whole and delta); the agent's render puts it in the
  script's `vacation :seconds`, takes the old 2000 s when the key is absent (an older panel),
  and refuses a value out of its bounds, so the host keeps what it had.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import translation

from hosting.models import AuditEvent, Domain
from hostlink import snapshot
from mail.models import ROBOT_REPLY_HOURS_DEFAULT, Robot
from mail.services import forward_create, robot_create, robot_update
from mailhost import contract, maps, render
from mailhost.apply import HostConfig, apply
from mailhost.contract import DocumentError
from mailhost.render import RenderError
from provisioning.models import DomainSync
from tests.conftest import Cast

pytestmark = pytest.mark.django_db

OWN = "robot@alpha-domain.test"


def make(cast: Cast, **values: Any) -> Robot:
    fields = {"subject": "Mail bien reçu", "message": "Bonjour,\nNous traitons votre demande.",
              "copy_to": "commercial@remote.test", **values}
    return robot_create(domain=cast.a.domain, local_part="robot", acting_user=cast.a.postmaster, **fields)


def update(cast: Cast, robot: Robot, **values: Any) -> None:
    fields = {"subject": robot.subject, "message": robot.message, "copy_to": robot.copy_to,
              "reply_hours": robot.reply_hours, **values}
    robot_update(robot=robot, acting_user=cast.a.postmaster, **fields)


def state(cast: Cast) -> tuple[Any, ...]:
    """What a refused call must leave as it was: the robots' rows, the domain's revision, the audit log."""
    rows = list(Robot.objects.values_list("local_part", "subject", "message", "copy_to", "reply_hours", "revision"))
    return rows, Domain.objects.get(pk=cast.a.domain.pk).revision, AuditEvent.objects.count()


def queued(cast: Cast) -> int:
    """The domain's revision once its push is taken (as the push task does): a change queues one again."""
    DomainSync.objects.filter(domain=cast.a.domain).update(queued=False)
    return Domain.objects.get(pk=cast.a.domain.pk).revision


# --- the reply limit ------------------------------------------------------------------------------


def test_a_new_robot_answers_once_a_day_by_default(cast: Cast) -> None:
    assert make(cast).reply_hours == ROBOT_REPLY_HOURS_DEFAULT == 24
    assert Robot.objects.get().reply_hours == 24


@pytest.mark.parametrize("value, hours", [(1, 1), (720, 720), ("48", 48), (" 6 ", 6)])
def test_the_reply_limit_takes_whole_hours_from_1_to_720(cast: Cast, value: Any, hours: int) -> None:
    robot = make(cast, reply_hours=value)
    assert Robot.objects.get(pk=robot.pk).reply_hours == hours == robot.reply_hours


OUT_OF_BOUNDS = [0, 721, -1, "0", "721", "1.5", "24h", "", " ", "abc", "٢٤", "２４", None, True, 1.5, 10**30]


@pytest.mark.parametrize("value", OUT_OF_BOUNDS, ids=repr)
def test_a_reply_limit_out_of_bounds_is_refused_with_a_message(cast: Cast, value: Any) -> None:
    before = state(cast)
    for language, message in (("fr", "Entre 1 et 720 heures."), ("en", "Between 1 and 720 hours.")):
        with translation.override(language), pytest.raises(ValidationError) as refused:
            make(cast, reply_hours=value)
        assert (refused.value.code, refused.value.messages) == ("reply_hours", [message])
    assert state(cast) == before

    robot = make(cast)
    before = state(cast)
    with pytest.raises(ValidationError) as refused:
        update(cast, robot, reply_hours=value, subject="Autre sujet")
    assert refused.value.code == "reply_hours"
    assert state(cast) == before and robot.subject == "Mail bien reçu" and robot.reply_hours == 24


@pytest.mark.parametrize("hours", [0, 721])
def test_the_database_refuses_a_reply_limit_out_of_bounds(cast: Cast, hours: int) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Robot.objects.create(domain=cast.a.domain, local_part="raw", subject="s", message="m", reply_hours=hours)


# --- robot_update -------------------------------------------------------------------------------


def test_an_update_that_changes_nothing_leaves_no_trace(cast: Cast, django_capture_on_commit_callbacks) -> None:
    robot = make(cast, reply_hours=12)
    revision, audited = queued(cast), AuditEvent.objects.count()
    with django_capture_on_commit_callbacks() as pushes:
        # the same values as the panel's checks make them: blanks around, the address's case
        robot_update(robot=robot, subject="  Mail bien reçu ", message="Bonjour,\r\nNous traitons votre demande.\n",
                     copy_to=" Commercial@REMOTE.test ", reply_hours="12", acting_user=cast.a.postmaster)
    assert (queued(cast), AuditEvent.objects.count(), len(pushes)) == (revision, audited, 0)
    assert Robot.objects.get(pk=robot.pk).revision == robot.revision == revision


def test_an_update_writes_what_changed_with_its_revision_push_and_audit_row(
    cast: Cast, django_capture_on_commit_callbacks
) -> None:
    robot = make(cast)
    revision = queued(cast)
    with django_capture_on_commit_callbacks() as pushes:
        robot_update(robot=robot, subject="Demande reçue", message="Bonjour,\nNous traitons votre demande.",
                     copy_to="", reply_hours=48, acting_user=cast.a.postmaster)
    assert queued(cast) == revision + 1 and len(pushes) == 1
    stored = Robot.objects.get(pk=robot.pk)
    assert (stored.subject, stored.copy_to, stored.reply_hours, stored.revision) == (
        "Demande reçue", "", 48, revision + 1)
    assert robot.revision == revision + 1 and robot.subject == "Demande reçue"
    event = AuditEvent.objects.latest("pk")
    assert (event.action, event.target_type, event.target_id, event.actor_label) == (
        "robot.change", "mail.robot", str(robot.pk), str(cast.a.postmaster))
    assert event.detail == {"changes": {  # only what changed, each as [before, after]
        "subject": ["Mail bien reçu", "Demande reçue"],
        "copy_to": ["commercial@remote.test", ""],
        "reply_hours": [24, 48],
    }}


def test_an_update_of_the_message_alone_audits_the_message(cast: Cast) -> None:
    robot = make(cast)
    update(cast, robot, message="Nouveau texte")
    assert AuditEvent.objects.latest("pk").detail == {"changes": {
        "message": ["Bonjour,\nNous traitons votre demande.", "Nouveau texte"]}}


# Bad values: refused by create and by update alike, with the same code (one check for both).
BAD: dict[str, tuple[dict[str, Any], str]] = {
    "subject on two lines": ({"subject": "Mail\r\nBcc: victim@remote.test"}, "invalid"),
    "subject with LF": ({"subject": "Mail\nbien reçu"}, "invalid"),
    "subject with a control": ({"subject": "Mail\x00reçu"}, "invalid"),
    "subject too long": ({"subject": "x" * 201}, "max_length"),
    "message with a lone CR": ({"message": "un\rdeux"}, "invalid"),
    "message too long": ({"message": "x" * 4001}, "max_length"),
    "no message": ({"message": " \n "}, "required"),
    "copy to a bad address": ({"copy_to": "not an address"}, "destination"),  # shown on copy_to
    "copy to itself": ({"copy_to": OWN}, "loop"),
    "copy to a forward": ({"copy_to": "sales@alpha-domain.test"}, "chain"),
}


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.parametrize("call", ["create", "update"])
def test_create_and_update_refuse_the_same_values(cast: Cast, case: str, call: str) -> None:
    forward_create(domain=cast.a.domain, local_part="sales", destinations=["boss@remote.test"],
                   acting_user=cast.operator)
    values, code = BAD[case]
    robot = make(cast, copy_to="") if call == "update" else None
    before = state(cast)
    act: Callable[[], Any] = (
        (lambda: update(cast, robot, **values)) if robot is not None
        else (lambda: robot_create(domain=cast.a.domain, local_part="robot", acting_user=cast.a.postmaster,
                                   **{"subject": "s", "message": "m", **values}))
    )
    with pytest.raises(ValidationError) as refused:
        act()
    assert refused.value.code == code
    assert state(cast) == before
    if robot is not None:  # the object in hand is left as it was too
        assert (robot.subject, robot.message, robot.copy_to) == ("Mail bien reçu",
                                                                  "Bonjour,\nNous traitons votre demande.", "")


def test_a_robot_that_receives_forwarded_mail_cannot_start_to_copy(cast: Cast) -> None:
    robot = make(cast, copy_to="")
    forward_create(domain=cast.a.domain, local_part="sales", destinations=[OWN], acting_user=cast.operator)
    before = state(cast)
    with pytest.raises(ValidationError) as refused:
        update(cast, robot, copy_to="boss@remote.test")
    assert refused.value.code == "pointed_at" and state(cast) == before


# --- the document and the script -----------------------------------------------------------------


def test_the_document_and_its_delta_carry_the_reply_limit_in_seconds(cast: Cast) -> None:
    robot = make(cast, reply_hours=36)
    domain = Domain.objects.get(pk=cast.a.domain.pk)
    document = snapshot.build(domain)
    contract.check_document(document, complete=True)
    assert document["robots"] == [{"local_part": "robot", "copy_to": "commercial@remote.test",
                                   "subject": "Mail bien reçu", "message": "Bonjour,\nNous traitons votre demande.",
                                   "reply_seconds": 36 * 3600}]
    base = domain.revision
    update(cast, robot, reply_hours=2)
    domain.refresh_from_db()
    delta = snapshot.build_delta(domain, base)
    contract.check_document(delta, complete=True)
    assert [(r["local_part"], r["reply_seconds"]) for r in delta["robots"]] == [("robot", 7200)]
    assert delta["removed"] == []


def robot_doc(**changes: Any) -> dict[str, Any]:
    return {"local_part": "robot", "copy_to": "", "subject": "Mail bien reçu", "message": "Bonjour", **changes}


@pytest.mark.parametrize("seconds", [60, 3600, 86400, 30 * 86400, 90 * 86400])
def test_the_script_answers_once_per_reply_limit(seconds: int) -> None:
    script = render.robot_sieve(robot_doc(reply_seconds=seconds), OWN)
    assert f"vacation :seconds {seconds} :subject " in script
    assert script.count(":seconds") == 1


def test_a_document_without_the_key_keeps_the_old_period() -> None:
    """An older panel (format 1 or 2) sends no `reply_seconds`: the agent answers as before."""
    assert f"vacation :seconds {render.ROBOT_REPLY_SECONDS} " in render.robot_sieve(robot_doc(), OWN)
    assert render.ROBOT_REPLY_SECONDS == 2000


@pytest.mark.parametrize("seconds", [59, 0, -3600, 90 * 86400 + 1, 10**12, True, "3600", 3600.0, None], ids=repr)
def test_the_render_refuses_a_reply_limit_out_of_its_bounds(seconds: Any) -> None:
    with pytest.raises(RenderError, match="robot reply period out of range"):
        render.robot_sieve(robot_doc(reply_seconds=seconds), OWN)


@pytest.mark.parametrize("seconds", [True, "3600", 3600.0, None], ids=repr)
def test_the_contract_refuses_a_reply_limit_that_is_no_int(seconds: Any) -> None:
    document = {"format": contract.FORMAT, "domain": "alpha-domain.test", "revision": 1, "state": "present",
                "robots": [robot_doc(reply_seconds=seconds)]}
    with pytest.raises(DocumentError, match=r"^robots\[0\]\.reply_seconds: expected int"):
        contract.check_document(document)


@pytest.fixture
def host(tmp_path: Path) -> HostConfig:
    config = HostConfig(name="t", root=tmp_path)
    (tmp_path / "db").mkdir()
    maps.create(config.maps_db)
    return config


def stored_script(cfg: HostConfig) -> str:
    db = maps.connect(cfg.maps_db)
    try:
        [(path,)] = db.execute("SELECT sieve FROM mailboxes WHERE email = ?", (OWN,)).fetchall()
    finally:
        db.close()
    return Path(path).read_text(encoding="utf-8")


def test_the_host_stores_the_script_of_the_panels_document_and_refuses_a_bad_period(
    cast: Cast, host: HostConfig
) -> None:
    robot = make(cast, reply_hours=5)
    document = snapshot.build(Domain.objects.get(pk=cast.a.domain.pk))
    assert apply(document, host).applied
    assert "vacation :seconds 18000 " in stored_script(host)
    update(cast, robot, reply_hours=7)
    assert apply(snapshot.build(Domain.objects.get(pk=cast.a.domain.pk)), host).applied
    script = stored_script(host)
    assert "vacation :seconds 25200 " in script
    bad = snapshot.build(Domain.objects.get(pk=cast.a.domain.pk))
    bad["revision"] += 1
    bad["robots"][0]["reply_seconds"] = 59
    with pytest.raises(RenderError, match="robot reply period out of range: 59"):
        apply(bad, host)
    assert stored_script(host) == script  # nothing changed on the host
