"""A vpopmail / QmailAdmin / ezmlm-idx server's tree, written by hand from the documented formats
(qmail, vpopmail, QmailAdmin, ezmlm-idx and autorespond are not packaged for Debian 12).

`build_tree(root)` writes under `root/home/vpopmail` and `root/var/qmail` what `rsync` of a real
server would give: the absolute paths inside the files and the ezmlm symlinks name
`/home/vpopmail/...` (the reader maps them under ROOT). The `Tree` it returns says what is where,
in the terms a test checks: clear passwords for login tests, every message with its folder, flags,
bytes and received date, and what each forward, robot, vacation, catch-all and list should become.

`big_tree(root, mailboxes, messages)` writes the benchmark's tree quickly (one hash for all).

Formats followed (from the sources of each program):
- `var/qmail/users/assign`: `+DOMAIN-:REALDOMAIN:UID:GID:DIR:-::`, ended by a "." line; an alias
  domain is a line whose DOMAIN differs from REALDOMAIN (vaddaliasdomain), with the real domain's DIR.
- `var/qmail/control/virtualdomains`: `DOMAIN:REALDOMAIN`.
- `domains/DOMAIN/vpasswd`: `name:hash:uid:gid(flags):gecos:dir:quota[:clear]`, quota `NOQUOTA`,
  `NNNS` or `NNNS,MMMC`; `vpasswd.cdb` beside it (binary, never read).
- hashed layouts: a domain under `domains/0/DOMAIN`, users under `DOMAIN/0/`, `DOMAIN/1/`...
- `.qmailadmin-limits` (vlimits_write_limits_file) and `~vpopmail/etc/vlimits.default`.
- a mailbox's `.qmail` as QmailAdmin's modusernow writes it: `&addr` lines, the Maildir line when a
  copy is kept, `# delete` for "delete all", `| .../autorespond 86400 3 DIR/vacation/message
  DIR/vacation` for a vacation (message: `From:`, `Subject:`, blank line, text).
- a robot (addautorespondnow): `.qmail-NAME` with `|.../autorespond 10000 5 DOMDIR/NAME/message
  DOMDIR/NAME` (+ `&copy`), the folder NAME in capitals, `message` with From, Subject, the extra
  header lines of QmailAdmin's page and `MIME-Version: 1.0`, blank line, text.
- `.qmail-default`: `| /home/vpopmail/bin/vdelivermail '' bounce-no-mailbox | delete | ADDRESS |
  MAILDIR-PATH | $EXT@DOMAIN`.
- ezmlm-idx lists: the list's folder in the domain's folder, `.qmail-LIST`, `.qmail-LIST-default`,
  `-owner`, `-return-default`, `-digest-owner`, `-digest-return-default` absolute symlinks into it
  (ezmlm-make), flag files (modpost, modpostonly, subpostonly, modsub, remote, public, archived,
  threaded, prefix, headeradd, headerremove, text/trailer, digested, modcanlist...), the option
  letters in `flags` (ezmlm-idx 7) or a `F:-...` line of `config` (ezmlm-idx 0.4), subscribers in
  `subscribers/`, `mod/subscribers/`, `digest/subscribers/`: files of `T<address>\\0` records.
- Maildir++: `Maildir/{new,cur,tmp}`, subfolders `.Sent`, `.Archives.2019` (with `maildirfolder`),
  `courierimapsubscribed`, file names `TIME.MnPn.host,S=SIZE:2,FLAGS`, mtime = received date.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from passlib.hash import des_crypt, md5_crypt, sha512_crypt

VPOPMAIL = "/home/vpopmail"
VDELIVERMAIL = "| /home/vpopmail/bin/vdelivermail ''"
AUTORESPOND = "/usr/local/bin/autorespond"
EZMLM = "/usr/local/bin/ezmlm"

# vpopmail's flag bits (vpopmail.h), repeated here so that the fixture does not depend on the reader.
NO_PASSWD_CHNG, NO_POP, NO_WEBMAIL, NO_IMAP, NO_RELAY, NO_SMTP, QA_ADMIN = 0x01, 0x02, 0x04, 0x08, 0x20, 0x800, 0x1000


@dataclass
class Message:
    folder: str  # "INBOX", or the Maildir++ folder name without its dot: "Sent", "Archives.2019"
    subdir: str  # "new" or "cur"
    name: str  # the file name, flags included
    flags: str  # Maildir flag letters ("" for none), e.g. "FRS"
    data: bytes
    received: int  # the file's mtime (seconds)

    @property
    def imap_flags(self) -> set[str]:
        names = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen", "T": "\\Deleted"}
        return {names[letter] for letter in self.flags if letter in names}


@dataclass
class TreeMailbox:
    address: str
    password: str  # in clear, for login tests
    hash: str  # as in vpasswd
    home: Path  # under ROOT
    flags: int = 0
    quota_bytes: int | None = None
    quota_messages: int | None = None
    real_name: str = ""
    messages: list[Message] = field(default_factory=list)
    subscribed: list[str] = field(default_factory=list)  # courierimapsubscribed, without "INBOX."
    panel_login: bool = True  # False: a DES crypt hash, which Dovecot verifies (crypt(3)) and the panel does not

    @property
    def maildir(self) -> Path:
        return self.home / "Maildir"

    def folders(self) -> list[str]:
        return sorted({message.folder for message in self.messages} | {"INBOX"})


@dataclass
class Tree:
    root: Path
    domains: list[str] = field(default_factory=list)  # real domains, IDNA
    domain_dirs: dict[str, Path] = field(default_factory=dict)  # under ROOT
    aliases: dict[str, str] = field(default_factory=dict)  # alias domain → real domain
    mailboxes: dict[str, TreeMailbox] = field(default_factory=dict)  # address → mailbox
    # What the reader must find, in source.py's terms.
    forwards: dict[str, list[str]] = field(default_factory=dict)  # address → destinations ([] discard)
    mailbox_forwards: dict[str, tuple[list[str], bool]] = field(default_factory=dict)  # address → (to, keep)
    delete_all: list[str] = field(default_factory=list)
    vacations: dict[str, tuple[str, str]] = field(default_factory=dict)  # address → (subject, text)
    robots: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # address → (subject, text, copy)
    catchalls: dict[str, tuple[str, str]] = field(default_factory=dict)  # domain → (mode, target)
    lists: dict[str, dict[str, object]] = field(default_factory=dict)  # address → expected values
    limits: dict[str, dict[str, int | None]] = field(default_factory=dict)  # domain → source.Limits fields
    never_imported: list[str] = field(default_factory=list)  # clear-text passwords kept by vpopmail

    def messages(self) -> list[tuple[str, Message]]:
        return [(address, message) for address, box in self.mailboxes.items() for message in box.messages]


# ---------------------------------------------------------------------------------------------
# Writing helpers


def _write(path: Path, data: bytes | str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)


def _real(root: Path, absolute: str) -> Path:
    """An absolute path of the old server, where it lies in the copy."""
    return root / absolute.lstrip("/")


def _maildir(path: Path) -> None:
    for sub in ("new", "cur", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)


def _message(number: int, sender: str, to: str, subject: str, body: bytes, received: int) -> bytes:
    date = f"Tue, {1 + number % 27:02d} Jan 2019 10:{number % 60:02d}:00 +0100"
    head = (f"Return-Path: <{sender}>\nDelivered-To: {to}\nFrom: {sender}\nTo: {to}\n"
            f"Subject: {subject}\nDate: {date}\nMessage-ID: <{received}.{number}@old.example>\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\n"
            "Content-Transfer-Encoding: 8bit\n\n")
    return head.encode() + body + b"\n"


def _deliver(box: TreeMailbox, folder: str, subdir: str, flags: str, data: bytes, received: int,
             seq: int) -> None:
    base = box.maildir if folder == "INBOX" else box.maildir / f".{folder}"
    _maildir(base)
    if folder != "INBOX":
        (base / "maildirfolder").touch()
    name = f"{received}.M{seq}P{4000 + seq}.oldmail.example,S={len(data)}"
    if subdir == "cur":
        name += f":2,{flags}"
    path = base / subdir / name
    path.write_bytes(data)
    os.utime(path, (received, received))
    box.messages.append(Message(folder, subdir, name, flags, data, received))


def _subscribers(folder: Path, addresses: list[str]) -> None:
    """ezmlm's subscriber database: files named by a hash letter, each `T<address>\\0` records."""
    folder.mkdir(parents=True, exist_ok=True)
    buckets: dict[str, bytes] = {}
    for address in addresses:
        letter = chr(64 + sum(address.encode()) % 53)
        buckets[letter] = buckets.get(letter, b"") + b"T" + address.encode() + b"\0"
    for letter, data in buckets.items():
        _write(folder / letter, data)


