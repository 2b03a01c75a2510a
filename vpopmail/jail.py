"""Paths of the old server read inside the copy of its tree, never outside it.

The files name absolute paths of the old server (`/home/vpopmail/domains/...`) and ezmlm's
symlinks are absolute too: each is taken as a path under ROOT. Every symlink on the way is
followed by hand (an absolute target is again under ROOT, a relative one from its folder); a path
that would climb above ROOT ("..", a relative link) is refused with `Escape`. What `resolve`
returns holds no symlink, so opening it cannot lead out of ROOT (a hostile tree must not make the
importer read the importing machine's /etc/shadow). Files are opened without following a last
link and read only when they are regular files (a FIFO would block the run), up to a size.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_LINKS = 40  # as the kernel's ELOOP
MAX_FILE = 4 * 1024 * 1024  # a .qmail, a vpasswd of 40,000 lines, a message text


class Escape(Exception):
    """The path leaves ROOT, loops, or cannot be followed."""


class Unreadable(Exception):
    """The file is not a regular file, is too large, or cannot be read; the message says which."""


class Jail:
    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self._dirs: dict[tuple[str, ...], tuple[str, ...]] = {}

    def resolve(self, path: str | Path, base: Path | None = None) -> Path:
        """`path` (absolute: of the old server; relative: from `base`, a resolved folder under
        ROOT) as a path under ROOT with no symlink in it. Raises `Escape`."""
        text = str(path)
        if text.startswith("/"):
            start: tuple[str, ...] = ()
        elif base is not None:
            start = self.parts(base)
        else:
            raise Escape("a relative path with no folder to start from")
        names = [name for name in text.split("/") if name not in ("", ".")]
        if not names:
            return self.root.joinpath(*start)
        parent_key = (*start, "\0", *names[:-1])
        parent = self._dirs.get(parent_key)
        if parent is None:
            parent = self._walk(list(start), names[:-1])
            self._dirs[parent_key] = parent
        return self.root.joinpath(*self._walk(list(parent), names[-1:]))

    def parts(self, real: Path) -> tuple[str, ...]:
        """A resolved path's names under ROOT."""
        try:
            return Path(real).relative_to(self.root).parts
        except ValueError:
            raise Escape(f"{real} is not under {self.root}") from None

    def old_path(self, real: Path) -> str:
        """A resolved path as the old server wrote it."""
        return "/" + "/".join(self.parts(real))

    def where(self, real: Path | None, line: int | None = None) -> str:
        """A path for a report: relative to ROOT, ":LINE" when given."""
        if real is None:
            return ""
        try:
            shown = "/".join(Path(real).relative_to(self.root).parts) or "."
        except ValueError:
            shown = str(real)
        return f"{shown}:{line}" if line else shown

    def _walk(self, current: list[str], names: list[str]) -> tuple[str, ...]:
        queue = list(reversed(names))
        links = 0
        while queue:
            name = queue.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if not current:
                    raise Escape("the path climbs above the copy's root")
                current.pop()
                continue
            candidate = os.path.join(self.root, *current, name)
            try:
                mode = os.lstat(candidate).st_mode
            except FileNotFoundError:
                current.append(name)  # absent: what follows cannot be a link either
                continue
            except OSError as error:
                raise Escape(f"{name}: {error.strerror}") from None
            if not stat.S_ISLNK(mode):
                current.append(name)
                continue
            links += 1
            if links > MAX_LINKS:
                raise Escape("too many symbolic links (a loop?)")
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = []
            queue.extend(reversed([part for part in target.split("/") if part not in ("", ".")]))
        return tuple(current)

    def read(self, real: Path, limit: int = MAX_FILE) -> bytes:
        """The bytes of a resolved regular file. Raises `Unreadable`."""
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise Unreadable("missing") from None
        except OSError as error:
            raise Unreadable(error.strerror or str(error)) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise Unreadable("not a regular file")
            if info.st_size > limit:
                raise Unreadable(f"larger than {limit} bytes")
            chunks = []
            size = 0
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    raise Unreadable(f"larger than {limit} bytes")
            return b"".join(chunks)
        except OSError as error:
            raise Unreadable(error.strerror or str(error)) from None
        finally:
            os.close(fd)

    def read_path(self, path: str | Path, base: Path | None = None, limit: int = MAX_FILE) -> tuple[Path, bytes]:
        """Resolve then read: (the resolved path, its bytes). Raises `Escape` or `Unreadable`."""
        real = self.resolve(path, base)
        return real, self.read(real, limit)

    @staticmethod
    def is_dir(real: Path) -> bool:
        try:
            return stat.S_ISDIR(os.lstat(real).st_mode)
        except OSError:
            return False

    @staticmethod
    def exists(real: Path) -> bool:
        try:
            os.lstat(real)
        except OSError:
            return False
        return True
