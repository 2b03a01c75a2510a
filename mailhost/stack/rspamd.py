"""rspamd, Postfix's milter: it signs the hosted domains' outgoing mail with DKIM (the keys and
maps the agent writes: mailhost.dkim).

- The test stack runs Debian's rspamd with Debian's own configuration (/etc/rspamd/rspamd.conf)
  and its own LOCAL_CONFDIR, DBDIR, RUNDIR under the stack's root (`--var`): one worker, the
  rspamd_proxy in self-scan milter mode on 127.0.0.1:<rspamd_port>; the normal worker and the
  controller are off (nothing else listens); DNS asked of 127.0.0.1 only (nothing leaves the
  machine); the global spam actions set out of reach (each domain's come from the panel's
  settings map: mailhost.spam, read through rspamd.conf.override).
- A real host (`configure`) keeps Debian's rspamd and its workers (the proxy, a milter on
  127.0.0.1:11332, is Debian's default); `configure` writes local.d/dkim_signing.conf, and the
  operator restarts rspamd (it re-reads the maps every 30 s: a new key signs within that).

Postfix asks rspamd for every message (smtpd_milters: port 25, submission, the lists' port;
non_smtpd_milters: sendmail's, i.e. pickup); `milter_default_action = accept`: rspamd down
delays nothing and loses nothing, the mail leaves unsigned (templates.postfix_main_cf).
"""

from __future__ import annotations

import contextlib
import grp
import os
import signal
import subprocess
from pathlib import Path

from mailhost.stack.config import HOST, HostConfig, MailConfig, StackConfig, StackError
from mailhost.stack.processes import alive, descendants, pid_from_file, port_answers, tail_text, wait_until

RSPAMD = "/usr/bin/rspamd"
RSPAMD_USER = "_rspamd"  # Debian's
DEBIAN_CONF = Path("/etc/rspamd/rspamd.conf")
# rspamd compiles its regular expressions at its first start (15-20 s on 2 cores); later ones
# read its cache under DBDIR.
START_TIMEOUT = 120.0
HS_CACHE = Path("/var/lib/rspamd")  # Debian's DBDIR, the rspamd user's
STOP_TIMEOUT = 15.0


def group() -> str:
    """The group of the DKIM keys and maps: rspamd's, or root's where rspamd is not installed yet."""
    try:
        grp.getgrnam(RSPAMD_USER)
    except KeyError:
        return "root"
    return RSPAMD_USER


def conf_dir(config: MailConfig) -> Path:
    """rspamd's LOCAL_CONFDIR: local.d/ and override.d/ (the system's /etc/rspamd on a real host)."""
    return config.rspamd_dir if isinstance(config, HostConfig) else config.root / "rspamd"


def db_dir(config: StackConfig) -> Path:
    return conf_dir(config) / "db"


def run_dir(config: StackConfig) -> Path:
    return conf_dir(config) / "run"


def pid_file(config: StackConfig) -> Path:
    return run_dir(config) / "rspamd.pid"


def log_file(config: StackConfig) -> Path:
    return config.log_dir / "rspamd.log"


def milter(config: MailConfig) -> str:
    """Postfix's smtpd_milters value."""
    return f"inet:{HOST}:{config.rspamd_port}"


def dkim_signing_conf(config: MailConfig) -> str:
    """local.d/dkim_signing.conf: sign for the domains in the agent's maps, nothing else."""
    root = config.dkim_root
    return f"""# Written by mailhost.stack: rspamd signs the panel's domains with the keys the agent writes
# (mailhost.dkim): one selector and one key file per served domain and alias domain, read from
# these two maps (re-read when they change). A domain not in them is never signed.
enabled = true;
sign_authenticated = true;  # mail submitted by a mailbox (port {config.submission_port})
# Not "local" mail: what this host re-sends (Sieve's redirects, catch-alls to elsewhere, list
# posts) carries a From: an outsider wrote; signing it would vouch for a forged From: of a hosted
# domain (DMARC pass). So robots', vacation replies and list mail leave unsigned for now.
sign_local = false;
sign_inbound = false;
use_domain = "header";  # d= the From: domain...
use_esld = false;  # ...exactly (a subdomain hosted as its own domain has its own key)
allow_hdrfrom_mismatch = false;
allow_username_mismatch = true;  # Postfix already holds a mailbox to its own addresses
allow_envfrom_empty = true;  # vacation replies and bounces go out with an empty return path
try_fallback = false;
use_redis = false;
selector_map = "{root / 'selectors.map'}";
path_map = "{root / 'paths.map'}";
"""


def arc_conf(config: MailConfig) -> str:
    """local.d/arc.conf: mail that comes in for a hosted domain is ARC-sealed with that domain's
    key, so that when the host forwards it (a forward, a catch-all to elsewhere) the destination
    can trust the checks this host made (SPF fails there: the envelope is the original sender's;
    the author's DKIM signature survives, the body being untouched)."""
    root = config.dkim_root
    return f"""# Written by mailhost.stack: ARC seals (d= the recipient's domain, its DKIM key and selector),
# from the same maps as dkim_signing.conf. A domain not in them is never sealed.
sign_inbound = true;  # mail from elsewhere to a hosted domain (forwarded or not)
sign_local = true;  # the test stack's clients are all on 127.0.0.1 (a real host: Sieve's redirects)
sign_authenticated = false;
use_domain = "recipient";
use_domain_sign_inbound = "recipient";
use_domain_sign_local = "recipient";
use_esld = false;
allow_hdrfrom_mismatch = true;
allow_username_mismatch = true;
allow_envfrom_empty = true;
try_fallback = false;
use_redis = false;
selector_map = "{root / 'selectors.map'}";
path_map = "{root / 'paths.map'}";
"""


