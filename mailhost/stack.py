"""A real Postfix + Dovecot (POP3, IMAP, LMTP, Sieve, quota) + mlmmj mail stack on 127.0.0.1,
everything under one root directory, for the end-to-end tests and for developers.

    python -m mailhost.stack install                 # apt-get the Debian packages (root) if missing
    python -m mailhost.stack up     --root /abs/dir  # write the configs, start both daemons, wait
    python -m mailhost.stack status --root /abs/dir
    python -m mailhost.stack down   --root /abs/dir

Every lookup comes from one SQLite file (`StackConfig.maps_db`, schema and queries in
`mailhost.maps`) that Postfix reads through `proxy:sqlite:` maps and Dovecot through its sql
driver: mailbox, alias and password changes are live; a new domain or transport needs
`postfix_reload()`. Nothing leaves the machine: every non-local recipient goes to a pipe that
stores the message under `sink_root/<recipient>/`.

Choices:
- `up` on a root whose stack is already running stops that stack first, then starts it again
  with freshly written configuration (data is kept: maps database, mail, lists, sink, queue).
- `down` stops only the daemons of that root, found by their own pid files, and waits until
  they and every process they had started are gone.
- `install` keeps the packages' own daemons from starting with a policy-rc.d that forbids it
  (the machine's own one when it already forbids, else a temporary one, the original restored),
  and stops a default-instance daemon that started anyway during the install.

Plain Python 3.11 standard library: no Django.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import grp
import json
import os
import pty
import pwd
import re
import secrets
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mailhost import migrate
from mailhost.layout import RootLayout
from mailhost.maps import (
    DOVECOT_AUTH_QUERY,
    DOVECOT_ITERATE_QUERY,
    DOVECOT_USER_QUERY,
    POSTFIX_QUERIES,
    connect,
    create,
)

HOST = "127.0.0.1"

PACKAGES = (
    "postfix",
    "postfix-sqlite",
    "dovecot-core",
    "dovecot-imapd",
    "dovecot-pop3d",
    "dovecot-lmtpd",
    "dovecot-sieve",
    "dovecot-sqlite",
    "mlmmj",
)
POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"
DOVECONF = "/usr/bin/doveconf"
MLMMJ_RECEIVE = "/usr/bin/mlmmj-receive"
SYSTEM_PYTHON = "/usr/bin/python3"  # runs the sink as user mail: stdlib only
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")

# The sink stores a message for recipient R under sink_root/<sink_dirname(R)>/.
SINK_UNSAFE = r"[^a-z0-9@._+-]"

# Environment variables that override StackConfig fields in the CLI.
ENV_PREFIX = "MAILSTACK_"
PORT_FIELDS = ("smtp_port", "submission_port", "pop3_port", "imap_port", "quota_policy_port", "doveadm_port")
# The doveadm password (shared by every host a mailbox may move between): this variable, else
# the file already under the root, else a new random one. Never in the repository.
DOVEADM_PASSWORD_ENV = ENV_PREFIX + "DOVEADM_PASSWORD"

START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
REAP_TIMEOUT = 5.0
# Unix socket paths (sun_path) hold at most 107 bytes; Dovecot adds up to ~30 below its base_dir.
MAX_BASE_DIR = 75


class StackError(RuntimeError):
    """The mail stack could not be installed, started, reloaded or stopped; the message says why."""


@dataclass(frozen=True)
class StackConfig(RootLayout):
    """Where a stack lives and the 127.0.0.1 ports it listens on."""

    root: Path
    smtp_port: int = 2525
    submission_port: int = 2587
    pop3_port: int = 2110
    imap_port: int = 2143
    quota_policy_port: int = 12340
    doveadm_port: int = 12424  # doveadm server (dsync of mailboxes between hosts), password-protected
    hostname: str = "mail.panel.test"

    def __post_init__(self) -> None:
        root = Path(self.root)
        if not root.is_absolute():
            raise StackError(f"the stack root must be an absolute path, not {self.root}")
        object.__setattr__(self, "root", Path(os.path.normpath(root)))
        ports = self.ports
        if len(set(ports.values())) != len(ports):
            raise StackError(f"the stack's ports must differ: {ports}")
        if len(str(self.dovecot_run)) > MAX_BASE_DIR:
            raise StackError(
                f"{self.root} is too long: Dovecot's sockets under {self.dovecot_run} would exceed "
                "the 107-byte limit of a unix socket path; choose a shorter root"
            )

    @classmethod
    def from_env(cls, root: Path, env: dict[str, str] | None = None) -> StackConfig:
        """A config for `root` with ports and hostname from MAILSTACK_SMTP_PORT, ..._HOSTNAME."""
        env = dict(os.environ if env is None else env)
        kwargs: dict[str, object] = {}
        for name in PORT_FIELDS:
            value = env.get(ENV_PREFIX + name.upper())
            if value:
                try:
                    kwargs[name] = int(value)
                except ValueError:
                    raise StackError(f"{ENV_PREFIX}{name.upper()}={value!r} is not a port number") from None
        if env.get(ENV_PREFIX + "HOSTNAME"):
            kwargs["hostname"] = env[ENV_PREFIX + "HOSTNAME"]
        return cls(root=root, **kwargs)  # type: ignore[arg-type]

    # --- ports ---
    @property
    def ports(self) -> dict[str, int]:
        return {
            "smtp": self.smtp_port,
            "submission": self.submission_port,
            "pop3": self.pop3_port,
            "imap": self.imap_port,
            "quota-status": self.quota_policy_port,
            "doveadm": self.doveadm_port,
        }

    # --- data the agent and the tests use: maps_db, vmail_root, mlmmj_root from RootLayout ---
    @property
    def sink_root(self) -> Path:
        return self.root / "sink"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    # --- Postfix ---
    @property
    def postfix_dir(self) -> Path:
        """Postfix's config_directory (main.cf, master.cf, sqlite/*.cf): `postfix -c` takes it."""
        return self.root / "postfix" / "etc"

    @property
    def postfix_queue(self) -> Path:
        return self.root / "postfix" / "spool"

    @property
    def postfix_data(self) -> Path:
        return self.root / "postfix" / "data"

    @property
    def postfix_maps_dir(self) -> Path:
        return self.postfix_dir / "sqlite"

    @property
    def postfix_pid_file(self) -> Path:
        return self.postfix_queue / "pid" / "master.pid"

    @property
    def postfix_log(self) -> Path:
        return self.log_dir / "postfix.log"

    # --- Dovecot ---
    @property
    def dovecot_dir(self) -> Path:
        return self.root / "dovecot"

    @property
    def dovecot_conf(self) -> Path:
        return self.dovecot_dir / "dovecot.conf"

    @property
    def dovecot_sql_conf(self) -> Path:
        return self.dovecot_dir / "dovecot-sql.conf.ext"

    @property
    def dovecot_run(self) -> Path:
        """Dovecot's base_dir: master.pid and the sockets (lmtp, auth-postfix)."""
        return self.dovecot_dir / "run"

    @property
    def dovecot_state(self) -> Path:
        return self.dovecot_dir / "state"

    @property
    def doveadm_password_file(self) -> Path:
        """The doveadm server's password (root only): the same on every host mail moves between."""
        return self.dovecot_dir / "doveadm-password"

    @property
    def dovecot_pid_file(self) -> Path:
        return self.dovecot_run / "master.pid"

    @property
    def lmtp_socket(self) -> Path:
        return self.dovecot_run / "lmtp"

    @property
    def auth_socket(self) -> Path:
        return self.dovecot_run / "auth-postfix"

    @property
    def dovecot_log(self) -> Path:
        return self.log_dir / "dovecot.log"

    @property
    def dovecot_stderr(self) -> Path:
        return self.log_dir / "dovecot-stderr.log"

    # --- the rest ---
    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    @property
    def sink_script(self) -> Path:
        return self.bin_dir / "sink"

    @property
    def state_file(self) -> Path:
        """The config `up` used, so that `status`/`down` of the CLI find the same ports."""
        return self.root / "stack.json"


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


