"""Configuring a real mail host for the agent: the production Postfix, Dovecot and mlmmj
configuration written from the test stack's own templates (`mailhost.stack.templates`).

`configure` writes files (or prints them with `dry_run`) and starts nothing: the operator restarts
Postfix and Dovecot. A file that exists with other content is kept unless `force`, and then as
FILE.bak; a file already holding the same content is left alone.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from mailhost.stack import rspamd, templates
from mailhost.stack.config import DOVECONF, HostConfig, StackError
from mailhost.stack.lifecycle import doveadm_password, make_dir, make_root, write_agent_data, write_file
from mailhost.stack.processes import run

POSTCONF = "/usr/sbin/postconf"


@dataclass(frozen=True)
class ConfigFile:
    path: Path
    text: str
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    secret: bool = False  # never printed


def production_files(config: HostConfig, password: str) -> list[ConfigFile]:
    """Every file of a production host's configuration, in writing order."""
    files = [
        ConfigFile(config.postfix_dir / "main.cf", templates.postfix_main_cf(config)),
        ConfigFile(config.postfix_dir / "master.cf", templates.postfix_master_cf(config)),
        ConfigFile(config.list_pipe_script, templates.list_pipe_script(), 0o755),
    ]
    for name, query in templates.POSTFIX_MAPS.items():
        text = templates.postfix_map_cf(config, query)
        files.append(ConfigFile(config.postfix_maps_dir / f"{name}.cf", text, 0o640, group="postfix"))
    files += [
        ConfigFile(config.dovecot_conf, templates.dovecot_conf(config)),
        ConfigFile(config.quota_warning_script, templates.quota_warning_script(), 0o755),
        ConfigFile(config.dovecot_sql_conf, templates.dovecot_sql_conf(config), 0o640, "root", "dovecot"),
        ConfigFile(config.doveadm_password_file, password + "\n", 0o600, secret=True),
    ]
    files += [ConfigFile(path, text) for path, text in rspamd.production_files(config).items()]
    return files


def _unchanged(file: ConfigFile) -> bool:
    try:
        return file.path.read_text() == file.text
    except OSError:
        return False


def configure(
    config: HostConfig, *, dry_run: bool = False, force: bool = False, out: TextIO | None = None
) -> list[Path]:
    """Write (or with `dry_run` print) the host's configuration; return the files written."""
    files = production_files(config, doveadm_password(config).strip())
    if dry_run:
        out = out or sys.stdout
        for file in files:
            print(f"==> {file.path} (mode {file.mode:o}, {file.owner}:{file.group}) <==", file=out)
            print("(secret: not shown)\n" if file.secret else file.text, file=out)
        return []
    missing = [path for path in (config.tls_cert, config.tls_key) if not path.is_file()]
    if missing:
        raise StackError("TLS file(s) not found: " + ", ".join(map(str, missing)))
    conflicts = [file.path for file in files if file.path.exists() and not _unchanged(file)]
    if conflicts and not force:
        raise StackError(
            "these files exist with other content, nothing was written:\n  "
            + "\n  ".join(map(str, conflicts))
            + "\n(--force replaces them and keeps each as FILE.bak; --dry-run shows the new ones)"
        )
    make_root(config.root)
    write_agent_data(config)
    make_dir(config.postfix_maps_dir, 0o750, "root", "postfix")
    written = []
    for file in files:
        if _unchanged(file):
            continue
        if file.path.exists():
            shutil.copy2(file.path, file.path.with_name(file.path.name + ".bak"))
        write_file(file.path, file.text, file.mode, file.owner, file.group)
        written.append(file.path)
    # Both programs read what was written (nothing is started): a mistake shows now.
    run([POSTCONF, "-c", str(config.postfix_dir), "-n"], "Postfix configuration")
    run([DOVECONF, "-c", str(config.dovecot_conf), "-n"], "Dovecot configuration")
    return written
