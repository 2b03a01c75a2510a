"""A copy of a vpopmail / QmailAdmin / ezmlm server's tree (ROOT holds its `/home/vpopmail` and
`/var/qmail`) read into `vpopmail.source`'s dataclasses, touching nothing.

- Domains: `var/qmail/users/assign` (`+DOMAIN-:REAL:...:DIR:-::`); alias domains there (DOMAIN
  other than REAL) and in `var/qmail/control/virtualdomains` (`ALIAS:REAL`); nothing under
  `domains/` names them. The limits: the domain's `.qmailadmin-limits`, else
  `home/vpopmail/etc/vlimits.default`; their `disable_*` switches are ORed into each account's
  flags as vpopmail does, unless the account has V_OVERRIDE.
- Accounts: `vpasswd` (`vpasswd.cdb` is never read; the clear-text 8th field is dropped unread),
  hashes put in Dovecot's form (`qmailfiles.dovecot_hash`), each account's `.qmail`.
- `.qmail-NAME` files of the domain: an ezmlm list (a symlink to `LISTDIR/editor`, or a copied
  file with an ezmlm-send line: the rest of the list's `.qmail-NAME-*` family goes with it), a
  robot (an autorespond line), else a forward; `.qmail-default` is the catch-all.
- Every path a file names is mapped under ROOT by `vpopmail.jail` (links followed by hand, never
  out of ROOT); texts decoded by `vpopmail.text`.

What cannot be read or mapped is a `Problem` on its object (the domain's when the object is not
made), never an exception that stops the run, never dropped silently.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path

from vpopmail import source
from vpopmail.ezmlm import list_folder_in, list_folder_of, read_list
from vpopmail.jail import Escape, Jail, Unreadable
from vpopmail.qmailfiles import (
    DotLine,
    dovecot_hash,
    parse_assign_line,
    parse_autorespond,
    parse_catchall,
    parse_dotqmail,
    parse_limits,
    parse_message_file,
    parse_quota,
    parse_virtualdomains_line,
    parse_vpasswd_line,
    program_name,
)
from vpopmail.text import decode, shorten

ASSIGN = "/var/qmail/users/assign"
VIRTUALDOMAINS = "/var/qmail/control/virtualdomains"
VLIMITS_DEFAULT = "/home/vpopmail/etc/vlimits.default"
DOMAINS = "/home/vpopmail/domains"
PROGRESS_EVERY = 1000
# An account's vpopmail flags the panel has no switch for: reported (the mapped ones: NO_POP,
# NO_IMAP, NO_SMTP / NO_RELAY, QA_ADMIN; V_OVERRIDE only says how the domain's limits apply).
UNMAPPED_FLAGS = (
    (source.BOUNCE_MAIL, "BOUNCE_MAIL: the old server bounced this account's mail; the panel delivers it "
                         "(disable the account in the panel if it must refuse mail)"),
    (source.NO_PASSWD_CHNG, "NO_PASSWD_CHNG: the account may change its password in the panel"),
    (source.NO_WEBMAIL, "NO_WEBMAIL: the panel has no webmail switch per account"),
    (source.NO_DIALUP, "NO_DIALUP: the panel has no dial-up relay switch"),
    (source.NO_SPAMASSASSIN | source.DELETE_SPAM | source.SA_ADMIN | source.SA_EXPERT,
     "spam-filter flags: not carried (the panel's spam filtering is set otherwise)"),
    (source.V_USER0 | source.V_USER1 | source.V_USER2 | source.V_USER3, "V_USER0-3: site-defined flags, not carried"),
    (source.NO_MAILDROP, "NO_MAILDROP: not carried"),
)
VPASSWD_LIMIT = 256 * 1024 * 1024  # ~1.5 million accounts: a file larger than that is not a vpasswd


def read_server(root: Path, progress: Callable[[str], None] | None = None) -> source.Server:
    """Everything ROOT's tree holds (see the module). `progress`, when given, hears a line per
    domain and every PROGRESS_EVERY accounts."""
    jail = Jail(Path(root))
    server = source.Server(root=jail.root)
    real, aliases = _domains(jail, server)
    default_limits = _default_limits(jail, server)
    read = 0

    def tick(count: int) -> None:
        if progress and (read + count) % PROGRESS_EVERY == 0:
            progress(f"{read + count} accounts read")

    for name in sorted(real):
        try:
            domain = _read_domain(jail, server, name, real[name], default_limits, tick)
        except (OSError, ValueError) as error:  # a folder that vanishes or cannot be listed mid-way
            server.problems.append(source.Problem(real[name].lstrip("/"), name, f"the domain is not read: {error}"))
            continue
        if domain is None:
            continue
        domain.aliases = sorted(alias for alias, target in aliases.items() if target == name)
        server.domains.append(domain)
        read += len(domain.mailboxes)
        if progress:
            progress(f"{name}: {len(domain.mailboxes)} accounts read ({read} in all)")
    return server


# --- domains and alias domains ------------------------------------------------------------


def _idna(name: str) -> str | None:
    try:
        return name.encode("idna").decode("ascii").lower() if not name.isascii() else name.lower()
    except UnicodeError:
        return None


def _lines(jail: Jail, server: source.Server, path: str) -> list[tuple[int, str]] | None:
    try:
        real, data = jail.read_path(path)
    except (Escape, Unreadable) as error:
        server.problems.append(source.Problem(path.lstrip("/"), "", f"not read: {error}"))
        return None
    return [(number, decode(raw).strip()) for number, raw in enumerate(data.splitlines(), 1)]


def _domains(jail: Jail, server: source.Server) -> tuple[dict[str, str], dict[str, str]]:
    """(real domain → its folder as the old server wrote it, alias domain → real domain)."""
    real: dict[str, str] = {}
    aliases: dict[str, str] = {}
    where = ASSIGN.lstrip("/")

    def problem(place: str, line: str, why: str) -> None:
        server.problems.append(source.Problem(place, shorten(line), why))

    for number, line in _lines(jail, server, ASSIGN) or []:
        if line == ".":
            break
        if not line or line.startswith("#"):
            continue
        entry = parse_assign_line(line)
        if entry is None:
            why = ("a single-user line (=): not a vpopmail domain" if line.startswith("=")
                   else "not a vpopmail domain line (+DOMAIN-:DOMAIN:UID:GID:DIR:-::)")
            problem(f"{where}:{number}", line, why)
            continue
        name, target = _idna(entry.name), _idna(entry.real)
        if name is None or target is None:
            problem(f"{where}:{number}", line, "not a valid domain name")
        elif name == target:
            if name in real and real[name] != entry.directory:
                problem(f"{where}:{number}", line, "the domain is named twice with two folders: the first is read")
            real.setdefault(name, entry.directory)
        else:
            aliases.setdefault(name, target)
    vwhere = VIRTUALDOMAINS.lstrip("/")
    for number, line in _lines(jail, server, VIRTUALDOMAINS) or []:
        if not line or line.startswith("#"):
            continue
        pair = parse_virtualdomains_line(line)
        if pair is None:
            problem(f"{vwhere}:{number}", line, "not a DOMAIN:PREFIX line the panel can carry (a wildcard or a "
                                                "single address)")
            continue
        name, prefix = _idna(pair[0]) or pair[0], pair[1]
        if name == prefix:
            if name not in real:
                found = _find_domain_folder(jail, name) if not real and not aliases else None
                if found:
                    real[name] = found  # no users/assign: the folder vpopmail would use
                else:
                    problem(f"{vwhere}:{number}", line, "not in users/assign: not a vpopmail domain, not read")
        elif prefix in real:
            aliases.setdefault(name, prefix)
        elif name not in aliases:
            problem(f"{vwhere}:{number}", line, f"delivered to {prefix}, which is not a vpopmail domain: not read")
    for alias, target in sorted(aliases.items()):
        if alias in real:
            problem(where, alias, "both a domain and an alias domain: read as a domain")
            del aliases[alias]
        elif target not in real:
            problem(where, alias, f"an alias of {target}, which is not a domain of this server: not read")
            del aliases[alias]
    return real, aliases


def _find_domain_folder(jail: Jail, name: str) -> str | None:
    """Where vpopmail keeps a domain without an assign line: domains/NAME or domains/N/NAME."""
    try:
        base = jail.resolve(DOMAINS)
    except Escape:
        return None
    if jail.is_dir(base / name):
        return f"{DOMAINS}/{name}"
    try:
        for entry in os.scandir(base):
            if entry.is_dir(follow_symlinks=False) and jail.is_dir(Path(entry.path) / name):
                return f"{DOMAINS}/{entry.name}/{name}"
    except OSError:
        return None
    return None


def _default_limits(jail: Jail, server: source.Server) -> tuple[source.Limits, int] | None:
    try:
        real, data = jail.read_path(VLIMITS_DEFAULT)
    except Escape as error:
        server.problems.append(source.Problem(VLIMITS_DEFAULT.lstrip("/"), "", f"not read: {error}"))
        return None
    except Unreadable as error:
        if jail.exists(jail.resolve(VLIMITS_DEFAULT)):
            server.problems.append(source.Problem(VLIMITS_DEFAULT.lstrip("/"), "", f"not read: {error}"))
        return None
    limits, mask = parse_limits(data, jail.where(real))
    server.problems += limits.problems  # once, not once per domain using it
    limits.problems = []
    return limits, mask


# --- one domain -----------------------------------------------------------------------------


class _DomainReader:
    def __init__(self, jail: Jail, domain: source.Domain, tick: Callable[[int], None]) -> None:
        self.jail = jail
        self.domain = domain
        self.tick = tick
        self.by_path: dict[Path, str] = {}  # a mailbox's home and Maildir → its local part

    def problem(self, real: Path | None, line: int | None, what: str, why: str,
                found: list[source.Problem] | None = None) -> None:
        (self.domain.problems if found is None else found).append(
            source.Problem(self.jail.where(real, line), shorten(what), why))

    def mailbox_of_path(self, value: str, base: Path) -> str | None:
        """The local part of the domain's mailbox a path line names (its home or its Maildir)."""
        try:
            target = self.jail.resolve(value.rstrip("/") or "/", base)
        except Escape:
            return None
        return self.by_path.get(target)


