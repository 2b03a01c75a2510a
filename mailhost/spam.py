"""Spam filtering on the mail host: each domain's settings as rspamd's settings map and a Sieve rule.

Under the agent's root (`RootLayout.spam_root`):

- `domains/<domain>.json`: a domain's checked settings (the document's `spam`, format 7), kept
  between documents (a delta, an older format: left as they are); removed with the domain.
- `settings.conf`: rspamd's settings map (UCL, the `settings` module reads it as a map and reads
  it again when it changes: no restart). One rule per served domain and alias domain (filtered as
  its target), matched on the recipient's domain: its actions' thresholds (mark: `rewrite
  subject`, junk: `add header`, reject: `reject`, at the domain's score; every other action off,
  and every action off for `off` or a domain without settings); a rule of higher priority for its
  blocked senders (refused whatever the score) and one for its allowed senders (every action off).
- `junk.sieve`: Dovecot's `sieve_before` script: mail to a domain in junk mode that rspamd
  marked (`X-Spam: Yes`, its `add header` action) is filed in "Junk", created if missing;
  compiled by the agent to `junk.svbin` (sievec) for Dovecot, which cannot write there.

Every value is checked again before it is written: the mode one of four words, the score a number
of SCORE_MIN to SCORE_MAX, each sender an address (the agent's own local-part and domain rules:
no quote, backslash, slash, brace, space or line break can reach the map) or a domain name, at
most MAX_ENTRIES a list. Every file is written whole to a temporary file and renamed, under one
lock for the host.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import sqlite3
import subprocess
from pathlib import Path
from typing import TypedDict

from mailhost import contract, mapfiles
from mailhost.layout import RootLayout
from mailhost.render import RenderError, address, domain_name, sieve_string

MODES = ("off", "mark", "junk", "reject")
SCORE_MIN, SCORE_MAX = 5.0, 30.0
MAX_ENTRIES = 200
JUNK_FOLDER = "Junk"
SETTINGS_MAP = "settings.conf"
JUNK_SIEVE = "junk.sieve"
SERVED = 1  # mailhost.apply.SERVED (`domains.active`)
# Pigeonhole's compiler: Dovecot (user mail) cannot save a global script's binary beside it, so the
# agent compiles it (otherwise every delivery compiles it again and logs an error).
SIEVEC = "/usr/bin/sievec"
log = logging.getLogger(__name__)
# rspamd's actions (the names its settings take) each mode sets at the domain's score.
MODE_ACTION = {"mark": "rewrite subject", "junk": "add header", "reject": "reject"}
ACTIONS = ("reject", "add header", "rewrite subject", "greylist")


class Settings(TypedDict):
    mode: str
    score: float
    allow: list[str]
    block: list[str]


def sender(value: object) -> str:
    """An address or a domain name as the agent writes them (RenderError otherwise)."""
    if isinstance(value, str) and "@" in value:
        return address(value)
    return domain_name(value)


def _senders(value: object, name: str) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_ENTRIES:
        raise RenderError(f"invalid spam {name} list: at most {MAX_ENTRIES} senders")
    return sorted({sender(item) for item in value})


def settings(value: contract.Spam) -> Settings:
    """The checked settings (RenderError for any value that cannot be written safely)."""
    mode, score = value["mode"], value["score"]
    if mode not in MODES:
        raise RenderError(f"invalid spam mode: {mode!r} ({', '.join(MODES)})")
    if not math.isfinite(score) or not SCORE_MIN <= score <= SCORE_MAX:
        raise RenderError(f"invalid spam score: {score!r} ({SCORE_MIN:g} to {SCORE_MAX:g})")
    return {"mode": mode, "score": round(score, 1), "allow": _senders(value["allow"], "allow"),
            "block": _senders(value["block"], "block")}


class Wanted:
    """What a document asks of a domain's settings: `keep` (it does not say), or `value` (None:
    off, its file removed)."""

    def __init__(self, keep: bool, value: Settings | None = None) -> None:
        self.keep, self.value = keep, value


def wanted(document: contract.Document) -> Wanted:
    """The checked settings a domain's document asks for (RenderError if it carries bad ones)."""
    if document["state"] == "absent" or contract.is_alias(document):
        return Wanted(keep=False)
    if "spam" not in document:
        return Wanted(keep=True)
    given = document["spam"]
    return Wanted(keep=False, value=None if given is None else settings(given))


def _folder(path: Path) -> None:
    if path.is_symlink():
        raise RenderError(f"{path} is a symbolic link")
    path.mkdir(mode=0o755, parents=True, exist_ok=True)


def _stored(cfg: RootLayout) -> dict[str, Settings]:
    """The settings files present, checked again as they are read (a file not ours is ignored)."""
    found: dict[str, Settings] = {}
    folder = cfg.spam_root / "domains"
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.json")):
        try:
            found[domain_name(path.name[:-5])] = settings(json.loads(path.read_text()))
        except (RenderError, ValueError, KeyError, TypeError):
            continue
    return found


