"""The agent that runs on a mail host: a Celery worker consuming the queue `host.<name>`.

It knows only the broker (its one link to the panel) and its local paths; it never reads the
panel's database. Configuration from the environment:

  MAILHOST_NAME          the host's name in the panel (queue `host.<name>`)       required
  MAILHOST_ROOT          where maps.sqlite, vmail/, mlmmj/ and archive/ live        required
  MAILHOST_BROKER_URL    the broker (redis://...); default: the panel's embedded broker, the file
                         VAR_DIR/broker.sqlite3 (VAR_DIR: var/ of the project), see mailhost/broker.py
  MAILHOST_POSTFIX_DIR   Postfix config dir to reload on routing changes (unset: no daemons)
  MAILHOST_LIST_SMTP_PORT  the port on 127.0.0.1 mlmmj sends list mail to: the host's smtpd for mlmmj
                         (`python -m mailhost.stack configure` says which; README "Lists at the speed
                         of Postfix"); unset: MAILHOST_SMTP_PORT (default 25), one transaction a member
  MAILHOST_REMOVAL       delete (default) or archive: what becomes of a removed maildir
  MAILHOST_DOVECOT_CONF  the Dovecot config doveadm uses to copy a moving domain's mail
                         (default: ROOT/dovecot/dovecot.conf of a mailhost.stack, else doveadm's own)
  MAILHOST_IMPORT_ROOT   where old servers' trees (vpopmail) are copied or mounted, the only place a
                         mail import reads Maildirs from (mailhost.mailimport; default: ROOT/old)
  MAILHOST_IMPORT_CONCURRENCY  mailboxes a mail import copies at once (default 4)

Run: celery -A mailhost.agent worker -Q host.<name>
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from celery import Celery
from celery.signals import worker_ready

from mailhost import broker, contract, list_members, lists, mailimport, maps, moderation
from mailhost.apply import HostConfig, apply, copy_away
from mailhost.memory import cycle_collector_paused
from mailhost.migrate import MigrateError

log = logging.getLogger(__name__)


def config_from_env() -> HostConfig:
    postfix_dir = os.environ.get("MAILHOST_POSTFIX_DIR")
    root = Path(os.environ.get("MAILHOST_ROOT", "var/mailhost")).resolve()
    dovecot_conf = Path(os.environ.get("MAILHOST_DOVECOT_CONF") or root / "dovecot" / "dovecot.conf")
    return HostConfig(
        name=os.environ.get("MAILHOST_NAME", "local"),
        root=root,
        postfix_dir=Path(postfix_dir) if postfix_dir else None,
        removal=os.environ.get("MAILHOST_REMOVAL", "delete"),
        smtp_port=int(os.environ.get("MAILHOST_LIST_SMTP_PORT") or os.environ.get("MAILHOST_SMTP_PORT", "25")),
        dovecot_conf=dovecot_conf if dovecot_conf.exists() else None,
    )


def _broker() -> str:
    return os.environ.get("MAILHOST_BROKER_URL") or broker.default_url()


CONFIG = config_from_env()
# Never the current app of a process that imports this module (the panel's tests do): the
# worker that runs it names it (`celery -A mailhost.agent`), and the agent sends through `app`.
app = Celery("mailhost", broker=_broker(), set_as_current=False)
app.conf.update(
    task_default_queue=contract.host_queue(CONFIG.name),
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    # Run with `worker -B`: the heartbeat; list maintenance and membership changed by mail, every minute.
    beat_schedule={
        "heartbeat": {"task": contract.BEAT, "schedule": float(os.environ.get("MAILHOST_HEARTBEAT_SECONDS")
                                                             or contract.HEARTBEAT_SECONDS)},
        "maintain": {"task": contract.MAINTAIN, "schedule": 60.0},
        "usage": {"task": contract.REPORT_USAGE, "schedule": 300.0},
    },
    beat_schedule_filename=str(CONFIG.root / "celerybeat-schedule"),
)


_prepared = False


def _prepare() -> None:
    """Folders and the maps schema (idempotent: also adds tables a newer agent needs), once."""
    global _prepared
    if _prepared:
        return
    for folder in (CONFIG.root / "db", CONFIG.vmail_root):
        folder.mkdir(parents=True, exist_ok=True)
    maps.create(CONFIG.maps_db)
    _prepared = True


def tell_panel(task: str, payload: contract.Report | contract.Migrated | contract.ListMembers | contract.Usage
               | contract.HeldReport | contract.Heartbeat | contract.MailImported) -> None:
    """Send the panel one of the contract's reports."""
    app.send_task(task, kwargs=dict(payload), queue=contract.PANEL_QUEUE)


@app.task(name=contract.BEAT)
def heartbeat(started: bool = False) -> None:
    """Tell the panel this agent is alive, and which document formats it reads (the beat's, every
    contract.HEARTBEAT_SECONDS; a host silent for a few of them is flagged in the panel); `started`
    at the worker's start: the panel then sends again what this host has not confirmed (a document
    it was applying when it was killed is gone with it)."""
    tell_panel(contract.HEARTBEAT, {"host": CONFIG.name, "reads": list(contract.READS), "started": started})


