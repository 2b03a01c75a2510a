"""The test stack's life: write its layout and configuration, start it, stop it, its status,
reload Postfix. Production hosts are configured by `mailhost.stack.production` instead."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mailhost import migrate
from mailhost.maps import connect, create
from mailhost.stack import rspamd, templates
from mailhost.stack.config import (
    DOVEADM_PASSWORD_ENV,
    DOVECONF,
    DOVECOT,
    HOST,
    HostConfig,
    StackConfig,
    StackError,
    system_gid,
    system_uid,
)
from mailhost.stack.install import ensure_dev_null, missing_packages
from mailhost.stack.processes import (
    alive,
    check_ports_free,
    descendants,
    dovecot_master_pid,
    port_answers,
    postfix_master_pid,
    run,
    run_postfix,
    tail_text,
    unreaped,
    wait_until,
)

START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
REAP_TIMEOUT = 5.0


@dataclass(frozen=True)
class Stack:
    """A running stack, as returned by `up`."""

    config: StackConfig
    postfix_pid: int
    dovecot_pid: int
    startup_seconds: float

    @property
    def host(self) -> str:
        return HOST

    def reload_postfix(self) -> None:
        postfix_reload(self.config)

    def down(self) -> None:
        down(self.config)


@dataclass(frozen=True)
class Status:
    postfix_pid: int | None
    dovecot_pid: int | None
    ports: dict[str, bool]

    @property
    def running(self) -> bool:
        return self.postfix_pid is not None and self.dovecot_pid is not None and all(self.ports.values())

    @property
    def stopped(self) -> bool:
        return self.postfix_pid is None and self.dovecot_pid is None

    def lines(self, config: StackConfig) -> list[str]:
        def daemon(name: str, pid: int | None) -> str:
            return f"{name}: running (pid {pid})" if pid else f"{name}: not running"

        out = [f"root: {config.root}", daemon("postfix", self.postfix_pid), daemon("dovecot", self.dovecot_pid)]
        for name, port in config.ports.items():
            out.append(f"{name} {HOST}:{port}: {'answers' if self.ports[name] else 'closed'}")
        return out



def write_file(path: Path, text: str, mode: int = 0o644, owner: str = "root", group: str = "root") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chown(tmp, system_uid(owner), system_gid(group))
    tmp.chmod(mode)
    tmp.replace(path)


def make_dir(path: Path, mode: int, owner: str = "root", group: str = "root") -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, system_uid(owner), system_gid(group))
    path.chmod(mode)


def doveadm_password(config: StackConfig | HostConfig) -> str:
    """MAILSTACK_DOVEADM_PASSWORD, else the one already in its file, else a new random one."""
    password = os.environ.get(DOVEADM_PASSWORD_ENV, "").strip()
    if not password and config.doveadm_password_file.exists():
        password = config.doveadm_password_file.read_text().strip()
    return password or secrets.token_urlsafe(24)


def _check_traversable(path: Path) -> None:
    """Users mail, postfix, list and dovecot must be able to reach the root."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            raise StackError(
                f"{parent} is not traversable by other users (mode {mode & 0o7777:o}): users mail, postfix, "
                f"list and dovecot must reach {path}; chmod o+x {parent} or choose another root"
            )


def make_root(root: Path) -> None:
    """Create `root` (and missing parents) mode 755; every parent must be traversable."""
    for parent in reversed(root.parents):
        if not parent.exists():
            parent.mkdir(mode=0o755)
    root.mkdir(mode=0o755, exist_ok=True)
    root.chmod(0o755)
    _check_traversable(root)