def _letters(on: str) -> str:
    """ezmlm-make's option string: a lower-case letter is on, its capital off."""
    return "".join(c if c in on else c.upper() for c in "abcdefghijklmnopqrstuvwxyz")


def _ezmlm_list(root: Path, domdir: str, domain: str, name: str, *, on: str, files: list[str],
                style: str, owner: str, prefix: str = "", trailer: bytes = b"", headeradd: str = "",
                subscribers: list[str], moderators: list[str], digest: list[str]) -> Path:
    listdir = f"{domdir}/{name}"
    folder = _real(root, listdir)
    folder.mkdir(parents=True)
    if style == "flags":  # ezmlm-idx 7
        _write(folder / "flags", _letters(on) + "\n")
    else:  # ezmlm-idx 0.4: config
        _write(folder / "config", f"F:-{_letters(on)}\nX:\nD:{listdir}\nT:{domdir}/.qmail-{name}\n"
                                  f"L:{name}\nH:{domain}\nC:\n")
    for flag in files:
        _write(folder / flag, "")
    _write(folder / "inlocal", f"{domain.replace('.', '')}-{name}\n")
    _write(folder / "inhost", f"{domain}\n")
    _write(folder / "outlocal", f"{name}\n")
    _write(folder / "outhost", f"{domain}\n")
    _write(folder / "mailinglist", f"contact {name}-help@{domain}; run by ezmlm\n")
    _write(folder / "num", "42:1\n")
    _write(folder / "key", os.urandom(64))
    _write(folder / "lock", "")
    _write(folder / "editor", f"|{EZMLM}/ezmlm-reject '{listdir}'\n|{EZMLM}/ezmlm-issubn -n '{listdir}/deny' "
                              f"|| {{ echo \"Sorry, I've been told to reject your posts.\"; exit 100 ; }}\n"
                              f"|{EZMLM}/ezmlm-send '{listdir}'\n|{EZMLM}/ezmlm-warn '{listdir}' || exit 0\n")
    _write(folder / "manager", f"|{EZMLM}/ezmlm-get '{listdir}'\n|{EZMLM}/ezmlm-manage '{listdir}'\n"
                               f"|{EZMLM}/ezmlm-warn '{listdir}' || exit 0\n")
    _write(folder / "owner", f"&{owner}\n")
    _write(folder / "bouncer", f"|{EZMLM}/ezmlm-weed\n|{EZMLM}/ezmlm-return -D '{listdir}'\n")
    if prefix:
        _write(folder / "prefix", prefix + "\n")
    if headeradd:
        _write(folder / "headeradd", f"Precedence: bulk\nX-No-Archive: yes\n{headeradd}\n")
        _write(folder / "headerremove", "return-path\nreturn-receipt-to\ncontent-length\nprecedence\nReply-To\n")
    else:
        _write(folder / "headeradd", "Precedence: bulk\nX-No-Archive: yes\n")
        _write(folder / "headerremove", "return-path\nreturn-receipt-to\ncontent-length\nprecedence\n")
    _write(folder / "text" / "sub-ok", "Bienvenue sur la liste.\n")
    if trailer:
        _write(folder / "text" / "trailer", trailer)
    _subscribers(folder / "subscribers", subscribers)
    _subscribers(folder / "mod" / "subscribers", moderators)
    (folder / "archive").mkdir()
    if digest or "d" in on:
        _subscribers(folder / "digest" / "subscribers", digest)
        _write(folder / "digest" / "bouncer", f"|{EZMLM}/ezmlm-weed\n|{EZMLM}/ezmlm-return -d '{listdir}'\n")
    # ezmlm-make's symlinks, absolute, naming the old server's paths (dangling in the copy until mapped).
    dot = _real(root, domdir)
    links = {"": "editor", "-default": "manager", "-owner": "owner", "-return-default": "bouncer",
             "-digest-owner": "owner", "-digest-return-default": "digest/bouncer"}
    for suffix, target in links.items():
        os.symlink(f"{listdir}/{target}", dot / f".qmail-{name.replace('.', ':')}{suffix}")
    return folder


