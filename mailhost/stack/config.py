"""Where a mail stack lives and what it listens on: the test stack (`StackConfig`, everything
under one root on 127.0.0.1) and a production mail host (`HostConfig`, the system's Postfix and
Dovecot). The templates (`mailhost.stack.templates`) read both through the same attribute names.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from mailhost.layout import RootLayout

HOST = "127.0.0.1"

POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"
DOVECONF = "/usr/bin/doveconf"
MLMMJ_RECEIVE = "/usr/bin/mlmmj-receive"
SYSTEM_PYTHON = "/usr/bin/python3"  # runs the sink as user mail: stdlib only

# The sink stores a message for recipient R under sink_root/<sink_dirname(R)>/.
SINK_UNSAFE = r"[^a-z0-9@._+-]"

# Environment variables that override StackConfig fields in the CLI.
ENV_PREFIX = "MAILSTACK_"
PORT_FIELDS = ("smtp_port", "submission_port", "pop3_port", "imap_port", "quota_policy_port", "doveadm_port",
               "rspamd_port",
               "list_smtp_port")
# The doveadm password (shared by every host a mailbox may move between): this variable, else
# the file already under the root, else a new random one. Never in the repository.
DOVEADM_PASSWORD_ENV = ENV_PREFIX + "DOVEADM_PASSWORD"

# Unix socket paths (sun_path) hold at most 107 bytes; Dovecot adds up to ~30 below its base_dir.
MAX_BASE_DIR = 75


class StackError(RuntimeError):
    """The mail stack could not be installed, started, reloaded or stopped; the message says why."""


class MailPaths:
    """Paths both kinds of config derive the same way from their postfix_dir, dovecot_dir and
    dovecot_run; and the check that their ports differ."""

    # Each config gives these three: StackConfig derives them from its root (properties), HostConfig
    # has them as fields (the system's paths by default).
    @property
    def postfix_dir(self) -> Path:
        raise NotImplementedError

    @property
    def dovecot_dir(self) -> Path:
        raise NotImplementedError

    @property
    def dovecot_run(self) -> Path:
        raise NotImplementedError

    @property
    def postfix_maps_dir(self) -> Path:
        return self.postfix_dir / "sqlite"

    @property
    def list_pipe_script(self) -> Path:
        """A copy of `mailhost.list_pipe` beside Postfix's config, which the list pipes run as user
        list: the agent's own files may sit where that user cannot read (a checkout under /root)."""
        return self.postfix_dir / "mailpanel-list-pipe.py"

    @property
    def quota_warning_script(self) -> Path:
        """A copy of `mailhost.quota_warning` beside Dovecot's config, which Dovecot's quota-warning
        service runs as user mail (who may not read the agent's own files, like the list pipes)."""
        return self.dovecot_dir / "mailpanel-quota-warning.py"

    @property
    def dovecot_conf(self) -> Path:
        return self.dovecot_dir / "dovecot.conf"

    @property
    def dovecot_sql_conf(self) -> Path:
        return self.dovecot_dir / "dovecot-sql.conf.ext"

    @property
    def doveadm_password_file(self) -> Path:
        """The doveadm server's password (root only): the same on every host mail moves between."""
        return self.dovecot_dir / "doveadm-password"

    @property
    def lmtp_socket(self) -> Path:
        return self.dovecot_run / "lmtp"

    @property
    def auth_socket(self) -> Path:
        return self.dovecot_run / "auth-postfix"

    def _check_ports_differ(self, ports: dict[str, int], what: str) -> None:
        if len(set(ports.values())) != len(ports):
            raise StackError(f"{what} ports must differ: {ports}")