def write_agent_data(config: StackConfig | HostConfig) -> None:
    """The agent's data under the root: the maps database (schema of mailhost.migrate), vmail/, mlmmj/."""
    # maps database: Postfix daemons drop supplementary groups, so group postfix must write the
    # folder (WAL -wal/-shm files); Dovecot's auth workers run as root.
    make_dir(config.maps_db.parent, 0o2770, "root", "postfix")
    create(config.maps_db)
    with contextlib.closing(connect(config.maps_db)) as db:
        migrate.create_schema(db)
    os.chown(config.maps_db, 0, system_gid("postfix"))
    config.maps_db.chmod(0o660)
    for extra in ("-wal", "-shm"):
        side = config.maps_db.with_name(config.maps_db.name + extra)
        if side.exists():
            os.chown(side, 0, system_gid("postfix"))
            side.chmod(0o660)
    make_dir(config.vmail_root, 0o750, "mail", "mail")
    make_dir(config.mlmmj_root, 0o755, "list", "list")
    make_dir(config.dkim_root, 0o750, "root", rspamd.group())


def write_layout(config: StackConfig) -> None:
    """Create the directories, the maps database and every configuration file (root only)."""
    make_root(config.root)

    make_dir(config.log_dir, 0o755)
    make_dir(config.bin_dir, 0o755)
    write_agent_data(config)
    make_dir(config.sink_root, 0o755, "mail", "mail")

    # Postfix
    make_dir(config.postfix_dir.parent, 0o755)
    make_dir(config.postfix_dir, 0o755)
    make_dir(config.postfix_queue, 0o755)
    make_dir(config.postfix_data, 0o700, "postfix", "postfix")
    write_file(config.postfix_dir / "main.cf", templates.postfix_main_cf(config))
    write_file(config.postfix_dir / "master.cf", templates.postfix_master_cf(config))
    write_file(config.list_pipe_script, templates.list_pipe_script(), 0o755)
    make_dir(config.postfix_maps_dir, 0o750, "root", "postfix")
    for name, query in templates.POSTFIX_MAPS.items():
        text = templates.postfix_map_cf(config, query)
        write_file(config.postfix_maps_dir / f"{name}.cf", text, 0o640, "root", "postfix")
    write_file(config.sink_script, templates.sink_script(config), 0o755)

    # Dovecot
    make_dir(config.dovecot_dir, 0o755)
    make_dir(config.dovecot_run, 0o755)
    make_dir(config.dovecot_state, 0o750)
    write_file(config.dovecot_conf, templates.dovecot_conf(config))
    write_file(config.quota_warning_script, templates.quota_warning_script(), 0o755)
    write_file(config.dovecot_sql_conf, templates.dovecot_sql_conf(config), 0o640, "root", "dovecot")
    write_file(config.doveadm_password_file, doveadm_password(config), 0o600)

    # rspamd (DKIM signing): its config under the root, its state and pid file its user's; the
    # DKIM keys' folder root:_rspamd 0750 (mailhost.dkim writes the keys and maps in it).
    for path, text in rspamd.stack_files(config).items():
        make_dir(path.parent, 0o755)
        write_file(path, text)
    make_dir(rspamd.db_dir(config), 0o750, rspamd.RSPAMD_USER, rspamd.RSPAMD_USER)
    make_dir(rspamd.run_dir(config), 0o750, rspamd.RSPAMD_USER, rspamd.RSPAMD_USER)
    write_file(rspamd.log_file(config), "", 0o640, rspamd.RSPAMD_USER, rspamd.RSPAMD_USER)

    write_file(config.state_file, json.dumps(dataclasses.asdict(config), default=str, indent=2) + "\n")


