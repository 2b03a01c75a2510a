"""Where a mail host keeps its data under its root: one definition for the agent and the stack."""

from __future__ import annotations

from pathlib import Path


class RootLayout:
    """Paths under `root` (set by the class that mixes this in)."""

    root: Path

    @property
    def maps_db(self) -> Path:
        return self.root / "db" / "maps.sqlite"

    @property
    def vmail_root(self) -> Path:
        return self.root / "vmail"

    @property
    def mlmmj_root(self) -> Path:
        return self.root / "mlmmj"

    @property
    def archive_root(self) -> Path:
        return self.root / "archive"

    @property
    def dkim_root(self) -> Path:
        """The DKIM keys and rspamd's selector and path maps (mailhost.dkim)."""
        return self.root / "dkim"

    @property
    def spam_root(self) -> Path:
        """The domains' spam filtering: rspamd's settings map and the Junk rule (mailhost.spam)."""
        return self.root / "spam"