@dataclass(frozen=True)
class StackConfig(MailPaths, RootLayout):
    """Where a stack lives and the 127.0.0.1 ports it listens on."""

    root: Path
    smtp_port: int = 2525
    submission_port: int = 2587
    pop3_port: int = 2110
    imap_port: int = 2143
    quota_policy_port: int = 12340
    doveadm_port: int = 12424  # doveadm server (dsync of mailboxes between hosts), password-protected
    list_smtp_port: int = 2526  # mlmmj's own smtpd (templates.LIST_SMTPD): XVERP, no per-recipient policy
    hostname: str = "mail.panel.test"
    rspamd_port: int = 2332  # rspamd's milter (mailhost.stack.rspamd): DKIM signing

    def __post_init__(self) -> None:
        root = Path(self.root)
        if not root.is_absolute():
            raise StackError(f"the stack root must be an absolute path, not {self.root}")
        object.__setattr__(self, "root", Path(os.path.normpath(root)))
        self._check_ports_differ(self.ports, "the stack's")
        if len(str(self.dovecot_run)) > MAX_BASE_DIR:
            raise StackError(
                f"{self.root} is too long: Dovecot's sockets under {self.dovecot_run} would exceed "
                "the 107-byte limit of a unix socket path; choose a shorter root"
            )

    @classmethod
    def from_env(cls, root: Path, env: dict[str, str] | None = None) -> StackConfig:
        """A config for `root` with ports and hostname from MAILSTACK_SMTP_PORT, ..._HOSTNAME."""
        env = dict(os.environ if env is None else env)
        ports: dict[str, int] = {}
        for name in PORT_FIELDS:
            value = env.get(ENV_PREFIX + name.upper())
            if value:
                try:
                    ports[name] = int(value)
                except ValueError:
                    raise StackError(f"{ENV_PREFIX}{name.upper()}={value!r} is not a port number") from None
        hostname = env.get(ENV_PREFIX + "HOSTNAME") or cls.hostname  # else the field's default
        return cls(root=root, hostname=hostname, **ports)

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
            "rspamd": self.rspamd_port,
            "list-smtp": self.list_smtp_port,
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
    def dovecot_run(self) -> Path:
        """Dovecot's base_dir: master.pid and the sockets (lmtp, auth-postfix)."""
        return self.dovecot_dir / "run"

    @property
    def dovecot_state(self) -> Path:
        return self.dovecot_dir / "state"

    @property
    def dovecot_pid_file(self) -> Path:
        return self.dovecot_run / "master.pid"

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


    # --- what the templates ask both kinds of config ---
    production: ClassVar[bool] = False

    @property
    def listen(self) -> str:
        """The address of the public listeners (SMTP, submission, POP3, IMAP, doveadm)."""
        return HOST


def sink_dirname(address: str) -> str:
    """The folder name under sink_root for an outbound recipient (same rule as the sink script)."""
    return re.sub(SINK_UNSAFE, "_", address.strip().lower()) or "_"


def system_uid(user: str) -> int:
    return pwd.getpwnam(user).pw_uid


def system_gid(group: str) -> int:
    return grp.getgrnam(group).gr_gid


@dataclass(frozen=True)
class HostConfig(MailPaths, RootLayout):
    """A production mail host: the system's Postfix and Dovecot, the agent's data under `root`.

    `root` is the agent's MAILHOST_ROOT (maps db at root/db/maps.sqlite, vmail/, mlmmj/);
    Postfix and Dovecot keep their system queue, state and sockets, and log to syslog.
    """

    root: Path
    hostname: str
    tls_cert: Path
    tls_key: Path
    postfix_dir: Path = Path("/etc/postfix")
    dovecot_dir: Path = Path("/etc/dovecot")
    listen: str = "*"  # address(es) of the public listeners, comma-separated; * = every IPv4 address
    relayhost: str = ""  # outbound relay, e.g. [smtp.example.net]:587; empty = direct delivery (MX)
    smtp_port: int = 25
    submission_port: int = 587
    pop3_port: int = 110
    imap_port: int = 143
    pop3s_port: int = 995
    imaps_port: int = 993
    quota_policy_port: int = 12340  # Dovecot's quota-status, asked by Postfix on 127.0.0.1 only
    doveadm_port: int = 12424  # doveadm server: other hosts copy a moving domain's mail here
    list_smtp_port: int = 10027  # mlmmj's own smtpd, on 127.0.0.1 only (templates.LIST_SMTPD)
    postfix_queue: Path = Path("/var/spool/postfix")
    postfix_data: Path = Path("/var/lib/postfix")
    dovecot_run: Path = Path("/run/dovecot")
    rspamd_dir: Path = Path("/etc/rspamd")  # Debian's rspamd: configure writes local.d/dkim_signing.conf
    rspamd_port: int = 11332  # its proxy worker, Debian's milter on localhost (mailhost.stack.rspamd)

    production: ClassVar[bool] = True

    def __post_init__(self) -> None:
        for name in ("root", "postfix_dir", "dovecot_dir", "tls_cert", "tls_key"):
            path = Path(getattr(self, name))
            if not path.is_absolute():
                raise StackError(f"--{name.replace('_', '-')} must be an absolute path, not {path}")
            object.__setattr__(self, name, Path(os.path.normpath(path)))
        if "." not in self.hostname or not re.fullmatch(r"[A-Za-z0-9.-]+", self.hostname):
            raise StackError(f"the hostname must be a fully qualified name, not {self.hostname!r}")
        if not re.fullmatch(r"[0-9A-Za-z.:*\[\], -]+", self.listen):
            raise StackError(f"invalid listen address(es): {self.listen!r}")
        self._check_ports_differ(self.ports, "the host's")

    @property
    def ports(self) -> dict[str, int]:
        return {
            "smtp": self.smtp_port,
            "submission": self.submission_port,
            "pop3": self.pop3_port,
            "imap": self.imap_port,
            "pop3s": self.pop3s_port,
            "imaps": self.imaps_port,
            "quota-status": self.quota_policy_port,
            "doveadm": self.doveadm_port,
            "rspamd": self.rspamd_port,
            "list-smtp": self.list_smtp_port,
        }


MailConfig = StackConfig | HostConfig