def up(config: StackConfig) -> Stack:
    """Write the configuration and start Postfix and Dovecot; return when every port answers.

    A stack already running on this root is stopped first (then started with fresh config).
    """
    t0 = time.monotonic()
    if os.geteuid() != 0:
        raise StackError("starting the mail stack needs root (Postfix and Dovecot drop privileges themselves)")
    missing = missing_packages()
    if missing:
        raise StackError(f"missing Debian packages: {' '.join(missing)} (run `python -m mailhost.stack install`)")
    ensure_dev_null()
    if not status(config).stopped:
        down(config)
    rspamd.stop(config)  # one left behind by a stack that died
    check_ports_free(config)
    write_layout(config)

    log = config.log_dir
    try:
        rspamd.start(config)  # first: Postfix's milter answers before the first message
        doveconf = run([DOVECONF, "-c", str(config.dovecot_conf), "-n"], "Dovecot configuration")
        (log / "doveconf-n.txt").write_text(doveconf)
        with (
            config.dovecot_stderr.open("ab") as err,
            open(os.devnull, "rb") as devnull,
        ):
            # Dovecot never closes its stderr: a file, never a pipe.
            rc = subprocess.run(  # noqa: S603
                [DOVECOT, "-c", str(config.dovecot_conf)], stdin=devnull, stdout=err, stderr=err, check=False
            ).returncode
        if rc != 0:
            raise StackError(
                f"dovecot -c {config.dovecot_conf} exited with {rc}"
                + tail_text(config.dovecot_stderr, config.dovecot_log)
            )
        run_postfix(config, "check")
        run_postfix(config, "start")

        sockets = [config.lmtp_socket, config.auth_socket]
        ready = wait_until(
            lambda: postfix_master_pid(config) is not None
            and dovecot_master_pid(config) is not None
            and all(path.exists() for path in sockets)
            and all(port_answers(port) for port in config.ports.values()),
            START_TIMEOUT,
        )
        if not ready:
            st = status(config)
            raise StackError(
                f"the mail stack did not come up within {START_TIMEOUT:.0f} s:\n  "
                + "\n  ".join(st.lines(config))
                + tail_text(config.postfix_log, config.dovecot_log, config.dovecot_stderr)
            )
    except BaseException:
        with contextlib.suppress(StackError):
            down(config)
        raise
    postfix_pid, dovecot_pid = postfix_master_pid(config), dovecot_master_pid(config)
    assert postfix_pid is not None and dovecot_pid is not None  # noqa: S101 - checked by _wait above
    return Stack(config, postfix_pid, dovecot_pid, time.monotonic() - t0)


def down(config: StackConfig) -> None:
    """Stop this root's Postfix and Dovecot (only them), wait until their processes are gone.

    Idempotent: nothing running is fine.
    """
    rspamd.stop(config)
    masters = {"postfix": postfix_master_pid(config), "dovecot": dovecot_master_pid(config)}
    pids = [pid for pid in masters.values() if pid is not None]
    if not pids:
        return
    procs = descendants(pids)
    if masters["postfix"] is not None:
        try:
            run_postfix(config, "stop", timeout=30)
        except StackError:
            # e.g. a broken main.cf: the master still stops on SIGTERM
            with contextlib.suppress(ProcessLookupError):
                os.kill(masters["postfix"], signal.SIGTERM)
    if masters["dovecot"] is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(masters["dovecot"], signal.SIGTERM)
    if not wait_until(lambda: not alive(procs), STOP_TIMEOUT):
        left = alive(procs)
        for pid, _start in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if not wait_until(lambda: not alive(procs), 5):
            raise StackError(f"processes of the mail stack under {config.root} did not stop: {sorted(alive(procs))}")
        print(
            f"warning: killed {len(left)} process(es) of the stack that ignored SIGTERM for {STOP_TIMEOUT:.0f} s",
            file=sys.stderr,
        )
    # The masters daemonized, so init reaps them and their children: give it a moment, so that
    # no zombie named dovecot or master is left for `pgrep` to show (harmless if one is).
    wait_until(lambda: not unreaped(procs), REAP_TIMEOUT, interval=0.1)


def status(config: StackConfig) -> Status:
    return Status(
        postfix_pid=postfix_master_pid(config),
        dovecot_pid=dovecot_master_pid(config),
        ports={name: port_answers(port) for name, port in config.ports.items()},
    )


def postfix_reload(config: StackConfig) -> None:
    """`postfix -c DIR reload`: needed after adding or removing a domain or a transport."""
    if postfix_master_pid(config) is None:
        raise StackError(f"Postfix of {config.root} is not running: nothing to reload")
    run_postfix(config, "reload")