# ----------------------------------------------------------------------------- small helpers


def sink_dirname(address: str) -> str:
    """The folder name under sink_root for an outbound recipient (same rule as the sink script)."""
    return re.sub(SINK_UNSAFE, "_", address.strip().lower()) or "_"


def _run(cmd: Sequence[str], what: str, log: Path | None = None, timeout: float = 60) -> str:
    """Run a command (stdin closed), raise StackError with its output (and a log tail) on failure."""
    try:
        proc = subprocess.run(  # noqa: S603 - fixed programs, no shell
            list(cmd), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackError(f"{what}: {' '.join(cmd)} failed: {exc}{_tail_text(log)}") from exc
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip()
        raise StackError(
            f"{what}: `{' '.join(cmd)}` exited with {proc.returncode}\n{output}{_tail_text(log)}"
        )
    return proc.stdout + proc.stderr


def _run_postfix(config: StackConfig, action: str, timeout: float = 60) -> str:
    """`postfix -c DIR <action>` with its stderr on a pseudo-terminal.

    The postfix command reports errors on stderr only when that is a terminal (otherwise to
    syslog, which may not exist): a pty makes a failed `check` or `start` say why.
    """
    cmd = [POSTFIX, "-c", str(config.postfix_dir), action]
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)  # noqa: S603
    except OSError as exc:
        os.close(master)
        os.close(slave)
        raise StackError(f"postfix {action}: {exc}") from exc
    os.close(slave)
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        # Read until the command exits (a daemon it starts may keep the terminal open: no EOF wait).
        while True:
            ready, _, _ = select.select([master], [], [], 0.05)
            chunk = b""
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: every writer closed the terminal
                    time.sleep(0.01)
                output += chunk
            if chunk:
                continue
            if proc.poll() is not None:
                break
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise StackError(f"`{' '.join(cmd)}` did not finish in {timeout:.0f} s{_tail_text(config.postfix_log)}")
    finally:
        os.close(master)
    text = output.decode("utf-8", "replace").replace("\r\n", "\n").strip()
    if proc.returncode != 0:
        raise StackError(
            f"postfix {action}: `{' '.join(cmd)}` exited with {proc.returncode}\n{text}{_tail_text(config.postfix_log)}"
        )
    return text


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file ('' when it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _tail_text(*logs: Path | None) -> str:
    parts = []
    for log in logs:
        if log is not None and (text := tail(log)):
            parts.append(f"\n--- last lines of {log} ---\n{text}")
    return "".join(parts)


def _uid(user: str) -> int:
    return pwd.getpwnam(user).pw_uid


def _gid(group: str) -> int:
    return grp.getgrnam(group).gr_gid


def _write(path: Path, text: str, mode: int = 0o644, owner: str = "root", group: str = "root") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chown(tmp, _uid(owner), _gid(group))
    tmp.chmod(mode)
    tmp.replace(path)


def _mkdir(path: Path, mode: int, owner: str = "root", group: str = "root") -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, _uid(owner), _gid(group))
    path.chmod(mode)


