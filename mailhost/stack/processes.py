"""Processes of a stack: running commands (Postfix's own through a pseudo-terminal), pid files,
process trees, listening ports and who holds them, waiting for a condition."""

from __future__ import annotations

import os
import pty
import select
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mailhost.stack.config import HOST, POSTFIX, StackConfig, StackError


def run(cmd: Sequence[str], what: str, log: Path | None = None, timeout: float = 60) -> str:
    """Run a command (stdin closed), raise StackError with its output (and a log tail) on failure."""
    try:
        proc = subprocess.run(  # noqa: S603 - fixed programs, no shell
            list(cmd), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackError(f"{what}: {' '.join(cmd)} failed: {exc}{tail_text(log)}") from exc
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip()
        raise StackError(
            f"{what}: `{' '.join(cmd)}` exited with {proc.returncode}\n{output}{tail_text(log)}"
        )
    return proc.stdout + proc.stderr


def run_postfix(config: StackConfig, action: str, timeout: float = 60) -> str:
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
                raise StackError(f"`{' '.join(cmd)}` did not finish in {timeout:.0f} s{tail_text(config.postfix_log)}")
    finally:
        os.close(master)
    text = output.decode("utf-8", "replace").replace("\r\n", "\n").strip()
    if proc.returncode != 0:
        raise StackError(
            f"postfix {action}: `{' '.join(cmd)}` exited with {proc.returncode}\n{text}{tail_text(config.postfix_log)}"
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


def tail_text(*logs: Path | None) -> str:
    parts = []
    for log in logs:
        if log is not None and (text := tail(log)):
            parts.append(f"\n--- last lines of {log} ---\n{text}")
    return "".join(parts)



def port_answers(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False



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


def pid_from_file(path: Path, comm: str) -> int | None:
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
    return pid_from_file(config.postfix_pid_file, "master")


def dovecot_master_pid(config: StackConfig) -> int | None:
    return pid_from_file(config.dovecot_pid_file, "dovecot")


def descendants(pids: Sequence[int]) -> set[tuple[int, int]]:
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


def alive(procs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    return {(pid, start) for pid, start in procs if (stat := _proc_stat(pid)) is not None and stat[3] == start}


def unreaped(procs: set[tuple[int, int]]) -> set[tuple[int, int]]:
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



def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