@worker_ready.connect
def _heartbeat_at_start(sender: object = None, **_kwargs: object) -> None:
    """The first heartbeat as soon as the agent's worker is ready (with or without its beat)."""
    if getattr(sender, "app", None) is app:
        try:
            heartbeat(started=True)
        except Exception:  # noqa: BLE001 - the broker may be down at start: the beat tells it later
            log.exception("the heartbeat at start could not be sent")


@app.task(name=contract.APPLY, acks_late=True)
def apply_document(packed: str | contract.Document) -> None:
    """Apply one domain document (packed, see contract.pack; or the document itself, from a panel
    older than this agent: checked all the same) and tell the panel what happened
    (applied or the error), the error of the folders' or the schema's preparation too (a full
    disk at the worker's start fails there first)."""
    unprepared: Exception | None = None
    try:
        _prepare()
    except Exception as error:  # noqa: BLE001 - reported below, under the document's name
        unprepared = error
    try:
        with cycle_collector_paused():  # as apply: a whole domain is a million objects, none in a cycle
            document = contract.unpack(packed) if isinstance(packed, str) else packed
    except contract.DocumentError as error:  # nothing to name the domain by: only the log says it
        log.error("a document that does not unpack: %s", error)
        return
    if not isinstance(document, dict):
        log.error("a document that is not an object: %s", type(document).__name__)
        return
    name, revision, state = document.get("domain"), document.get("revision"), document.get("state", "present")
    try:
        if unprepared is not None:
            raise unprepared
        outcome = apply(document, CONFIG)
    except contract.Behind as error:  # nothing applied: the panel sends the complete domain
        log.info("%s@%s: %s", name, revision, error)
        tell_panel(contract.REPORT, {"host": CONFIG.name, "domain": str(name), "state": str(state),
                                     "revision": revision if type(revision) is int else 0, "behind": True})
        return
    except Exception as error:  # noqa: BLE001 - whatever went wrong, the panel must be told
        log.exception("apply of %s@%s failed", name, revision)
        if isinstance(error, contract.UnknownFormat):
            text = str(error)
        else:
            text = f"{'refused' if isinstance(error, contract.DocumentError) else type(error).__name__}: {error}"
        tell_panel(contract.REPORT, {
            "host": CONFIG.name, "domain": str(name), "state": str(state), "error": text[:2000],
            "revision": revision if type(revision) is int else 0, "behind": False,
        })
        return
    log.info("%s@%s %s (applied=%s)", outcome.domain, outcome.revision, outcome.state, outcome.applied)
    tell_panel(contract.REPORT, {"host": CONFIG.name, "domain": outcome.domain, "revision": outcome.revision,
                                 "state": outcome.state})


@app.task(name=contract.MIGRATE, acks_late=True)
def migrate_domain(request: contract.CopyRequest) -> None:
    """Copy a moving domain's mail to its new host (mailhost.migrate) and tell the panel: what
    was copied, or the error. The maildirs stay until the panel sends the "absent" document."""
    _prepare()
    move, domain = request.get("move"), str(request.get("domain"))
    try:
        copied = copy_away(request, CONFIG)
    except Exception as error:  # noqa: BLE001 - whatever went wrong, the panel must be told
        log.exception("copy of %s to %s failed", domain, request.get("target"))
        text = str(error) if isinstance(error, MigrateError) else f"{type(error).__name__}: {error}"
        tell_panel(contract.MIGRATED, {"host": CONFIG.name, "move": move, "domain": domain, "error": text[:2000]})
        return
    log.info("%s copied to %s in %.2f s: %s", domain, request.get("target"), copied.seconds, copied.copied)
    tell_panel(contract.MIGRATED, {"host": CONFIG.name, "move": move, "domain": copied.domain,
                                   "copied": copied.copied, "seconds": copied.seconds})


def import_config() -> mailimport.ImportConfig:
    source_root = os.environ.get("MAILHOST_IMPORT_ROOT")
    return mailimport.ImportConfig(
        maps_db=CONFIG.maps_db, work_root=CONFIG.root / "import",
        source_root=Path(source_root) if source_root else CONFIG.root / "old",
        dovecot_conf=CONFIG.dovecot_conf, mail_user=CONFIG.mail_user,
        concurrency=int(os.environ.get("MAILHOST_IMPORT_CONCURRENCY") or mailimport.CONCURRENCY),
    )