def sync(cfg: RootLayout, db: sqlite3.Connection, domain: str, want: Wanted) -> bool:
    """Make the domain's settings file what the document asks, then the map and the Sieve rule
    what the host serves. True when one of them changed."""
    _folder(cfg.spam_root)
    with mapfiles.locked(cfg.spam_root):
        folder = cfg.spam_root / "domains"
        _folder(folder)
        path = folder / f"{domain_name(domain)}.json"
        if not want.keep:
            if want.value is None:
                path.unlink(missing_ok=True)
            else:
                data = json.dumps(want.value, sort_keys=True).encode()
                if path.is_symlink() or not path.exists() or path.read_bytes() != data:
                    mapfiles.write(path, data, mode=0o644)
        return _write_outputs(cfg, db)


def served(cfg: RootLayout, db: sqlite3.Connection) -> dict[str, Settings | None]:
    """Every served domain and alias domain with its settings (an alias: its target's)."""
    stored = _stored(cfg)
    names = sorted(name for (name,) in db.execute("SELECT domain FROM domains WHERE active = ?", (SERVED,)))
    targets = dict(db.execute("SELECT alias, domain FROM alias_domains").fetchall())
    return {name: stored.get(targets.get(name, name)) for name in names}


def _number(value: float) -> str:
    return f"{value:.1f}"


def _actions(mode: str, score: float) -> str:
    wanted_action = MODE_ACTION.get(mode)
    return "; ".join(f'"{action}" = {_number(score) if action == wanted_action else "null"}'
                     for action in ACTIONS)


def _condition(entries: list[str]) -> str:
    """rspamd's address condition: an address as itself, a domain as "@domain" (never "/": a regex)."""
    return ", ".join(f'"{entry if "@" in entry else "@" + entry}"' for entry in entries)


def settings_map(domains: dict[str, Settings | None]) -> str:
    """rspamd's settings map for these domains (names and senders already checked)."""
    lines = ["# Written by the mail host's agent (mailhost.spam): the panel's spam filtering, per domain."]
    for index, (name, value) in enumerate(sorted(domains.items())):
        value = value or {"mode": "off", "score": SCORE_MAX, "allow": [], "block": []}
        rcpt = f'rcpt = "@{name}";'
        if value["block"]:
            lines.append(f"domain{index}_block {{ priority = high; {rcpt} from = [{_condition(value['block'])}]; "
                         f'apply {{ actions {{ "reject" = -1000.0; }} }} }}')
        if value["allow"]:
            lines.append(f"domain{index}_allow {{ priority = medium; {rcpt} from = [{_condition(value['allow'])}]; "
                         f"apply {{ actions {{ {_actions('off', 0)}; }} }} }}")
        lines.append(f"domain{index} {{ priority = low; {rcpt} "
                     f"apply {{ actions {{ {_actions(value['mode'], value['score'])}; }} }} }}")
    return "\n".join(lines) + "\n"


def junk_sieve(domains: dict[str, Settings | None]) -> str:
    """Dovecot's sieve_before script: marked mail to a junk-mode domain is filed in Junk."""
    junk = [name for name, value in sorted(domains.items()) if value and value["mode"] == "junk"]
    head = ('# Written by the mail host\'s agent (mailhost.spam): marked mail to these domains goes to '
            f"{JUNK_FOLDER}.\n")
    if not junk:
        return head
    names = ", ".join(sieve_string(name) for name in junk)
    return (head + 'require ["envelope", "fileinto", "mailbox"];\n'
            f'if allof (header :is "X-Spam" "Yes", envelope :domain :is "to" [{names}]) {{\n'
            f"  fileinto :create {sieve_string(JUNK_FOLDER)};\n}}\n")


def _write_outputs(cfg: RootLayout, db: sqlite3.Connection) -> bool:
    domains = served(cfg, db)
    written: set[str] = set()
    for file_name, text in ((SETTINGS_MAP, settings_map(domains)), (JUNK_SIEVE, junk_sieve(domains))):
        target = cfg.spam_root / file_name
        data = text.encode("ascii")
        if target.is_symlink() or not target.exists() or target.read_bytes() != data:
            mapfiles.write(target, data, mode=0o644)
            written.add(file_name)
    script = cfg.spam_root / JUNK_SIEVE
    binary = script.with_suffix(".svbin")
    if JUNK_SIEVE in written or not binary.exists():
        _compile(script, binary)
    return bool(written)


def _compile(script: Path, binary: Path) -> None:
    """Compile the Junk rule for Dovecot (to a temporary file, renamed); a host without sievec, or a
    failure, is logged: Dovecot then compiles the script at each delivery."""
    if not os.path.exists(SIEVEC):
        log.warning("%s not found: Dovecot compiles %s at each delivery", SIEVEC, script)
        return
    tmp = binary.with_name(f".{secrets.token_hex(8)}.svbin")
    try:
        subprocess.run([SIEVEC, str(script), str(tmp)], check=True, capture_output=True,  # noqa: S603
                       timeout=60, stdin=subprocess.DEVNULL)
        # Newer than the script: Pigeonhole compiles again a binary not strictly newer.
        mtime = max(int(script.stat().st_mtime), int(tmp.stat().st_mtime)) + 1
        os.utime(tmp, (mtime, mtime))
        os.chmod(tmp, 0o644)
        os.replace(tmp, binary)
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("could not compile %s: %s", script, error)
    finally:
        tmp.unlink(missing_ok=True)