def spam_settings(config: MailConfig) -> str:
    """rspamd.conf.override: the settings module reads the agent's map of the domains' spam
    filtering (mailhost.spam), and reads it again when it changes (no restart)."""
    return ("# Written by mailhost.stack: each domain's spam filtering, as the agent writes it.\n"
            f'settings = "{config.spam_root / "settings.conf"}";\n')


def options_inc(config: StackConfig) -> str:
    """The test stack's local.d/options.inc: the maps re-read within 2 s (file maps are checked at
    a tenth of the interval; a real host keeps Debian's 5 min, so 30 s), no DNS beyond 127.0.0.1."""
    return ("# Written by mailhost.stack: file maps (the DKIM selectors and keys) checked every 2 s.\n"
            "map_watch_interval = 20s;\n"
            "# The test stack asks no DNS server beyond this machine.\n"
            'dns { nameserver = ["127.0.0.1:53"]; timeout = 0.2s; retransmits = 1; }\n'
            "# Its compiled expressions shared by every stack of this machine (the first start compiles\n"
            "# them: up to a minute on 2 busy cores; the next ones read them in a few seconds).\n"
            f'hs_cache_dir = "{HS_CACHE}/";\n')


# The global spam actions out of reach, on the test stack and a real host alike: each domain's
# come from the panel (mailhost.spam); a domain whose filtering is off, and mail to elsewhere, is
# never refused or marked by rspamd's stock thresholds.
ACTIONS_CONF = 'reject = 10000;\nadd_header = 10000;\ngreylist = 10000;\nsubject = "***SPAM*** %s";\n'


def stack_files(config: StackConfig) -> dict[Path, str]:
    """Every rspamd file of the test stack (under conf_dir)."""
    here = conf_dir(config)
    return {
        here / "local.d" / "dkim_signing.conf": dkim_signing_conf(config),
        here / "local.d" / "arc.conf": arc_conf(config),
        here / "local.d" / "options.inc": options_inc(config),
        here / "local.d" / "actions.conf": ACTIONS_CONF,
        here / "rspamd.conf.override": spam_settings(config),
        here / "override.d" / "worker-proxy.inc": (
            f'bind_socket = "{HOST}:{config.rspamd_port}";\n'
            "milter = yes;\ntimeout = 120s;\ncount = 1;\n"
            'upstream "local" { default = yes; self_scan = yes; }\n'
        ),
        here / "override.d" / "worker-normal.inc": "enabled = false;\n",
        here / "override.d" / "worker-controller.inc": "enabled = false;\n",
        here / "override.d" / "worker-fuzzy.inc": "enabled = false;\ncount = -1;\n",
        here / "override.d" / "logging.inc": (
            f'type = "file";\nfilename = "{log_file(config)}";\nlevel = "info";\n'
            'debug_modules = ["dkim_signing"];  # why a message was signed or not\n'
        ),
    }


def production_files(config: HostConfig) -> dict[Path, str]:
    here = conf_dir(config)
    return {
        here / "local.d" / "actions.conf": ACTIONS_CONF,
        here / "local.d" / "dkim_signing.conf": dkim_signing_conf(config),
        here / "local.d" / "arc.conf": arc_conf(config),
        here / "rspamd.conf.override": spam_settings(config),
    }


def master_pid(config: StackConfig) -> int | None:
    return pid_from_file(pid_file(config), "rspamd")


def command(config: StackConfig) -> list[str]:
    here = conf_dir(config)
    return [
        RSPAMD, "-c", str(DEBIAN_CONF), "-u", RSPAMD_USER, "-g", RSPAMD_USER,
        f"--var=LOCAL_CONFDIR={here}", f"--var=DBDIR={db_dir(config)}", f"--var=RUNDIR={run_dir(config)}",
        f"--var=LOGDIR={config.log_dir}",
    ]


def start(config: StackConfig) -> int:
    """Start the stack's rspamd (it daemonizes); return its master's pid once the milter answers."""
    err = config.log_dir / "rspamd-stderr.log"
    with err.open("ab") as out, open(os.devnull, "rb") as devnull:
        rc = subprocess.run(command(config), stdin=devnull, stdout=out, stderr=out, check=False).returncode  # noqa: S603
    if rc != 0:
        raise StackError(f"rspamd exited with {rc}" + tail_text(err, log_file(config)))
    if not wait_until(lambda: master_pid(config) is not None and port_answers(config.rspamd_port), START_TIMEOUT):
        raise StackError(f"rspamd's milter did not answer on {HOST}:{config.rspamd_port} within "
                         f"{START_TIMEOUT:.0f} s" + tail_text(err, log_file(config)))
    pid = master_pid(config)
    assert pid is not None  # noqa: S101 - waited for above
    return pid


def stop(config: StackConfig) -> None:
    """Stop this root's rspamd (only it); idempotent."""
    pid = master_pid(config)
    if pid is None:
        return
    procs = descendants([pid])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not wait_until(lambda: not alive(procs), STOP_TIMEOUT):
        for left, _start in alive(procs):
            with contextlib.suppress(ProcessLookupError):
                os.kill(left, signal.SIGKILL)
        wait_until(lambda: not alive(procs), 5)