@app.task(name=contract.IMPORT_MAIL, acks_late=True)
def import_mail(request: contract.MailImportRequest) -> None:
    """Bring an old server's Maildirs into this host's mailboxes (mailhost.mailimport) and tell
    the panel what came of each: what was copied, or its error."""
    _prepare()
    try:
        outcome = mailimport.import_mail(request, import_config(), CONFIG.name)
    except Exception as error:  # noqa: BLE001 - whatever went wrong, the panel must be told
        log.exception("mail import %s failed", request.get("id") if isinstance(request, dict) else request)
        outcome = {"host": CONFIG.name, "id": request.get("id") if isinstance(request, dict) else None,
                   "domain": str(request.get("domain") if isinstance(request, dict) else ""), "mailboxes": [],
                   "error": f"{type(error).__name__}: {error}"[:2000]}
    log.info("mail import %s of %s: %s", outcome["id"], outcome["domain"],
             ", ".join(f"{m['address']} +{m['copied']}" + (f" ({m['error']})" if "error" in m else "")
                       for m in outcome["mailboxes"]) or outcome.get("error", "nothing"))
    tell_panel(contract.MAIL_IMPORTED, outcome)


@app.task(name=contract.MAINTAIN)
def maintain() -> None:
    """mlmmj-maintd for every list; membership changed by mail and what the lists hold for their
    moderators (what mlmmj-maintd expired, or a moderator decided by mail, is gone from it)
    reported to the panel."""
    if not lists.available():
        return
    _prepare()
    host = lists.ListHost(CONFIG.mlmmj_root, CONFIG.smtp_port)
    lists.maintain(host)
    _report_membership(host)
    tell_panel(contract.HELD, {"host": CONFIG.name, "lists": moderation.held_report(host), "complete": True})


def _report_membership(host: lists.ListHost) -> None:
    db = maps.connect(CONFIG.maps_db)
    try:
        changes = list_members.membership_changes(host, db)
    finally:
        db.close()
    if changes:
        tell_panel(contract.LIST_MEMBERS, {"host": CONFIG.name, "changes": changes})


@app.task(name=contract.MODERATE, acks_late=True)
def moderate(request: contract.Moderation) -> None:
    """A decision taken in the panel on a held post or subscription request (mailhost.moderation),
    then what the list still holds, so the panel drops what is decided; a subscription let in
    comes back at once as a new member."""
    if not lists.available():
        return
    _prepare()
    host = lists.ListHost(CONFIG.mlmmj_root, CONFIG.smtp_port)
    try:
        contract.check(request, contract.Moderation)
    except contract.DocumentError as error:
        log.error("a moderation request that does not match the contract: %s", error)
        return
    try:
        done = moderation.decide(host, request)
    except Exception:  # noqa: BLE001 - the item stays held; the next report shows it, the panel sends again
        log.exception("moderation of %s on %s@%s failed", request["key"], request["list"], request["domain"])
    else:
        log.info("%s %s of %s@%s: %s", request["decision"], request["key"], request["list"], request["domain"],
                 "done" if done else "not held any more")
    try:
        held = moderation.list_held(host, request["domain"], request["list"])
    except contract.DocumentError as error:
        log.error("moderation request for a list that cannot be: %s", error)
        return
    tell_panel(contract.HELD, {"host": CONFIG.name, "lists": [held], "complete": False})
    if request["kind"] == "subscription":
        _report_membership(host)


@app.task(name=contract.REPORT_HELD)
def report_held(request: contract.HeldAsk | None = None) -> None:
    """Tell the panel now what one list (or every list) holds: the panel asks when its moderation
    page is opened, so a post held a moment ago shows without waiting for the maintain beat."""
    if not lists.available():
        return
    host = lists.ListHost(CONFIG.mlmmj_root, CONFIG.smtp_port)
    request = request or {}
    try:
        contract.check(request, contract.HeldAsk)
        if "domain" in request and "list" in request:
            report: contract.HeldReport = {"host": CONFIG.name, "complete": False,
                                           "lists": [moderation.list_held(host, request["domain"], request["list"])]}
        else:
            report = {"host": CONFIG.name, "lists": moderation.held_report(host), "complete": True}
    except contract.DocumentError as error:
        log.error("a report request that does not match the contract: %s", error)
        return
    tell_panel(contract.HELD, report)


def mailbox_usage(vmail_root: Path) -> dict[str, int]:
    """Bytes used by each mailbox, from its Maildir's files (`local@domain` → bytes)."""
    usage: dict[str, int] = {}
    if not vmail_root.is_dir():
        return usage
    for domain_dir in vmail_root.iterdir():
        if not domain_dir.is_dir() or domain_dir.is_symlink():
            continue
        for home in domain_dir.iterdir():
            maildir = home / "Maildir"
            if home.is_symlink() or not maildir.is_dir():
                continue
            total = 0
            for folder, _dirs, files in os.walk(maildir):
                for name in files:
                    try:
                        total += os.lstat(os.path.join(folder, name)).st_size
                    except OSError:
                        continue
            usage[f"{home.name}@{domain_dir.name}"] = total
    return usage


@app.task(name=contract.REPORT_USAGE)
def report_usage() -> None:
    """Tell the panel how much each mailbox uses (shown as Utilisé / Quota)."""
    usage = mailbox_usage(CONFIG.vmail_root)
    if usage:
        tell_panel(contract.USAGE, {"host": CONFIG.name, "usage": usage})