def _read_domain(jail: Jail, server: source.Server, name: str, old_dir: str,
                 default_limits: tuple[source.Limits, int] | None,
                 tick: Callable[[int], None]) -> source.Domain | None:
    try:
        path = jail.resolve(old_dir)
    except Escape as error:
        server.problems.append(source.Problem(ASSIGN.lstrip("/"), name, f"the domain's folder {old_dir}: {error}"))
        return None
    if not jail.is_dir(path):
        server.problems.append(source.Problem(ASSIGN.lstrip("/"), name, f"the domain's folder {old_dir} is not in "
                                              "the copy: the domain is not read"))
        return None
    domain = source.Domain(name=name, path=path)
    reader = _DomainReader(jail, domain, tick)
    mask = 0
    limits_file = path / ".qmailadmin-limits"
    if jail.exists(limits_file):
        try:
            domain.limits, mask = parse_limits(jail.read(limits_file), jail.where(limits_file))
        except Unreadable as error:
            reader.problem(limits_file, None, ".qmailadmin-limits", f"not read: {error}")
    elif default_limits is not None:
        domain.limits, mask = copy.deepcopy(default_limits[0]), default_limits[1]
    _read_vpasswd(reader, mask)
    _read_dotqmails(reader)
    return domain


def _read_vpasswd(reader: _DomainReader, mask: int) -> None:
    jail, domain = reader.jail, reader.domain
    vpasswd = domain.path / "vpasswd"
    try:
        data = jail.read(vpasswd, limit=VPASSWD_LIMIT)
    except Unreadable as error:
        why = ("no vpasswd (vpopmail with a SQL back end?): no account read" if str(error) == "missing"
               else f"not read: {error}")
        reader.problem(vpasswd, None, "vpasswd", why)
        return
    seen: set[str] = set()
    for number, raw in enumerate(data.splitlines(), 1):
        if not raw.strip() or raw.startswith(b"#"):
            continue
        line = parse_vpasswd_line(raw)
        if line is None or not line.name:
            # Only the first field is shown: the line may hold a hash or a clear password.
            reader.problem(vpasswd, number, decode(raw.split(b":", 1)[0]), "not a vpasswd line "
                           "(name:hash:uid:gid:gecos:dir:quota)")
            continue
        if line.name in seen:
            reader.problem(vpasswd, number, line.name, "the account is named twice: the first line is read")
            continue
        seen.add(line.name)
        mailbox = source.Mailbox(local_part=line.name, password_hash="", real_name=line.gecos)
        where = jail.where(vpasswd, number)
        for why in line.problems:
            mailbox.problems.append(source.Problem(where, line.name, why))
        mailbox.password_hash, why = dovecot_hash(line.hash)
        if why:
            mailbox.problems.append(source.Problem(where, line.name, f"password not kept: {why}"))
        mailbox.flags = line.flags if line.flags & source.V_OVERRIDE else line.flags | mask
        for bits, why in UNMAPPED_FLAGS:  # the account's own (the domain's limits file reports its own)
            if line.flags & bits:
                mailbox.problems.append(source.Problem(where, line.name, why))
        quota = parse_quota(line.quota)
        if quota is None:
            mailbox.problems.append(source.Problem(where, f"{line.name}: {shorten(line.quota)}",
                                                   "not a quota (NOQUOTA, NNNS or NNNS,MMMC): no quota read"))
        else:
            mailbox.quota_bytes, mailbox.quota_messages = quota
        try:
            mailbox.home = jail.resolve(line.directory) if line.directory.startswith("/") else None
        except Escape as error:
            mailbox.problems.append(source.Problem(where, f"{line.name}: {shorten(line.directory)}",
                                                   f"the account's folder is refused: {error}"))
        if line.directory and not line.directory.startswith("/"):
            mailbox.problems.append(source.Problem(where, f"{line.name}: {shorten(line.directory)}",
                                                   "the account's folder is not an absolute path"))
        if mailbox.home is not None and not mailbox.home.is_relative_to(domain.path):
            mailbox.problems.append(source.Problem(where, f"{line.name}: {shorten(line.directory)}", "the account's "
                                                   "folder is outside its domain's folder: its mail is not copied"))
            mailbox.home = None
        elif mailbox.home is not None and mailbox.home in reader.by_path:
            mailbox.problems.append(source.Problem(where, f"{line.name}: {shorten(line.directory)}", "the account's "
                                                   f"folder is {reader.by_path[mailbox.home]}'s: its mail is not "
                                                   "copied"))
            mailbox.home = None
        if mailbox.home is not None:
            reader.by_path[mailbox.home] = line.name
            try:
                maildir = jail.resolve("Maildir", mailbox.home)
            except Escape as error:
                mailbox.problems.append(source.Problem(where, line.name, f"its Maildir is refused: {error}"))
            else:
                reader.by_path[maildir] = line.name
                if jail.is_dir(maildir):
                    mailbox.maildir = maildir
        domain.mailboxes.append(mailbox)
        reader.tick(len(domain.mailboxes))
    for mailbox in domain.mailboxes:
        if mailbox.home is not None and jail.exists(mailbox.home / ".qmail"):
            _read_mailbox_dotqmail(reader, mailbox)


