"""Files the agent writes for rspamd (DKIM keys and maps, the spam settings): each written
atomically, one writer at a time per folder.

rspamd notices a map changed by its modification time and size, so every write moves the time on
by a second at least: a rotation written within the same second is not missed.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def write(path: Path, data: bytes, *, mode: int, gid: int | None = None) -> None:
    """`data` into `path` atomically (a temporary file in the same folder, fsynced, renamed), with
    `mode`, and owner root:gid when `gid` is given."""
    try:
        before = int(path.stat().st_mtime)
    except FileNotFoundError:
        before = 0
    tmp = path.with_name(f".{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if gid is not None:
            os.chown(tmp, 0, gid)
        os.chmod(tmp, mode)
        if int(tmp.stat().st_mtime) <= before:
            os.utime(tmp, (before + 1, before + 1))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """One writer at a time in `folder` (an flock on its `.lock`)."""
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