def _vpasswd_line(name: str, hash_: str, flags: int, gecos: bytes, home: str, quota: str,
                  clear: str | None = None) -> bytes:
    line = b":".join([name.encode(), hash_.encode(), b"1", str(flags).encode(), gecos, home.encode(),
                      quota.encode()])
    if clear is not None:
        line += b":" + clear.encode()
    return line + b"\n"


def _sha512(password: str) -> str:
    return str(sha512_crypt.using(rounds=5000).hash(password))


def _md5(password: str) -> str:
    return str(md5_crypt.hash(password))


# ---------------------------------------------------------------------------------------------
# The realistic tree


def build_tree(root: Path) -> Tree:
    root = Path(root)
    tree = Tree(root=root)
    home = root / "home" / "vpopmail"
    qmail = root / "var" / "qmail"
    (home / "bin").mkdir(parents=True)
    (qmail / "control").mkdir(parents=True)
    (qmail / "users").mkdir(parents=True)
    _write(home / "etc" / "vlimits.default",
           "# Default limits file.  This file is used for domains without a\n# .qmailadmin-limits file.\n\n"
           "maxpopaccounts\t\t-1\nmaxforwards\t\t-1\nmaxautoresponders\t-1\nmaxmailinglists\t\t-1\n\n"
           "#quota\t\t\t100\n#default_quota\t\t10485760\n\nperm_account\t\t0\nperm_alias\t\t0\n")

    dirs = {"exemple.fr": f"{VPOPMAIL}/domains/exemple.fr", "club-voile.org": f"{VPOPMAIL}/domains/club-voile.org",
            "atelier-bois.net": f"{VPOPMAIL}/domains/0/atelier-bois.net"}
    tree.domains = list(dirs)
    tree.domain_dirs = {name: _real(root, path) for name, path in dirs.items()}
    tree.aliases = {"exemple-boulangerie.fr": "exemple.fr"}
    for name in ("club-voile.org", "atelier-bois.net"):  # vlimits.default
        tree.limits[name] = {"max_mailboxes": -1, "max_forwards": -1, "max_robots": -1, "max_lists": -1,
                             "default_quota_mb": None}
    assign = [f"+{name}-:{name}:89:89:{path}:-::" for name, path in dirs.items()]
    assign.insert(1, f"+exemple-boulangerie.fr-:exemple.fr:89:89:{dirs['exemple.fr']}:-::")
    _write(qmail / "users" / "assign", "\n".join(assign) + "\n.\n", 0o644)
    _write(qmail / "users" / "cdb", os.urandom(128), 0o644)
    _write(qmail / "control" / "virtualdomains",
           "exemple.fr:exemple.fr\nexemple-boulangerie.fr:exemple.fr\nclub-voile.org:club-voile.org\n"
           "atelier-bois.net:atelier-bois.net\n", 0o644)
    _write(qmail / "control" / "rcpthosts", "\n".join([*dirs, "exemple-boulangerie.fr"]) + "\n", 0o644)
    _write(qmail / "control" / "me", "oldmail.example\n", 0o644)

    received = 1546333200  # 2019-01-01 09:00 UTC
    seq = 0

    def mailbox(domain: str, name: str, password: str, hash_: str, *, flags: int = 0, gecos: bytes = b"",
                real_name: str = "", quota: str = "NOQUOTA", sub: str = "", clear: str | None = None,
                quota_bytes: int | None = None, quota_messages: int | None = None) -> tuple[TreeMailbox, bytes]:
        path = f"{dirs[domain]}/{sub + '/' if sub else ''}{name}"
        box = TreeMailbox(f"{name}@{domain}", password, hash_, _real(root, path), flags, quota_bytes,
                          quota_messages, real_name)
        _maildir(box.maildir)
        tree.mailboxes[box.address] = box
        return box, _vpasswd_line(name, hash_, flags, gecos, path, quota, clear)

    # --- exemple.fr: the flat layout, its alias domain, every .qmail form -------------------
    d = "exemple.fr"
    ddir = _real(root, dirs[d])
    lines = []
    box, line = mailbox(d, "postmaster", "Pm-exemple-2019", _md5("Pm-exemple-2019"), flags=QA_ADMIN,
                        gecos=b"Postmaster", real_name="Postmaster")
    lines.append(line)
    # René: Latin-1 gecos (QmailAdmin's ISO-8859-1 page), SHA-512, a clear copy in the 8th field.
    # Passwords are ASCII: imaplib's LOGIN sends ASCII only (the e2e tests log in with it).
    rene, line = mailbox(d, "rene", "Ble-d-or-2019", _sha512("Ble-d-or-2019"), gecos=b"Ren\xe9 M\xfcller",
                         real_name="Ren\u00e9 M\u00fcller", quota="52428800S", quota_bytes=52428800,
                         clear="Ble-d-or-2019")
    lines.append(line)
    tree.never_imported.append("Ble-d-or-2019")
    # Zoé: UTF-8 gecos (typed on the command line), NO_POP, both quota parts.
    zoe, line = mailbox(d, "zoe", "zoe-2019!", _md5("zoe-2019!"), flags=NO_POP,
                        gecos="Zo\u00eb \u00c5ngstr\u00f6m".encode(), real_name="Zo\u00eb \u00c5ngstr\u00f6m",
                        quota="104857600S,5000C", quota_bytes=104857600, quota_messages=5000)
    lines.append(line)
    # Marie: a reference in the gecos, a vacation, IMAP refused.
    marie, line = mailbox(d, "marie", "Marie*Curie", _sha512("Marie*Curie"), flags=NO_IMAP,
                          gecos=b"Marie-H&#233;l&#232;ne", real_name="Marie-H\u00e9l\u00e8ne", quota="20971520S",
                          quota_bytes=20971520)
    lines.append(line)
    # Paul: forwards everything away, no SMTP.
    paul, line = mailbox(d, "paul", "paul-pass-1", _md5("paul-pass-1"), flags=NO_SMTP | NO_RELAY,
                         gecos=b"Paul Durand", real_name="Paul Durand")
    lines.append(line)
    # Jean: delete all.
    jean, line = mailbox(d, "jean", "jean-pass-1", _sha512("jean-pass-1"), gecos=b"Jean", real_name="Jean")
    lines.append(line)
    # Hostmaster (the .fr registry's address): everything to the postmaster.
    hostmaster, line = mailbox(d, "hostmaster", "Hm-exemple-2019", _md5("Hm-exemple-2019"), gecos=b"Hostmaster",
                               real_name="Hostmaster")
    lines.append(line)
    _write(ddir / "vpasswd", b"".join(lines), 0o600)
    _write(ddir / "vpasswd.cdb", os.urandom(256))
    _write(ddir / ".qmailadmin-limits",
           "maxpopaccounts: 50\nmaxaliases: -1\nmaxforwards: 20\nmaxautoresponders: 5\nmaxmailinglists: 3\n"
           "quota: 0\nmaxmsgcount: 0\ndefault_quota: 52428800\ndefault_maxmsgcount: 0\n"
           "perm_account: 0\nperm_alias: 0\nperm_forward: 0\nperm_autoresponder: 0\nperm_maillist: 0\n"
           "perm_quota: 0\nperm_defaultquota: 0\n")
    tree.limits[d] = {"max_mailboxes": 50, "max_forwards": 20, "max_robots": 5, "max_lists": 3,
                      "default_quota_mb": 50}
    _write(ddir / ".qmail-default", f"{VDELIVERMAIL} bounce-no-mailbox\n")
    tree.catchalls[d] = ("bounce", "")
    # Mailbox .qmail files (QmailAdmin's modusernow).
    _write(rene.home / ".qmail", f"&rene.muller@example.org\n{dirs[d]}/rene/Maildir/\n")
    tree.mailbox_forwards[rene.address] = (["rene.muller@example.org"], True)
    _write(paul.home / ".qmail", "&paul.durand@example.net\n")
    tree.mailbox_forwards[paul.address] = (["paul.durand@example.net"], False)
    _write(hostmaster.home / ".qmail", "&postmaster@exemple.fr\n")
    tree.mailbox_forwards[hostmaster.address] = (["postmaster@exemple.fr"], False)
    _write(jean.home / ".qmail", "# delete\n")
    tree.delete_all.append(jean.address)
    _write(marie.home / ".qmail",
           f"| {AUTORESPOND} 86400 3 {dirs[d]}/marie/vacation/message {dirs[d]}/marie/vacation\n"
           f"{dirs[d]}/marie/Maildir/\n")
    _write(marie.home / "vacation" / "message",
           b"From: marie@exemple.fr\nSubject: Absente jusqu'au 3 janvier\n\n"
           b"Bonjour,\nJe suis en cong&#233;s jusqu'au 3 janvier. Pour les commandes : "
           b"boutique@exemple.fr.\nMarie-H\xe9l\xe8ne\n")
    tree.vacations[marie.address] = ("Absente jusqu'au 3 janvier",
                                     "Bonjour,\nJe suis en cong\u00e9s jusqu'au 3 janvier. Pour les commandes : "
                                     "boutique@exemple.fr.\nMarie-H\u00e9l\u00e8ne\n")
    # Forwards (.qmail-NAME): every line kind.
    _write(ddir / ".qmail-info", f"&rene@exemple.fr\nmarie@exemple.fr\n{dirs[d]}/zoe/Maildir/\n")
    tree.forwards[f"info@{d}"] = ["rene@exemple.fr", "marie@exemple.fr", "zoe@exemple.fr"]
    _write(ddir / ".qmail-boutique", "&rene@exemple.fr\n&commandes@example.net\n")
    tree.forwards[f"boutique@{d}"] = ["rene@exemple.fr", "commandes@example.net"]
    _write(ddir / ".qmail-poubelle", "# accepted and thrown away\n#\n")
    tree.forwards[f"poubelle@{d}"] = []
    _write(ddir / ".qmail-jean:dupont", "&jean@exemple.fr\n")
    tree.forwards[f"jean.dupont@{d}"] = ["jean@exemple.fr"]
    # A robot (QmailAdmin's addautorespondnow), Latin-1, extra header lines to drop.
    _write(ddir / ".qmail-horaires",
           f"|{AUTORESPOND} 10000 5 {dirs[d]}/HORAIRES/message {dirs[d]}/HORAIRES\n&postmaster@exemple.fr\n")
    _write(ddir / "HORAIRES" / "message",
           b"From: horaires@exemple.fr\nSubject: Nos horaires d'ouverture\n"
           b"Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n"
           b"MIME-Version: 1.0\n\nOuvert du mardi au samedi, de 7 h \xe0 19 h.\nLa boulangerie \xab Au bl\xe9 \xbb\n")
    tree.robots[f"horaires@{d}"] = ("Nos horaires d'ouverture",
                                    "Ouvert du mardi au samedi, de 7 h \u00e0 19 h.\n"
                                    "La boulangerie \u00ab Au bl\u00e9 \u00bb\n", "postmaster@exemple.fr")
    # An ezmlm-idx 7 list: moderated, prefix, reply-to the list, UTF-8 trailer, digest, public archive.
    _ezmlm_list(root, dirs[d], d, "annonces", on="adfimpqt", style="flags",
                files=["modpost", "prefix", "addtrailer", "archived", "indexed", "threaded", "public", "digested"],
                owner="postmaster@exemple.fr", prefix="[Annonces]", headeradd="Reply-To: <#l#>@<#h#>",
                trailer="--\nListe d\u2019annonces de la boulangerie \u2014 se d\u00e9sabonner : "
                        "annonces-unsubscribe@exemple.fr\n".encode(),
                subscribers=["client1@example.net", "Client.Deux@example.org", "rene@exemple.fr"],
                moderators=["postmaster@exemple.fr"], digest=["digest-lecteur@example.com"])
    tree.lists[f"annonces@{d}"] = {
        "owner": "postmaster@exemple.fr", "posting": "moderated", "prefix": "[Annonces]", "reply_to": "list",
        "digest": True, "archive": True, "archive_access": "anyone", "private": False, "remote_admin": False,
        "sub_moderate": False, "sub_confirm": True,
        "trailer": "--\nListe d\u2019annonces de la boulangerie \u2014 se d\u00e9sabonner : "
                   "annonces-unsubscribe@exemple.fr\n",
        "subscribers": ["client1@example.net", "Client.Deux@example.org", "rene@exemple.fr"],
        "moderators": ["postmaster@exemple.fr"], "digest_subscribers": ["digest-lecteur@example.com"]}

    # Mail: rene's INBOX (new and cur with flags), .Sent, .Archives.2019, subscriptions.
    def deliver(box: TreeMailbox, folder: str, subdir: str, flags: str, subject: str, body: bytes) -> None:
        nonlocal received, seq
        seq += 1
        received += 3600
        data = _message(seq, "client1@example.net", box.address, subject, body, received)
        _deliver(box, folder, subdir, flags, data, received, seq)

    deliver(rene, "INBOX", "new", "", "Commande du 2 janvier", b"Bonjour, deux baguettes.\n")
    deliver(rene, "INBOX", "cur", "S", "Facture", b"Ci-joint la facture de d\xe9cembre.\n")
    deliver(rene, "INBOX", "cur", "FRS", "Urgent : livraison", b"Livraison demain \xe0 7 h.\n")
    deliver(rene, "INBOX", "cur", "", "Pas encore lu", b"Message vu mais non lu.\n")
    deliver(rene, "Sent", "cur", "S", "Re: Facture", b"Merci, bien re\xe7u.\n")
    deliver(rene, "Archives.2019", "cur", "RS", "Vieux message", b"Archiv\xe9.\n")
    rene.subscribed = ["Sent", "Archives.2019"]
    _write(rene.maildir / "courierimapsubscribed", "INBOX.Sent\nINBOX.Archives.2019\n")
    deliver(marie, "INBOX", "cur", "S", "Bonjour Marie", "Un message en UTF-8 : \u00e9t\u00e9.\n".encode())
    deliver(marie, "INBOX", "new", "", "Nouveau", b"Tout neuf.\n")

    # --- club-voile.org: an ezmlm-idx 0.4 list, catch-all to a mailbox path ----------------
    d = "club-voile.org"
    ddir = _real(root, dirs[d])
    postmaster2, line0 = mailbox(d, "postmaster", "Pm-voile-2019", _sha512("Pm-voile-2019"), gecos=b"Postmaster",
                                 real_name="Postmaster")
    capitaine, line1 = mailbox(d, "capitaine", "Cap-horn-1", _md5("Cap-horn-1"), flags=QA_ADMIN,
                               gecos=b"Capitaine", real_name="Capitaine", quota="NOQUOTA")
    secretaire, line2 = mailbox(d, "secretaire", "Helene-99", _sha512("Helene-99"),
                                gecos=b"H\xe9l\xe8ne Le Bihan", real_name="H\u00e9l\u00e8ne Le Bihan",
                                quota="10485760S")
    secretaire.quota_bytes = 10485760
    _write(ddir / "vpasswd", line0 + line1 + line2)
    _write(ddir / ".qmail-default", f"{VDELIVERMAIL} {dirs[d]}/capitaine\n")
    tree.catchalls[d] = ("mailbox", "capitaine")
    _write(ddir / ".qmail-bureau", "capitaine@club-voile.org\n&secretaire@club-voile.org\n")
    tree.forwards[f"bureau@{d}"] = ["capitaine@club-voile.org", "secretaire@club-voile.org"]
    _ezmlm_list(root, dirs[d], d, "membres", on="aglqrstu", style="config",
                files=["modsub", "remote", "archived", "indexed", "modcanlist"],
                owner="capitaine@club-voile.org", trailer=b"-- \nClub de voile de Loctudy \xe0 bient\xf4t\n",
                subscribers=["capitaine@club-voile.org", "equipier@example.net", "barreur@example.org"],
                moderators=["capitaine@club-voile.org", "secretaire@club-voile.org"], digest=[])
    tree.lists[f"membres@{d}"] = {
        "owner": "capitaine@club-voile.org", "posting": "subscribers", "prefix": "", "reply_to": "sender",
        "digest": False, "archive": True, "archive_access": "subscribers", "private": True, "remote_admin": True,
        "remote_admin_list": True, "sub_moderate": True, "sub_confirm": True,
        "trailer": "-- \nClub de voile de Loctudy \u00e0 bient\u00f4t\n",
        "subscribers": ["capitaine@club-voile.org", "equipier@example.net", "barreur@example.org"],
        "moderators": ["capitaine@club-voile.org", "secretaire@club-voile.org"], "digest_subscribers": []}
    deliver(capitaine, "INBOX", "cur", "S", "Sortie samedi", b"Rendez-vous au port.\n")

    # --- atelier-bois.net: the hashed layout, catch-all to another domain, an old DES hash ---
    d = "atelier-bois.net"
    ddir = _real(root, dirs[d])
    postmaster3, line0 = mailbox(d, "postmaster", "Pm-atelier-2019", _md5("Pm-atelier-2019"), gecos=b"Postmaster",
                                 real_name="Postmaster")
    alice, line1 = mailbox(d, "alice", "alice-Atelier-1", _sha512("alice-Atelier-1"), sub="0",
                           gecos=b"Alice", real_name="Alice", flags=NO_PASSWD_CHNG)
    bob, line2 = mailbox(d, "bob", "bob-Atelier-2", _md5("bob-Atelier-2"), sub="1", gecos=b"Bob", real_name="Bob")
    ancien, line3 = mailbox(d, "ancien", "vieux123", str(des_crypt.hash("vieux123")), sub="1",
                            gecos=b"Ancien compte", real_name="Ancien compte")
    ancien.panel_login = False
    _write(ddir / "vpasswd", line0 + line1 + line2 + line3)
    _write(ddir / ".qmail-default", f"{VDELIVERMAIL} $EXT@exemple.fr\n")
    tree.catchalls[d] = ("domain", "exemple.fr")
    deliver(alice, "INBOX", "cur", "FS", "Devis", b"Le devis sign\xe9.\n")
    deliver(bob, "INBOX", "new", "", "Salut", b"Salut Bob.\n")
    return tree


