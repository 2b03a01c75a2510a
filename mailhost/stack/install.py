"""Installing the stack's Debian packages without letting their own daemons start, and the
/dev/null guard."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from mailhost.stack.config import ENV_PREFIX, StackError
from mailhost.stack.processes import pid_from_file, run

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
    "rspamd",  # Postfix's milter: DKIM signing (mailhost.stack.rspamd)
)
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


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
        for service in ("postfix", "dovecot", "rspamd"):
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
        "postfix": pid_from_file(Path("/var/spool/postfix/pid/master.pid"), "master"),
        "dovecot": pid_from_file(Path("/run/dovecot/master.pid"), "dovecot"),
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
    run(["apt-get", "update", "-qq"], "apt-get update", timeout=600)
    # Refuse to let apt remove anything (installing postfix would replace another MTA, e.g. exim4).
    simulation = run(["apt-get", "install", "-s", *missing], "apt-get install -s", timeout=300)
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