def _dot_lines(reader: _DomainReader, path: Path, found: list[source.Problem]) -> list[DotLine] | None:
    try:
        real = reader.jail.resolve(reader.jail.old_path(path))
        data = reader.jail.read(real)
    except (Escape, Unreadable) as error:
        reader.problem(path, None, path.name, f"not read: {error}", found)
        return None
    return parse_dotqmail(data)


def _vacation(reader: _DomainReader, command: str, base: Path, real: Path, line: DotLine,
              found: list[source.Problem]) -> source.Vacation | None:
    auto = parse_autorespond(command)
    if auto is None:
        reader.problem(real, line.number, line.text, "an autoresponder line the reader cannot follow", found)
        return None
    try:
        message_path, data = reader.jail.read_path(auto.message, base)
    except (Escape, Unreadable) as error:
        reader.problem(real, line.number, line.text, f"the message file {auto.message}: {error}", found)
        return None
    sender, subject, text = parse_message_file(data)
    return source.Vacation(subject=subject, message=text, sender=sender, reply_seconds=auto.seconds)


def _read_mailbox_dotqmail(reader: _DomainReader, mailbox: source.Mailbox) -> None:
    """QmailAdmin's forms: `&addr` lines (forward), the Maildir line too (keep a copy), `# delete`
    (or `|/bin/true delete`, or comments only: delete all), an autorespond line (vacation)."""
    assert mailbox.home is not None
    path = mailbox.home / ".qmail"
    found = mailbox.problems
    lines = _dot_lines(reader, path, found)
    if lines is None:
        return
    local = False
    delivering = False
    for line in lines:
        if line.kind == "comment":
            continue
        delivering = True
        if line.kind == "address":
            if "@" in line.value:
                mailbox.forward_to.append(line.value)
            else:
                reader.problem(path, line.number, line.text, "an address without a domain: not carried", found)
        elif line.kind == "path":
            owner = reader.mailbox_of_path(line.value, mailbox.home)
            if owner == mailbox.local_part:
                local = True
            elif owner is not None:
                mailbox.forward_to.append(f"{owner}@{reader.domain.name}")
            else:
                reader.problem(path, line.number, line.text, "a delivery to a folder that is not an account's "
                                                             "Maildir: not carried", found)
        elif "/true delete" in line.text or line.value.split()[:2] == ["/bin/true", "delete"]:
            mailbox.delete_all = True
        elif program_name(line.value) in ("autorespond", "qmail-autoresponder"):
            mailbox.vacation = _vacation(reader, line.value, mailbox.home, path, line, found)
        else:
            reader.problem(path, line.number, line.text, "a program the panel does not run: not carried", found)
    if not delivering and lines:
        mailbox.delete_all = True  # comments only ("# delete"): qmail accepts and drops the mail
    elif not lines:
        reader.problem(path, None, ".qmail", "an empty .qmail: ordinary delivery", found)
    mailbox.keep_copy = bool(mailbox.forward_to) and local
    if mailbox.vacation is not None and not local and not mailbox.forward_to and not mailbox.delete_all:
        reader.problem(path, None, ".qmail", "the old server answered and kept nothing; the panel keeps the mail "
                                             "of an account on vacation", found)


