"""DKIM on the mail host: the domains' private keys and the maps rspamd's dkim_signing reads.

Under the agent's root (`RootLayout.dkim_root`):

- `keys/<domain>.<selector>.key`: a domain's signing key (the document's `dkim`, format 6), as
  PKCS#8 PEM re-written from the parsed key (never the bytes received), mode 0640, owner root,
  group of the rspamd user (`_rspamd`): nobody else reads it. The folders are 0750 root:_rspamd.
- `selectors.map` and `paths.map`: "<domain> <selector>" and "<domain> <key file>", one line per
  served domain that has a key, and one per served alias domain of such a domain (its target's
  key, signed d=<alias>). rspamd's dkim_signing reads them (`selector_map`, `path_map`) and
  re-reads them when they change (its `map_watch_interval`); each is written whole to a temporary
  file and renamed over the old one, under one lock for the host, from the maps database's rows
  (so they never disagree with what the host serves) and the key files present.

Every value is checked before it is written: the selector is one DNS label (lower-case letters,
digits, hyphens: no ".", "/", ";", space or line break can reach a map or a path), the key must
parse as an RSA private key of 1024 to 8192 bits, the domain is the document's checked name.
"""

from __future__ import annotations

import grp
import os
import re
import sqlite3
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailhost import contract, mapfiles
from mailhost.layout import RootLayout
from mailhost.render import RenderError, domain_name

RSPAMD_GROUP = "_rspamd"  # Debian's rspamd user and group
SELECTOR_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
MIN_BITS, MAX_BITS = 1024, 8192
SELECTORS_MAP = "selectors.map"
PATHS_MAP = "paths.map"
SERVED = 1  # mailhost.apply.SERVED (`domains.active`): imported there, so repeated here


def selector(value: object) -> str:
    """A selector that is one DNS label, lower case (RenderError otherwise)."""
    if not isinstance(value, str) or not SELECTOR_RE.fullmatch(value):
        raise RenderError(f"invalid DKIM selector: {value!r} (one DNS label: a-z, 0-9, hyphens)")
    return value


def private_key(value: object) -> bytes:
    """The PEM of an RSA private key of MIN_BITS to MAX_BITS, re-written as unencrypted PKCS#8
    (RenderError for anything else: another kind of key, a public key, garbage)."""
    if not isinstance(value, str) or len(value) > 16_384 or not value.isascii():
        raise RenderError("invalid DKIM private key: not a PEM text")
    try:
        key = serialization.load_pem_private_key(value.encode("ascii"), password=None)
    except (ValueError, TypeError, Exception) as error:  # noqa: BLE001 - the parser's errors vary by backend
        raise RenderError(f"invalid DKIM private key: {type(error).__name__}") from None
    if not isinstance(key, rsa.RSAPrivateKey) or not MIN_BITS <= key.key_size <= MAX_BITS:
        raise RenderError(f"invalid DKIM private key: an RSA key of {MIN_BITS} to {MAX_BITS} bits is expected")
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class Wanted:
    """What a document asks of a domain's key: `keep` (the document does not say: a delta, an
    older format), or `key` None (no key: its files removed) or (selector, PEM)."""

    def __init__(self, keep: bool, key: tuple[str, bytes] | None = None) -> None:
        self.keep, self.key = keep, key


def wanted(document: contract.Document) -> Wanted:
    """The checked key a domain's document asks for (RenderError if it carries a bad one)."""
    if document["state"] == "absent":
        return Wanted(keep=False)
    if contract.is_alias(document) or "dkim" not in document:
        return Wanted(keep=not contract.is_alias(document))
    given = document["dkim"]  # a present domain (an alias: above)
    if given is None:
        return Wanted(keep=False)
    return Wanted(keep=False, key=(selector(given["selector"]), private_key(given["private_key"])))


def _group() -> int | None:
    if os.geteuid() != 0:
        return None
    try:
        return grp.getgrnam(RSPAMD_GROUP).gr_gid
    except KeyError:
        return 0


def _folder(path: Path, gid: int | None) -> None:
    if path.is_symlink():
        raise RenderError(f"{path} is a symbolic link")
    path.mkdir(mode=0o750, parents=True, exist_ok=True)
    if gid is not None:
        os.chown(path, 0, gid)
    path.chmod(0o750)


def key_path(cfg: RootLayout, domain: str, name: str) -> Path:
    return cfg.dkim_root / "keys" / f"{domain_name(domain)}.{selector(name)}.key"


def _keys(cfg: RootLayout) -> dict[str, tuple[str, Path]]:
    """The key files present: domain -> (selector, path); a name that is not ours is ignored."""
    found: dict[str, tuple[str, Path]] = {}
    folder = cfg.dkim_root / "keys"
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        parts = path.name.rsplit(".", 2)
        if len(parts) == 3 and parts[2] == "key" and SELECTOR_RE.fullmatch(parts[1]) and not path.is_symlink():
            found[parts[0]] = (parts[1], path)
    return found


def sync(cfg: RootLayout, db: sqlite3.Connection, domain: str, want: Wanted) -> bool:
    """Make the domain's key file what the document asks, then the maps what the host serves.
    True when a map changed."""
    gid = _group()
    _folder(cfg.dkim_root, gid)
    with mapfiles.locked(cfg.dkim_root):
        folder = cfg.dkim_root / "keys"
        _folder(folder, gid)
        keep: Path | None = None
        if want.key is not None:
            name, pem = want.key
            keep = key_path(cfg, domain, name)
            if keep.is_symlink():
                raise RenderError(f"{keep} is a symbolic link")
            if not keep.exists() or keep.read_bytes() != pem:
                mapfiles.write(keep, pem, mode=0o640, gid=gid)
        changed = _write_maps(cfg, db, gid)
        if not want.keep:  # the domain's other keys (a rotation's old one, a removed domain's)
            for path in folder.glob(f"{domain}.*.key"):
                if path != keep and path.name.rsplit(".", 2)[0] == domain:
                    path.unlink(missing_ok=True)
        return changed


def _write_maps(cfg: RootLayout, db: sqlite3.Connection, gid: int | None) -> bool:
    keys = _keys(cfg)
    if any(ch.isspace() for ch in str(cfg.dkim_root)):
        raise RenderError(f"{cfg.dkim_root}: a DKIM key path with a space cannot go into rspamd's map")
    served = {name for (name,) in db.execute("SELECT domain FROM domains WHERE active = ?", (SERVED,))}
    signing = {name: keys[name] for name in sorted(served) if name in keys}
    for alias, target in db.execute("SELECT alias, domain FROM alias_domains ORDER BY alias"):
        if alias in served and target in signing:
            signing[alias] = signing[target]
    selectors = "".join(f"{name} {sel}\n" for name, (sel, _path) in sorted(signing.items()))
    paths = "".join(f"{name} {path}\n" for name, (_sel, path) in sorted(signing.items()))
    changed = False
    for file_name, text in ((SELECTORS_MAP, selectors), (PATHS_MAP, paths)):
        target_path = cfg.dkim_root / file_name
        data = text.encode("ascii")
        if target_path.is_symlink() or not target_path.exists() or target_path.read_bytes() != data:
            mapfiles.write(target_path, data, mode=0o640, gid=gid)
            changed = True
    return changed