def port_answers(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# ----------------------------------------------------------------------------- processes


def _proc_stat(pid: int) -> tuple[str, str, int, int] | None:
    """(comm, state, ppid, starttime) of a live process, None when gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    state, ppid, starttime = fields[0], int(fields[1]), int(fields[19])
    if state in ("Z", "X"):
        return None
    return comm, state, ppid, starttime


def _pid_from_file(path: Path, comm: str) -> int | None:
    """The pid in a pid file when that process is alive and is the expected program."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    stat = _proc_stat(pid)
    if stat is None or stat[0] != comm:
        return None
    return pid


def postfix_master_pid(config: StackConfig) -> int | None:
    return _pid_from_file(config.postfix_pid_file, "master")


def dovecot_master_pid(config: StackConfig) -> int | None:
    return _pid_from_file(config.dovecot_pid_file, "dovecot")


def _descendants(pids: Sequence[int]) -> set[tuple[int, int]]:
    """(pid, starttime) of the given processes and all their live descendants."""
    children: dict[int, list[tuple[int, int]]] = {}
    starts: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _proc_stat(int(entry.name))
        if stat is None:
            continue
        starts[int(entry.name)] = stat[3]
        children.setdefault(stat[2], []).append((int(entry.name), stat[3]))
    found: set[tuple[int, int]] = set()
    todo = [(pid, starts[pid]) for pid in pids if pid in starts]
    while todo:
        item = todo.pop()
        if item in found:
            continue
        found.add(item)
        todo.extend(children.get(item[0], []))
    return found


def _alive(procs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    return {(pid, start) for pid, start in procs if (stat := _proc_stat(pid)) is not None and stat[3] == start}


def _unreaped(procs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Those of `procs` that still have a /proc entry (alive or zombie)."""
    left = set()
    for pid, start in procs:
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if int(raw[raw.rindex(")") + 2 :].split()[19]) == start:
            left.add((pid, start))
    return left


def _listeners(ports: Sequence[int]) -> dict[int, list[int]]:
    """Socket inodes listening on each of the given TCP ports (from /proc/net/tcp, tcp6)."""
    found: dict[int, list[int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            port = int(local.rsplit(":", 1)[1], 16)
            if state == "0A" and port in ports:  # 0A = LISTEN
                found.setdefault(port, []).append(inode)
    return found


def _holders(inodes: Sequence[int]) -> list[str]:
    """'pid (command line)' of the processes that hold any of these socket inodes."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    holders = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in wanted:
                    cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    cmdline = " ".join(cmdline.split())
                    holders.append(f"pid {entry.name} ({cmdline[:160] or '?'})")
                    break
            except OSError:
                continue
    return holders


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def check_ports_free(config: StackConfig) -> None:
    """Raise StackError naming every port already taken on 127.0.0.1, and who holds it."""
    taken = {name: port for name, port in config.ports.items() if not _port_free(port)}
    if not taken:
        return
    listeners = _listeners(list(taken.values()))
    problems = []
    for name, port in taken.items():
        holders = _holders(listeners.get(port, []))
        who = ", ".join(holders) if holders else "holder not found in /proc"
        problems.append(f"port {port} ({name}) is taken: {who}")
    raise StackError(
        "cannot start the mail stack:\n  " + "\n  ".join(problems)
        + "\n(stop that process, or choose other ports with MAILSTACK_SMTP_PORT, MAILSTACK_SUBMISSION_PORT, "
        "MAILSTACK_POP3_PORT, MAILSTACK_IMAP_PORT, MAILSTACK_QUOTA_POLICY_PORT, MAILSTACK_DOVEADM_PORT)"
    )


# ----------------------------------------------------------------------------- install


def missing_packages() -> list[str]:
    """The Debian packages of the stack that are not installed."""
    if shutil.which("dpkg-query") is None:
        return list(PACKAGES)
    proc = subprocess.run(  # noqa: S603
        ["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *PACKAGES],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    installed = {
        line.split()[0] for line in proc.stdout.splitlines() if line.split()[1:] == ["installed"]
    }
    return [pkg for pkg in PACKAGES if pkg not in installed]


@contextlib.contextmanager
def _daemons_forbidden() -> Iterator[str]:
    """Make sure invoke-rc.d refuses to start the packages' daemons while installing.

    Keeps the machine's own policy-rc.d when it already forbids starting postfix and dovecot;
    otherwise puts one that forbids everything in place for the install and restores the original.
    """

    def forbids() -> bool:
        if not os.access(POLICY_RC_D, os.X_OK):
            return False
        for service in ("postfix", "dovecot"):
            rc = subprocess.run([str(POLICY_RC_D), service, "start"], capture_output=True, check=False)  # noqa: S603
            if rc.returncode != 101:
                return False
        return True

    if forbids():
        yield f"the machine's {POLICY_RC_D} (it forbids starting services)"
        return
    backup = POLICY_RC_D.with_name("policy-rc.d.mailstack-backup")
    had_one = POLICY_RC_D.exists()
    if had_one:
        POLICY_RC_D.replace(backup)
    try:
        POLICY_RC_D.write_text("#!/bin/sh\n# written by mailhost.stack during apt-get install\nexit 101\n")
        POLICY_RC_D.chmod(0o755)
        yield f"a temporary {POLICY_RC_D} (exit 101), removed after the install"
    finally:
        if had_one:
            backup.replace(POLICY_RC_D)
        else:
            POLICY_RC_D.unlink(missing_ok=True)


def _default_instance_pids() -> dict[str, int | None]:
    return {
        "postfix": _pid_from_file(Path("/var/spool/postfix/pid/master.pid"), "master"),
        "dovecot": _pid_from_file(Path("/run/dovecot/master.pid"), "dovecot"),
    }


def ensure_dev_null() -> None:
    """/dev/null must be the null device. On this kind of sandbox it was once found replaced by a
    root-only regular file, after which every daemon that opens it fails; put the device back."""
    info = os.stat("/dev/null")
    if stat.S_ISCHR(info.st_mode) and info.st_mode & 0o666 == 0o666:
        return
    if os.geteuid() != 0:
        raise StackError("/dev/null is not the null device (ask root to recreate it: mknod -m 666 /dev/null c 1 3)")
    os.unlink("/dev/null")
    os.mknod("/dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.chmod("/dev/null", 0o666)  # noqa: S103 - the null device is world-writable by definition
    print("warning: /dev/null was not the null device; recreated it", file=sys.stderr)


def install_packages(log: bool = True) -> list[str]:
    """Install the missing Debian packages (root only); return what was installed.

    Not root and something missing: StackError naming the missing packages.
    """
    missing = missing_packages()
    if not missing:
        ensure_dev_null()
        return []
    if os.geteuid() != 0:
        raise StackError(
            "the mail stack needs these Debian packages, which are not installed: "
            + " ".join(missing)
            + f"\ninstall them as root: apt-get install {' '.join(PACKAGES)}"
        )
    if shutil.which("apt-get") is None:
        raise StackError(f"missing Debian packages {' '.join(missing)} and no apt-get on this machine")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    running_before = _default_instance_pids()
    t0 = time.monotonic()
    _run(["apt-get", "update", "-qq"], "apt-get update", timeout=600)
    # Refuse to let apt remove anything (installing postfix would replace another MTA, e.g. exim4).
    simulation = _run(["apt-get", "install", "-s", *missing], "apt-get install -s", timeout=300)
    removals = [line.split()[1] for line in simulation.splitlines() if line.startswith("Remv ")]
    if removals and os.environ.get(ENV_PREFIX + "ALLOW_REMOVALS") != "1":
        raise StackError(
            f"installing {' '.join(missing)} would remove {' '.join(removals)}; "
            f"set {ENV_PREFIX}ALLOW_REMOVALS=1 to allow it"
        )
    with _daemons_forbidden() as how:
        proc = subprocess.run(  # noqa: S603
            ["apt-get", "install", "-y", "-q", "-o", "Dpkg::Options::=--force-confold", *missing],  # noqa: S607
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
    if proc.returncode != 0:
        raise StackError(f"apt-get install {' '.join(missing)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}"
                         f"{proc.stderr[-3000:]}")
    ensure_dev_null()
    # Belt and braces: a default-instance daemon the install started anyway is stopped again.
    stopped = []
    for name, pid in _default_instance_pids().items():
        if pid is not None and running_before[name] is None:
            os.kill(pid, signal.SIGTERM)
            stopped.append(f"{name} (pid {pid})")
    if log:
        print(f"installed {' '.join(missing)} in {time.monotonic() - t0:.1f} s; daemons kept from starting by {how}")
        if stopped:
            print("stopped the packages' own daemons that started anyway: " + ", ".join(stopped))
    return missing


# ----------------------------------------------------------------------------- configuration


def _postfix_map(config: StackConfig, name: str) -> str:
    return f"proxy:sqlite:{config.postfix_maps_dir / (name + '.cf')}"


def postfix_main_cf(config: StackConfig) -> str:
    domain = config.hostname.split(".", 1)[1] if "." in config.hostname else config.hostname
    settings = {
        "compatibility_level": "3.6",
        "queue_directory": config.postfix_queue,
        "data_directory": config.postfix_data,
        "maillog_file_prefixes": config.log_dir,
        "maillog_file": config.postfix_log,
        "myhostname": config.hostname,
        "mydomain": domain,
        "myorigin": "$myhostname",
        "mydestination": "",
        "inet_interfaces": HOST,
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.0/8",
        "local_recipient_maps": "",
        "alias_maps": "",
        "alias_database": "",
        "biff": "no",
        "append_dot_mydomain": "no",
        "readme_directory": "no",
        "html_directory": "no",
        "recipient_delimiter": "+",
        "smtpd_banner": "$myhostname ESMTP",
        "smtputf8_enable": "no",
        # Relaying is for loopback clients (Dovecot's Sieve replies, mlmmj) and logged-in users;
        # every non-local recipient ends in the sink anyway.
        "smtpd_relay_restrictions": "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
        # A domain handed over to another host is deferred at RCPT TO (450, mailhost.migrate); a
        # disabled mailbox is refused there (550); Dovecot's quota-status refuses an over-quota
        # recipient there too (552 5.2.2).
        "smtpd_recipient_restrictions": (
            f"check_recipient_access {_postfix_map(config, 'moving')}, "
            f"check_recipient_access {_postfix_map(config, 'disabled')}, "
            f"check_policy_service inet:{HOST}:{config.quota_policy_port}"
        ),
        "smtpd_error_sleep_time": "0",
        # no reverse lookups of 127.x.y.z clients: nothing asks a resolver
        "smtpd_peername_lookup": "no",
        # Virtual domains: every lookup from the SQLite maps database, through proxymap.
        "virtual_mailbox_domains": _postfix_map(config, "vdomains"),
        "virtual_mailbox_maps": _postfix_map(config, "vmailbox"),
        "virtual_alias_maps": _postfix_map(config, "valiases"),
        "transport_maps": _postfix_map(config, "transport"),
        "smtpd_sender_login_maps": _postfix_map(config, "senders"),
        "virtual_transport": f"lmtp:unix:{config.lmtp_socket}",
        # Nothing leaves the machine: every other destination is the sink pipe.
        "default_transport": "sink",
        "relay_transport": "sink",
        "sink_destination_recipient_limit": "1",
        "mlmmj_destination_recipient_limit": "1",
        # SASL (submission only) through Dovecot's auth socket.
        "smtpd_sasl_type": "dovecot",
        "smtpd_sasl_path": config.auth_socket,
        "smtpd_sasl_auth_enable": "no",
        "disable_dns_lookups": "yes",
        "smtp_host_lookup": "native",
        "lmtp_host_lookup": "native",
        # Short queue and backoff times for tests.
        "queue_run_delay": "1s",
        "minimal_backoff_time": "1s",
        "maximal_backoff_time": "5s",
        "maximal_queue_lifetime": "1h",
        "bounce_queue_lifetime": "1h",
        "delay_warning_time": "0h",
    }
    lines = [f"# Generated by mailhost.stack for {config.root}: rewritten at every `up`."]
    lines += [f"{key} = {value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def postfix_master_cf(config: StackConfig) -> str:
    # service type private unpriv chroot wakeup maxproc command
    services = [
        (f"{HOST}:{config.smtp_port}", "inet", "n", "-", "n", "-", "-", "smtpd"),
        (f"{HOST}:{config.submission_port}", "inet", "n", "-", "n", "-", "-", "smtpd"),
        ("pickup", "unix", "n", "-", "n", "60", "1", "pickup"),
        ("cleanup", "unix", "n", "-", "n", "-", "0", "cleanup"),
        ("qmgr", "unix", "n", "-", "n", "300", "1", "qmgr"),
        ("rewrite", "unix", "-", "-", "n", "-", "-", "trivial-rewrite"),
        ("bounce", "unix", "-", "-", "n", "-", "0", "bounce"),
        ("defer", "unix", "-", "-", "n", "-", "0", "bounce"),
        ("trace", "unix", "-", "-", "n", "-", "0", "bounce"),
        ("verify", "unix", "-", "-", "n", "-", "1", "verify"),
        ("flush", "unix", "n", "-", "n", "1000?", "0", "flush"),
        ("proxymap", "unix", "-", "-", "n", "-", "-", "proxymap"),
        ("proxywrite", "unix", "-", "-", "n", "-", "1", "proxymap"),
        ("smtp", "unix", "-", "-", "n", "-", "-", "smtp"),
        ("relay", "unix", "-", "-", "n", "-", "-", "smtp"),
        ("showq", "unix", "n", "-", "n", "-", "-", "showq"),
        ("error", "unix", "-", "-", "n", "-", "-", "error"),
        ("retry", "unix", "-", "-", "n", "-", "-", "error"),
        ("discard", "unix", "-", "-", "n", "-", "-", "discard"),
        ("lmtp", "unix", "-", "-", "n", "-", "-", "lmtp"),
        ("anvil", "unix", "-", "-", "n", "-", "1", "anvil"),
        ("scache", "unix", "-", "-", "n", "-", "1", "scache"),
        ("postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd"),
        ("mlmmj", "unix", "-", "n", "n", "-", "-", "pipe"),
        ("sink", "unix", "-", "n", "n", "-", "-", "pipe"),
    ]
    options = {
        f"{HOST}:{config.submission_port}": [
            "-o syslog_name=postfix/submission",
            "-o smtpd_sasl_auth_enable=yes",
            "-o smtpd_client_restrictions=permit_sasl_authenticated,reject",
            "-o smtpd_sender_restrictions=reject_sender_login_mismatch",
            "-o smtpd_relay_restrictions=permit_sasl_authenticated,reject",
        ],
        # Lists: transport "mlmmj:<domain>/<list>", the list directory is <mlmmj_root>/<domain>/<list>.
        "mlmmj": [f"flags=ORhu user=list argv={MLMMJ_RECEIVE} -F -L {config.mlmmj_root}/${{nexthop}}"],
        # Outbound mail: one file per message and recipient under <sink_root>/<recipient>/.
        "sink": [f"flags=DOR null_sender= user=mail argv={config.sink_script} ${{recipient}}"],
    }
    lines = [
        f"# Generated by mailhost.stack for {config.root}: rewritten at every `up`.",
        "# service type  private unpriv  chroot  wakeup  maxproc command + args",
    ]
    for service in services:
        name, kind, *columns = service
        lines.append(f"{name:<22} {kind:<10} " + " ".join(f"{c:<6}" for c in columns).rstrip())
        lines += [f"  {option}" for option in options.get(name, [])]
    return "\n".join(lines) + "\n"


def postfix_map_cf(config: StackConfig, query: str) -> str:
    return f"# Generated by mailhost.stack (query from mailhost.maps)\ndbpath = {config.maps_db}\nquery = {query}\n"


def sink_script(config: StackConfig) -> str:
    return f'''#!{SYSTEM_PYTHON} -I
"""Postfix pipe(8) "sink" (runs as user mail): store one outbound message for recipient argv[1]
as a file under {config.sink_root}/<recipient>/ (written aside, then renamed: never half seen)."""
import os, re, sys, time

SINK = {str(config.sink_root)!r}
try:
    name = re.sub({SINK_UNSAFE!r}, "_", sys.argv[1].strip().lower()) or "_"
    folder = os.path.join(SINK, name)
    os.makedirs(folder, mode=0o755, exist_ok=True)
    base = "%d.%d.eml" % (time.time_ns(), os.getpid())
    tmp = os.path.join(SINK, ".tmp." + base)
    with open(tmp, "wb") as fh:
        fh.write(sys.stdin.buffer.read())
    os.chmod(tmp, 0o644)
    os.rename(tmp, os.path.join(folder, base))
except Exception as exc:  # temporary failure: Postfix keeps the message and retries
    print("sink: %s" % exc, file=sys.stderr)
    sys.exit(75)
'''


def dovecot_conf(config: StackConfig) -> str:
    domain = config.hostname.split(".", 1)[1] if "." in config.hostname else config.hostname
    mail_uid = _uid("mail")
    return f"""# Generated by mailhost.stack for {config.root}: rewritten at every `up`.
# Standalone Dovecot: POP3, IMAP, LMTP (for Postfix), auth socket (Postfix SASL), quota, Sieve.
instance_name = mailstack
base_dir = {config.dovecot_run}
state_dir = {config.dovecot_state}
log_path = {config.dovecot_log}
protocols = imap pop3 lmtp
listen = {HOST}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# Tests fail logins on purpose: no delay per failure (the per-IP penalty of anvil stays).
auth_failure_delay = 0
# No auth cache: password, quota and Sieve changes in the maps database apply at once.
auth_cache_size = 0
hostname = {config.hostname}
postmaster_address = postmaster@{domain}
recipient_delimiter = +
# Mail lives in the user's home (from the userdb), files owned by user mail.
first_valid_uid = {mail_uid}
last_valid_uid = {mail_uid}
mail_location = maildir:~/Maildir
mail_plugins = $mail_plugins quota
# Sieve replies and redirects go back through this stack's Postfix.
submission_host = {HOST}:{config.smtp_port}
# doveadm server: another host's `doveadm sync -u USER tcp:{HOST}:{config.doveadm_port}` copies a
# mailbox here when its domain moves (mailhost.migrate); the password is read from its file.
doveadm_port = {config.doveadm_port}
doveadm_password = <{config.doveadm_password_file}

passdb {{
  driver = sql
  args = {config.dovecot_sql_conf}
}}
userdb {{
  driver = sql
  args = {config.dovecot_sql_conf}
}}

service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {config.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {HOST}
    port = {config.pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0600
    user = postfix
    group = postfix
  }}
}}
service auth {{
  unix_listener auth-postfix {{
    mode = 0600
    user = postfix
    group = postfix
  }}
}}
service doveadm {{
  inet_listener {{
    address = {HOST}
    port = {config.doveadm_port}
  }}
}}
service quota-status {{
  executable = quota-status -p postfix
  inet_listener {{
    address = {HOST}
    port = {config.quota_policy_port}
  }}
  client_limit = 1
}}
protocol lmtp {{
  mail_plugins = $mail_plugins sieve
}}
protocol imap {{
  mail_plugins = $mail_plugins imap_quota
}}
plugin {{
  # quota_rule comes from the userdb ('*:bytes=N', 0 = unlimited)
  quota = count:User quota
  quota_vsizes = yes
  quota_grace = 0
  quota_status_success = DUNNO
  quota_status_nouser = DUNNO
  quota_status_overquota = "552 5.2.2 Mailbox is full"
  # the userdb field 'sieve' (absolute path of the active script) overrides this; NULL = none
  sieve_extensions = +vacation-seconds
  sieve_vacation_min_period = 0
}}
"""


def dovecot_sql_conf(config: StackConfig) -> str:
    return (
        "# Generated by mailhost.stack (queries from mailhost.maps)\n"
        "driver = sqlite\n"
        f"connect = {config.maps_db}\n"
        "default_pass_scheme = ARGON2ID\n"
        f"password_query = {DOVECOT_AUTH_QUERY}\n"
        f"user_query = {DOVECOT_USER_QUERY}\n"
        f"iterate_query = {DOVECOT_ITERATE_QUERY}\n"
    )


def doveadm_password(config: StackConfig) -> str:
    """MAILSTACK_DOVEADM_PASSWORD, else the one already under the root, else a new random one."""
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


def write_layout(config: StackConfig) -> None:
    """Create the directories, the maps database and every configuration file (root only)."""
    for parent in reversed(config.root.parents):
        if not parent.exists():
            parent.mkdir(mode=0o755)
    config.root.mkdir(mode=0o755, exist_ok=True)
    config.root.chmod(0o755)
    _check_traversable(config.root)

    _mkdir(config.log_dir, 0o755)
    _mkdir(config.bin_dir, 0o755)
    # maps database: Postfix daemons drop supplementary groups, so group postfix must write the
    # folder (WAL -wal/-shm files); Dovecot's auth workers run as root.
    _mkdir(config.maps_db.parent, 0o2770, "root", "postfix")
    create(config.maps_db)
    with contextlib.closing(connect(config.maps_db)) as db:
        migrate.create_schema(db)
    os.chown(config.maps_db, 0, _gid("postfix"))
    config.maps_db.chmod(0o660)
    for extra in ("-wal", "-shm"):
        side = config.maps_db.with_name(config.maps_db.name + extra)
        if side.exists():
            os.chown(side, 0, _gid("postfix"))
            side.chmod(0o660)
    _mkdir(config.vmail_root, 0o750, "mail", "mail")
    _mkdir(config.mlmmj_root, 0o755, "list", "list")
    _mkdir(config.sink_root, 0o755, "mail", "mail")

    # Postfix
    _mkdir(config.postfix_dir.parent, 0o755)
    _mkdir(config.postfix_dir, 0o755)
    _mkdir(config.postfix_queue, 0o755)
    _mkdir(config.postfix_data, 0o700, "postfix", "postfix")
    _write(config.postfix_dir / "main.cf", postfix_main_cf(config))
    _write(config.postfix_dir / "master.cf", postfix_master_cf(config))
    _mkdir(config.postfix_maps_dir, 0o750, "root", "postfix")
    for name, query in {**POSTFIX_QUERIES, "moving": migrate.POSTFIX_QUERY}.items():
        _write(config.postfix_maps_dir / f"{name}.cf", postfix_map_cf(config, query), 0o640, "root", "postfix")
    _write(config.sink_script, sink_script(config), 0o755)

    # Dovecot
    _mkdir(config.dovecot_dir, 0o755)
    _mkdir(config.dovecot_run, 0o755)
    _mkdir(config.dovecot_state, 0o750)
    _write(config.dovecot_conf, dovecot_conf(config))
    _write(config.dovecot_sql_conf, dovecot_sql_conf(config), 0o640, "root", "dovecot")
    _write(config.doveadm_password_file, doveadm_password(config), 0o600)

    _write(config.state_file, json.dumps(dataclasses.asdict(config), default=str, indent=2) + "\n")


# ----------------------------------------------------------------------------- up / down / status


def _wait(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


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
    check_ports_free(config)
    write_layout(config)

    log = config.log_dir
    try:
        doveconf = _run([DOVECONF, "-c", str(config.dovecot_conf), "-n"], "Dovecot configuration")
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
                + _tail_text(config.dovecot_stderr, config.dovecot_log)
            )
        _run_postfix(config, "check")
        _run_postfix(config, "start")

        sockets = [config.lmtp_socket, config.auth_socket]
        ready = _wait(
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
                + _tail_text(config.postfix_log, config.dovecot_log, config.dovecot_stderr)
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
    masters = {"postfix": postfix_master_pid(config), "dovecot": dovecot_master_pid(config)}
    pids = [pid for pid in masters.values() if pid is not None]
    if not pids:
        return
    procs = _descendants(pids)
    if masters["postfix"] is not None:
        try:
            _run_postfix(config, "stop", timeout=30)
        except StackError:
            # e.g. a broken main.cf: the master still stops on SIGTERM
            with contextlib.suppress(ProcessLookupError):
                os.kill(masters["postfix"], signal.SIGTERM)
    if masters["dovecot"] is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(masters["dovecot"], signal.SIGTERM)
    if not _wait(lambda: not _alive(procs), STOP_TIMEOUT):
        left = _alive(procs)
        for pid, _start in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if not _wait(lambda: not _alive(procs), 5):
            raise StackError(f"processes of the mail stack under {config.root} did not stop: {sorted(_alive(procs))}")
        print(
            f"warning: killed {len(left)} process(es) of the stack that ignored SIGTERM for {STOP_TIMEOUT:.0f} s",
            file=sys.stderr,
        )
    # The masters daemonized, so init reaps them and their children: give it a moment, so that
    # no zombie named dovecot or master is left for `pgrep` to show (harmless if one is).
    _wait(lambda: not _unreaped(procs), REAP_TIMEOUT, interval=0.1)


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
    _run_postfix(config, "reload")


# ----------------------------------------------------------------------------- CLI


def _config_for(root: Path, command: str) -> StackConfig:
    """`up` takes ports from the environment; the others use what `up` recorded for that root."""
    if command != "up":
        try:
            saved = json.loads((root / "stack.json").read_text())
        except (OSError, ValueError):
            saved = None
        if saved is not None:
            saved["root"] = Path(saved["root"])
            fields = {f.name for f in dataclasses.fields(StackConfig)}
            return StackConfig(**{k: v for k, v in saved.items() if k in fields})
    return StackConfig.from_env(root)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mailhost.stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["install", "up", "down", "status"])
    parser.add_argument("--root", type=Path, help="absolute directory of the stack (not needed by install)")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            installed = install_packages()
            if not installed:
                print("all packages present: " + " ".join(PACKAGES))
            return 0
        if args.root is None:
            parser.error(f"{args.command} needs --root ABS_DIR")
        config = _config_for(args.root, args.command)
        if args.command == "up":
            stack = up(config)
            print(f"mail stack up in {stack.startup_seconds:.2f} s (postfix {stack.postfix_pid}, "
                  f"dovecot {stack.dovecot_pid})")
            print("\n".join(status(config).lines(config)))
            print(f"maps db: {config.maps_db}\nlogs: {config.log_dir}\nsink: {config.sink_root}")
        elif args.command == "down":
            t0 = time.monotonic()
            down(config)
            print(f"mail stack of {config.root} stopped ({time.monotonic() - t0:.2f} s)")
        else:
            st = status(config)
            print("\n".join(st.lines(config)))
            return 0 if st.running else 3
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # e.g. `status | head -1`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