def _read_dotqmails(reader: _DomainReader) -> None:
    jail, domain = reader.jail, reader.domain
    try:
        entries = sorted(entry.name for entry in os.scandir(domain.path) if entry.name.startswith(".qmail-"))
    except OSError as error:
        reader.problem(domain.path, None, domain.name, f"the domain's folder cannot be listed: {error}")
        return
    # Lists first: a list takes its whole `.qmail-LIST-*` family.
    families: list[str] = []
    for entry in entries:
        raw = entry[len(".qmail-"):]
        if raw == "default" or any(raw == f or raw.startswith(f + "-") for f in families):
            continue
        path = domain.path / entry
        folder, why = list_folder_of(jail, path, domain.path)
        if folder is None and not why and not os.path.islink(path):
            try:
                text = decode(jail.read(path))
            except Unreadable:
                text = ""
            folder, why = list_folder_in(jail, text, domain.path)
        if why:
            reader.problem(path, None, entry, why)
            families.append(raw)  # its family is not read as forwards either
        elif folder is not None:
            families.append(raw)
            domain.lists.append(read_list(jail, folder, raw.replace(":", ".").lower(), domain.name))
    for entry in entries:
        raw = entry[len(".qmail-"):]
        path = domain.path / entry
        if raw == "default":
            _read_catchall(reader, path)
        elif any(raw == f or raw.startswith(f + "-") for f in families):
            continue
        elif raw.endswith("-default"):
            reader.problem(path, None, entry, "a qmail extension wildcard (every NAME-anything address): not carried")
        else:
            _read_forward_or_robot(reader, path, raw.replace(":", ".").lower())


