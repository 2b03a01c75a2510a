"""A real Postfix + Dovecot (POP3, IMAP, LMTP, Sieve, quota) + mlmmj mail stack on 127.0.0.1,
everything under one root directory, for the end-to-end tests and for developers; and the
configuration of a real mail host from the same templates.

    python -m mailhost.stack install                 # apt-get the Debian packages (root) if missing
    python -m mailhost.stack up     --root /abs/dir  # write the configs, start both daemons, wait
    python -m mailhost.stack status --root /abs/dir
    python -m mailhost.stack down   --root /abs/dir
    python -m mailhost.stack configure --root /srv/mailhost --hostname mx1.example.net \\
        --tls-cert CERT --tls-key KEY [--postfix-dir /etc/postfix] [--dovecot-dir /etc/dovecot] \\
        [--dry-run] [--force]                        # a real host's files; starts nothing

Every lookup comes from one SQLite file (`StackConfig.maps_db`, schema and queries in
`mailhost.maps`) that Postfix reads through `proxy:sqlite:` maps and Dovecot through its sql
driver: mailbox, alias and password changes are live; a new domain or transport needs
`postfix_reload()`. In the test stack nothing leaves the machine: every non-local recipient goes
to a pipe that stores the message under `sink_root/<recipient>/`.

Choices:
- `up` on a root whose stack is already running stops that stack first, then starts it again
  with freshly written configuration (data is kept: maps database, mail, lists, sink, queue).
- `down` stops only the daemons of that root, found by their own pid files, and waits until
  they and every process they had started are gone.
- `install` keeps the packages' own daemons from starting with a policy-rc.d that forbids it
  (the machine's own one when it already forbids, else a temporary one, the original restored),
  and stops a default-instance daemon that started anyway during the install.

The package, by job: `config` (StackConfig, HostConfig, paths and ports), `processes` (commands,
pids, ports and their holders, waits), `install` (apt, policy-rc.d, /dev/null guard), `templates`
(Postfix main.cf, master.cf and map files, Dovecot, the sink), `lifecycle` (write_layout, up,
down, status, reload), `production` (configure a real host), `cli`. Every public name is
importable from `mailhost.stack`.

Plain Python 3.11 standard library: no Django.
"""

from mailhost.stack.cli import main
from mailhost.stack.config import (
    DOVEADM_PASSWORD_ENV,
    DOVECONF,
    DOVECOT,
    ENV_PREFIX,
    HOST,
    MAX_BASE_DIR,
    MLMMJ_RECEIVE,
    PORT_FIELDS,
    POSTFIX,
    SINK_UNSAFE,
    SYSTEM_PYTHON,
    HostConfig,
    MailConfig,
    StackConfig,
    StackError,
    sink_dirname,
)
from mailhost.stack.install import PACKAGES, POLICY_RC_D, ensure_dev_null, install_packages, missing_packages
from mailhost.stack.lifecycle import (
    REAP_TIMEOUT,
    START_TIMEOUT,
    STOP_TIMEOUT,
    Stack,
    Status,
    doveadm_password,
    down,
    postfix_reload,
    status,
    up,
    write_layout,
)
from mailhost.stack.processes import check_ports_free, dovecot_master_pid, port_answers, postfix_master_pid, tail
from mailhost.stack.production import configure, production_files
from mailhost.stack.templates import (
    dovecot_conf,
    dovecot_sql_conf,
    postfix_main_cf,
    postfix_map_cf,
    postfix_master_cf,
    sink_script,
)

__all__ = [
    "DOVEADM_PASSWORD_ENV", "DOVECONF", "DOVECOT", "ENV_PREFIX", "HOST", "MAX_BASE_DIR", "MLMMJ_RECEIVE",
    "PACKAGES", "POLICY_RC_D", "PORT_FIELDS", "POSTFIX", "REAP_TIMEOUT", "SINK_UNSAFE", "START_TIMEOUT",
    "STOP_TIMEOUT", "SYSTEM_PYTHON", "HostConfig", "MailConfig", "Stack", "StackConfig", "StackError",
    "Status", "check_ports_free", "configure", "doveadm_password", "dovecot_conf", "dovecot_master_pid",
    "dovecot_sql_conf", "down", "ensure_dev_null", "install_packages", "main", "missing_packages",
    "port_answers", "postfix_main_cf", "postfix_map_cf", "postfix_master_cf", "postfix_master_pid",
    "postfix_reload", "production_files", "sink_dirname", "sink_script", "status", "tail", "up",
    "write_layout",
]