# ---------------------------------------------------------------------------------------------
# The benchmark's tree


def big_tree(root: Path, mailboxes: int, messages: int, domains: int = 4) -> Tree:
    """`mailboxes` mailboxes spread over `domains` domains (users hashed by hundreds, as vpopmail
    does past 100 users), each with `messages` messages in INBOX/cur. One password for all
    (hashing 10,000 passwords would measure passlib, not the reader)."""
    root = Path(root)
    tree = Tree(root=root)
    password = "bench-Password-1"
    hash_ = _md5(password)
    qmail = root / "var" / "qmail"
    (qmail / "control").mkdir(parents=True)
    (qmail / "users").mkdir(parents=True)
    assign, virtual = [], []
    body = b"x" * 2000 + b"\n"
    per_domain = -(-mailboxes // domains)
    made = 0
    for index in range(domains):
        name = f"bench{index}.test"
        path = f"{VPOPMAIL}/domains/{name}"
        ddir = _real(root, path)
        ddir.mkdir(parents=True)
        tree.domains.append(name)
        tree.domain_dirs[name] = ddir
        assign.append(f"+{name}-:{name}:89:89:{path}:-::")
        virtual.append(f"{name}:{name}")
        lines = []
        for number in range(min(per_domain, mailboxes - made)):
            user = f"user{number:05d}"
            sub = "" if number < 100 else f"{number // 100 - 1}/"
            home = f"{path}/{sub}{user}"
            lines.append(f"{user}:{hash_}:1:0:User {number}:{home}:52428800S\n")
            real_home = _real(root, home)
            cur = real_home / "Maildir" / "cur"
            cur.mkdir(parents=True)
            (real_home / "Maildir" / "new").mkdir()
            (real_home / "Maildir" / "tmp").mkdir()
            box = TreeMailbox(f"{user}@{name}", password, hash_, real_home, quota_bytes=52428800,
                              real_name=f"User {number}")
            for seq in range(messages):
                received = 1546333200 + seq * 60
                data = b"From: a@example.net\nTo: %s\nSubject: %d\n\n" % (box.address.encode(), seq) + body
                file_name = f"{received}.M{seq}P{number}.bench,S={len(data)}:2,S"
                fd = os.open(cur / file_name, os.O_WRONLY | os.O_CREAT, 0o600)
                os.write(fd, data)
                os.close(fd)
                box.messages.append(Message("INBOX", "cur", file_name, "S", data, received))
            tree.mailboxes[box.address] = box
            made += 1
        _write(ddir / "vpasswd", "".join(lines))
        _write(ddir / ".qmail-default", f"{VDELIVERMAIL} bounce-no-mailbox\n")
        tree.catchalls[name] = ("bounce", "")
    _write(qmail / "users" / "assign", "\n".join(assign) + "\n.\n", 0o644)
    _write(qmail / "control" / "virtualdomains", "\n".join(virtual) + "\n", 0o644)
    return tree