def _read_forward_or_robot(reader: _DomainReader, path: Path, local_part: str) -> None:
    found: list[source.Problem] = []
    lines = _dot_lines(reader, path, found)
    if lines is None:
        reader.domain.problems += found
        return
    robots = [line for line in lines if line.kind == "program"
              and program_name(line.value) in ("autorespond", "qmail-autoresponder")]
    if robots:
        _read_robot(reader, path, local_part, lines, robots[0])
        return
    forward = source.Forward(local_part=local_part, problems=found)
    for line in lines:
        if line.kind == "comment":
            continue
        if line.kind == "address":
            if "@" in line.value:
                forward.destinations.append(line.value)
            else:
                reader.problem(path, line.number, line.text, "an address without a domain: not carried", found)
        elif line.kind == "path":
            owner = reader.mailbox_of_path(line.value, reader.domain.path)
            if owner is not None:
                forward.destinations.append(f"{owner}@{reader.domain.name}")
            else:
                reader.problem(path, line.number, line.text, "a delivery to a folder that is not an account's "
                                                             "Maildir: not carried", found)
        else:
            reader.problem(path, line.number, line.text, "a program the panel does not run: not carried", found)
    if not lines:
        reader.problem(path, None, path.name, "an empty file (qmail delivers to the domain's own folder): not "
                                              "carried")
        return
    if all(line.kind == "comment" for line in lines):
        forward.discard = True
    elif not forward.destinations:
        reader.domain.problems += found  # nothing left to forward to: no forward made
        return
    reader.domain.forwards.append(forward)


def _read_robot(reader: _DomainReader, path: Path, local_part: str, lines: list[DotLine], line: DotLine) -> None:
    found: list[source.Problem] = []
    auto = parse_autorespond(line.value)
    if auto is None:
        reader.problem(path, line.number, line.text, "an autoresponder line the reader cannot follow")
        return
    try:
        _message_path, data = reader.jail.read_path(auto.message, reader.domain.path)
    except (Escape, Unreadable) as error:
        reader.problem(path, line.number, line.text, f"the robot's message file {auto.message}: {error}")
        return
    sender, subject, text = parse_message_file(data)
    robot = source.Robot(local_part=local_part, subject=subject, message=text, sender=sender,
                         reply_seconds=auto.seconds, problems=found)
    for other in lines:
        if other is line or other.kind == "comment":
            continue
        if other.kind == "address" and "@" in other.value and not robot.copy_to:
            robot.copy_to = other.value
        else:
            reader.problem(path, other.number, other.text, "a robot keeps one copy address: line not carried", found)
    reader.domain.robots.append(robot)


def _read_catchall(reader: _DomainReader, path: Path) -> None:
    domain = reader.domain
    lines = _dot_lines(reader, path, domain.problems)
    if lines is None:
        return
    catchall, why, by_path = parse_catchall(lines, domain.name)
    if catchall is None:
        reader.problem(path, None, " / ".join(line.text for line in lines if line.kind != "comment"),
                       f"catch-all not carried: {why}")
        return
    if by_path:
        owner = reader.mailbox_of_path(by_path, domain.path)
        if owner is None:
            reader.problem(path, None, by_path, "catch-all not carried: the folder is not an account's")
            return
        catchall.target = owner
    elif catchall.mode == "mailbox" and catchall.target not in {m.local_part for m in domain.mailboxes}:
        catchall = source.CatchAll("remote", f"{catchall.target}@{domain.name}")
    domain.catchall = catchall
