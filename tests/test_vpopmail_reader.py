"""vpopmail.reader on the hand-made tree (tests/vpopmail_tree.py) and on each line form alone: what
it reads, the encodings, the paths that would leave ROOT, and the problems it reports."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lists.options import NAMES
from tests.vpopmail_tree import NO_IMAP, NO_POP, NO_RELAY, NO_SMTP, QA_ADMIN, Tree, big_tree, build_tree
from vpopmail import source
from vpopmail.ezmlm import read_list
from vpopmail.jail import Escape, Jail, Unreadable
from vpopmail.qmailfiles import (
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
)
from vpopmail.reader import read_server
from vpopmail.text import decode, decode_lines

SECRET = "root:SECRET-OUTSIDE-THE-COPY:0:0"


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return build_tree(tmp_path / "copy")


def domain_of(server: source.Server, name: str) -> source.Domain:
    return next(domain for domain in server.domains if domain.name == name)


def mailbox_of(server: source.Server, address: str) -> source.Mailbox:
    local, _, domain = address.partition("@")
    return next(m for m in domain_of(server, domain).mailboxes if m.local_part == local)


def tmp_path_of(tree: Tree) -> Path:
    return tree.root.parent


def problems_about(server: source.Server, text: str) -> list[source.Problem]:
    return [p for p in server.all_problems() if text in p.where or text in p.what or text in p.why]


# --- the whole tree ------------------------------------------------------------------------


def test_domains_alias_domains_and_limits(tree: Tree) -> None:
    server = read_server(tree.root)
    assert sorted(d.name for d in server.domains) == sorted(tree.domains)
    for domain in server.domains:
        assert domain.path == tree.domain_dirs[domain.name].resolve()
        assert {name: getattr(domain.limits, name) for name in tree.limits[domain.name]} == tree.limits[domain.name]
        assert domain.aliases == sorted(a for a, target in tree.aliases.items() if target == domain.name)
    assert domain_of(server, "atelier-bois.net").path.parent.name == "0"  # the hashed layout


def test_mailboxes_hashes_flags_quotas_names(tree: Tree) -> None:
    server = read_server(tree.root)
    read = {f"{m.local_part}@{d.name}": m for d in server.domains for m in d.mailboxes}
    assert set(read) == set(tree.mailboxes)
    for address, expected in tree.mailboxes.items():
        mailbox = read[address]
        scheme = {"$1$": "{MD5-CRYPT}", "$6$": "{SHA512-CRYPT}"}.get(expected.hash[:3], "{CRYPT}")
        assert mailbox.password_hash == scheme + expected.hash
        assert mailbox.flags == expected.flags
        assert (mailbox.quota_bytes, mailbox.quota_messages) == (expected.quota_bytes, expected.quota_messages)
        assert mailbox.real_name == expected.real_name
        assert mailbox.home == expected.home.resolve()
        assert mailbox.maildir == expected.maildir.resolve()
    assert read["rene@exemple.fr"].real_name == "René Müller"  # Latin-1 bytes
    assert read["zoe@exemple.fr"].real_name == "Zoë Ångström"  # UTF-8 in the same file
    assert read["marie@exemple.fr"].real_name == "Marie-Hélène"  # &#233; references
    assert not read["zoe@exemple.fr"].allow_pop3 and read["zoe@exemple.fr"].allow_imap
    assert not read["marie@exemple.fr"].allow_imap
    assert not read["paul@exemple.fr"].allow_smtp and read["paul@exemple.fr"].flags == NO_SMTP | NO_RELAY
    assert read["postmaster@exemple.fr"].is_admin and read["postmaster@exemple.fr"].flags == QA_ADMIN
    assert NO_POP == source.NO_POP and NO_IMAP == source.NO_IMAP and QA_ADMIN == source.QA_ADMIN


def test_the_clear_text_field_is_never_read(tree: Tree) -> None:
    server = read_server(tree.root)
    assert tree.never_imported
    for clear in tree.never_imported:
        assert clear not in repr(server)
    vpasswd = (tree.domain_dirs["exemple.fr"] / "vpasswd").read_bytes()
    assert tree.never_imported[0].encode() in vpasswd  # it is there, and was left there


def test_mailbox_dotqmail_forms(tree: Tree) -> None:
    server = read_server(tree.root)
    for address, (to, keep) in tree.mailbox_forwards.items():
        mailbox = mailbox_of(server, address)
        assert (mailbox.forward_to, mailbox.keep_copy) == (to, keep)
    for address in tree.delete_all:
        assert mailbox_of(server, address).delete_all
    for address, (subject, text) in tree.vacations.items():
        vacation = mailbox_of(server, address).vacation
        assert vacation is not None
        assert (vacation.subject, vacation.message, vacation.reply_seconds) == (subject, text, 86400)
        assert mailbox_of(server, address).forward_to == [] and not mailbox_of(server, address).keep_copy
    untouched = mailbox_of(server, "zoe@exemple.fr")
    assert (untouched.forward_to, untouched.keep_copy, untouched.delete_all, untouched.vacation) == ([], False,
                                                                                                    False, None)


def test_forwards_robots_catchalls(tree: Tree) -> None:
    server = read_server(tree.root)
    forwards = {f"{f.local_part}@{d.name}": f for d in server.domains for f in d.forwards}
    assert set(forwards) == set(tree.forwards)
    for address, destinations in tree.forwards.items():
        assert forwards[address].destinations == destinations
        assert forwards[address].discard == (destinations == [])
    robots = {f"{r.local_part}@{d.name}": r for d in server.domains for r in d.robots}
    assert set(robots) == set(tree.robots)
    for address, (subject, text, copy) in tree.robots.items():
        robot = robots[address]
        assert (robot.subject, robot.message, robot.copy_to, robot.reply_seconds) == (subject, text, copy, 10000)
        assert robot.sender == address
        assert "Content-Type" not in robot.message and "MIME-Version" not in robot.message
    for name, (mode, target) in tree.catchalls.items():
        catchall = domain_of(server, name).catchall
        assert catchall is not None and (catchall.mode, catchall.target) == (mode, target)


def test_lists_options_and_members(tree: Tree) -> None:
    server = read_server(tree.root)
    lists = {f"{ml.name}@{d.name}": ml for d in server.domains for ml in d.lists}
    assert set(lists) == set(tree.lists)
    for address, expected in tree.lists.items():
        ml = lists[address]
        assert ml.path is not None and ml.path.name == ml.name and ml.path.is_relative_to(tree.root.resolve())
        assert ml.owner == expected["owner"]
        assert ml.subscribers == expected["subscribers"] or sorted(ml.subscribers) == sorted(expected["subscribers"])
        assert sorted(ml.moderators) == sorted(expected["moderators"])  # type: ignore[call-overload]
        assert sorted(ml.digest_subscribers) == sorted(expected["digest_subscribers"])  # type: ignore[call-overload]
        for name in ("posting", "reply_to", "digest", "archive", "archive_access", "private", "remote_admin",
                     "sub_moderate", "sub_confirm", "trailer"):
            assert ml.options[name] == expected[name], (address, name)
        assert ml.options.get("prefix", "") == expected["prefix"]
    # Every option name is one the panel's list knows.
    assert all(set(ml.options) <= set(NAMES) for ml in lists.values())
    # The list's .qmail-LIST-* family is not read as forwards.
    names = {f.local_part for d in server.domains for f in d.forwards}
    assert not any(name.startswith(("annonces", "membres")) for name in names)


def test_progress(tmp_path: Path) -> None:
    big_tree(tmp_path / "big", 2500, 0, domains=2)
    heard: list[str] = []
    server = read_server(tmp_path / "big", progress=heard.append)
    assert sum(len(d.mailboxes) for d in server.domains) == 2500
    assert heard == ["1000 accounts read", "bench0.test: 1250 accounts read (1250 in all)", "2000 accounts read",
                     "bench1.test: 1250 accounts read (2500 in all)"]


def test_ten_thousand_accounts_are_read_whole(tmp_path: Path) -> None:
    """The benchmark's tree read without a problem (its time: bench/vpopmail_bench.py, BENCHMARKS.md)."""
    big_tree(tmp_path / "big", 10_000, 0)
    server = read_server(tmp_path / "big")
    assert sum(len(d.mailboxes) for d in server.domains) == 10_000 and not server.all_problems()
    assert all(m.maildir is not None for d in server.domains for m in d.mailboxes)


def test_what_the_panel_cannot_do_is_reported(tree: Tree) -> None:
    server = read_server(tree.root)
    assert problems_about(server, "ezmlm-cgi")  # -i on annonces
    assert problems_about(server, "ezmlm's texts")
    # Alice's NO_PASSWD_CHNG: the panel has no such switch.
    assert [p.what for p in problems_about(server, "NO_PASSWD_CHNG")] == ["alice"]
    # Nothing else: the tree is a clean server.
    assert len(server.all_problems()) == 4, server.all_problems()


@pytest.mark.parametrize(("on", "files", "posting", "archive_access"), [
    ("", [], "anyone", "anyone"),
    ("u", [], "subscribers", "anyone"),
    ("mu", [], "subscribers_moderated", "anyone"),
    ("mo", [], "moderators", "subscribers"),
    ("m", [], "moderated", "moderators"),
    ("", ["modpost", "modpostonly", "modgetonly"], "anyone", "anyone"),  # the letters win over the files
    (None, ["modpost", "subpostonly"], "subscribers_moderated", "anyone"),  # no letters: the files
    (None, ["modpost", "modpostonly", "modgetonly"], "moderators", "moderators"),
])
def test_list_switches(tmp_path: Path, on: str | None, files: list[str], posting: str, archive_access: str) -> None:
    folder = tmp_path / "liste"
    folder.mkdir()
    if on is not None:
        extra = {"mo": "g", "m": "b"}.get(on, "")
        (folder / "flags").write_text("".join(c if c in on + extra else c.upper()
                                              for c in "abcdefghijklmnopqrstuvwxyz") + "\n")
    for name in files:
        (folder / name).touch()
    (folder / "headeradd").write_text("Precedence: bulk\nReply-To: info@<#h#>\n")
    ml = read_list(Jail(tmp_path), folder.resolve(), "liste", "exemple.fr")
    assert (ml.options["posting"], ml.options["archive_access"]) == (posting, archive_access)
    assert (ml.options["reply_to"], ml.options["reply_to_address"]) == ("address", "info@exemple.fr")
    assert ml.options["private"] and not ml.options["archive"]  # p and a off in the letters


def test_list_sub_folders_behind_links(tree: Tree, outside: Path) -> None:
    """`mod` or `text` made links: never followed out of ROOT, followed under it (reported)."""
    folder = tree.domain_dirs["exemple.fr"] / "annonces"
    stolen = outside.parent / "mod"
    (stolen / "subscribers").mkdir(parents=True)
    (stolen / "subscribers" / "A").write_bytes(b"Tstolen@outside.example\0")
    shutil.rmtree(folder / "mod")
    os.symlink("../" * 12 + str(stolen).lstrip("/"), folder / "mod")  # relative, out of ROOT
    shutil.rmtree(folder / "text")
    os.symlink(str(stolen), folder / "text")  # absolute: under ROOT, absent there
    server = read_server(tree.root)
    assert "stolen@outside.example" not in repr(server)
    annonces = next(ml for ml in domain_of(server, "exemple.fr").lists if ml.name == "annonces")
    assert annonces.moderators == [] and "trailer" not in annonces.options
    assert any(p.what == "mod" and "climbs above" in p.why for p in annonces.problems)
    assert any(p.what == "text" and "a link" in p.why for p in annonces.problems)


def test_a_trailer_the_list_did_not_add(tmp_path: Path) -> None:
    folder = tmp_path / "liste"
    (folder / "text").mkdir(parents=True)
    (folder / "text" / "trailer").write_text("--\nfin\n")
    (folder / "flags").write_text("aBCDEFGHIJKLMNOpQRSTUVWXYZ\n")  # T: no trailer
    ml = read_list(Jail(tmp_path), folder.resolve(), "liste", "exemple.fr")
    assert "trailer" not in ml.options and any("-T" in p.why for p in ml.problems)
    (folder / "flags").unlink()  # no letters: ezmlm adds text/trailer when it is there
    ml = read_list(Jail(tmp_path), folder.resolve(), "liste", "exemple.fr")
    assert ml.options["trailer"] == "--\nfin\n"


def test_list_without_symlinks(tree: Tree) -> None:
    """A tree copied without its links (tar -h, a copy by hand): the `.qmail-LIST` file's ezmlm line
    names the folder; the family's files go with the list, whatever they hold."""
    ddir = tree.domain_dirs["exemple.fr"]
    for link in ddir.glob(".qmail-annonces*"):
        link.unlink()
    folder = "/home/vpopmail/domains/exemple.fr/annonces"
    (ddir / ".qmail-annonces").write_text(f"|/usr/local/bin/ezmlm/ezmlm-reject '{folder}'\n"
                                          f"|/usr/local/bin/ezmlm/ezmlm-send '{folder}'\n")
    (ddir / ".qmail-annonces-accept-default").write_text(f"|/usr/local/bin/ezmlm/ezmlm-moderate '{folder}'\n"
                                                         f"|/usr/local/bin/ezmlm/ezmlm-send '{folder}'\n")
    (ddir / ".qmail-annonces-owner").write_text("&postmaster@exemple.fr\n")
    domain = domain_of(read_server(tree.root), "exemple.fr")
    assert [ml.name for ml in domain.lists] == ["annonces"]
    assert domain.lists[0].subscribers and domain.lists[0].options["posting"] == "moderated"
    assert not any(f.local_part.startswith("annonces") for f in domain.forwards)


# --- encodings -----------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "text"), [
    (b"Ren\xc3\xa9", "René"),  # UTF-8
    (b"Ren\xe9", "René"),  # ISO-8859-1
    (b"\x93cit\xe9\x94 \x80", "“cité” €"),  # Windows-1252
    (b"a\x81b", "a\x81b"),  # a hole of Windows-1252: Latin-1's character
    (b"cong&#233;s &#xE9;t&#XE9; &#8364;", "congés été €"),
    (b"&#0; &#55296; &#1114112; &#x41", "&#0; &#55296; &#1114112; &#x41"),  # not characters: left as written
])
def test_decode(data: bytes, text: str) -> None:
    assert decode(data) == text


def test_decode_lines_per_line() -> None:
    assert decode_lines(b"\xc3\xa9t\xc3\xa9\r\nhiver \xe0 Brest\n&#233;\n") == "été\nhiver à Brest\né\n"


# --- line forms alone ----------------------------------------------------------------------


def test_assign_and_virtualdomains_lines() -> None:
    line = parse_assign_line("+alias.fr-:exemple.fr:89:89:/home/vpopmail/domains/exemple.fr:-::")
    assert line is not None and (line.name, line.real, line.directory) == (
        "alias.fr", "exemple.fr", "/home/vpopmail/domains/exemple.fr")
    assert parse_assign_line("=postmaster:vpopmail:89:89:/home/vpopmail:::") is None
    assert parse_assign_line("+exemple.fr:exemple.fr:89:89:/x:-::") is None  # no "-" after the name
    assert parse_virtualdomains_line("Alias.FR:exemple.fr") == ("alias.fr", "exemple.fr")
    assert parse_virtualdomains_line(".example.com:wild") is None
    assert parse_virtualdomains_line("joe@example.com:joe") is None


def test_vpasswd_line_drops_the_clear_field() -> None:
    line = parse_vpasswd_line(b"Rene:$1$abc$def:1:4098:Ren\xe9:/home/vpopmail/domains/d/rene:NOQUOTA:clear-pw\n")
    assert line is not None
    assert (line.name, line.hash, line.flags, line.gecos, line.quota) == ("rene", "$1$abc$def", 4098, "René",
                                                                          "NOQUOTA")
    assert "clear-pw" not in repr(line)
    assert parse_vpasswd_line(b"short:line:1") is None
    bad = parse_vpasswd_line(b"x:$1$a$b:1:zz::/h:NOQUOTA")
    assert bad is not None and bad.flags == 0 and bad.problems


@pytest.mark.parametrize(("text", "quota"), [
    ("NOQUOTA", (None, None)), ("52428800S", (52428800, None)), ("52428800", (52428800, None)),
    ("104857600S,5000C", (104857600, 5000)), ("50MS", (50 * 1024 * 1024, None)), ("5000C", (None, 5000)),
    ("lots", None), ("12S,xC", None),
])
def test_quota(text: str, quota: tuple[int | None, int | None] | None) -> None:
    assert parse_quota(text) == quota


@pytest.mark.parametrize(("value", "stored"), [
    ("$1$salt$hash", "{MD5-CRYPT}$1$salt$hash"),
    ("$5$salt$hash", "{SHA256-CRYPT}$5$salt$hash"),
    ("$6$rounds=5000$salt$hash", "{SHA512-CRYPT}$6$rounds=5000$salt$hash"),
    ("$2y$10$abcdefghijklmnopqrstuv", "{BLF-CRYPT}$2y$10$abcdefghijklmnopqrstuv"),
    ("KuTAifKbOt2uY", "{CRYPT}KuTAifKbOt2uY"),
    ("", ""), ("*", ""), ("!$1$salt$hash", ""), ("secret", ""), ("{PLAIN}secret", ""), ("$1$bad hash", ""),
])
def test_dovecot_hash(value: str, stored: str) -> None:
    result, why = dovecot_hash(value)
    assert result == stored
    assert bool(why) == (stored == "")


def test_limits() -> None:
    limits, mask = parse_limits(b"maxpopaccounts: 10\nmaxforwards\t-1\nmaxautoresponders: 0\nmaxmailinglists: 2\n"
                                b"default_quota: 10485760\nquota: 100\ndisable_imap\ndisable_smtp\nperm_account: 2\n"
                                b"frobnicate: 3\nmaxaliases: 7\n# comment\n", "x")
    assert (limits.max_mailboxes, limits.max_forwards, limits.max_robots, limits.max_lists,
            limits.default_quota_mb) == (10, -1, 0, 2, 10)
    assert mask == source.NO_IMAP | source.NO_SMTP
    whys = " ".join(p.why for p in limits.problems)
    assert "quota per domain" in whys and "permission" in whys and "does not know" in whys and "aliases" in whys
    assert [p.where for p in limits.problems] == ["x:6", "x:9", "x:10", "x:11"]


def test_limits_switches_reach_the_accounts_unless_override(tree: Tree) -> None:
    (tree.domain_dirs["club-voile.org"] / ".qmailadmin-limits").write_text("maxpopaccounts: 5\ndisable_pop\n")
    vpasswd = tree.domain_dirs["club-voile.org"] / "vpasswd"
    vpasswd.write_bytes(vpasswd.read_bytes().replace(b":1:0:H", b":1:%d:H" % source.V_OVERRIDE))
    server = read_server(tree.root)
    assert not mailbox_of(server, "capitaine@club-voile.org").allow_pop3
    assert mailbox_of(server, "secretaire@club-voile.org").allow_pop3  # V_OVERRIDE: its own flags only
    assert domain_of(server, "club-voile.org").limits.max_mailboxes == 5


@pytest.mark.parametrize(("bits", "named"), [
    (source.BOUNCE_MAIL, "BOUNCE_MAIL"), (source.NO_WEBMAIL, "NO_WEBMAIL"), (source.NO_DIALUP, "NO_DIALUP"),
    (source.DELETE_SPAM, "spam-filter"), (source.V_USER2, "V_USER"), (source.NO_MAILDROP, "NO_MAILDROP"),
])
def test_an_accounts_flags_the_panel_lacks_are_reported(tree: Tree, bits: int, named: str) -> None:
    vpasswd = tree.domain_dirs["club-voile.org"] / "vpasswd"
    vpasswd.write_bytes(vpasswd.read_bytes().replace(b":1:0:H", b":1:%d:H" % bits))
    server = read_server(tree.root)
    assert [p.what for p in problems_about(server, named)] == ["secretaire"]


def test_dotqmail_line_kinds() -> None:
    lines = parse_dotqmail(b"# comment\n&a@b.c\nd@e.f\n/home/vpopmail/domains/x/u/Maildir/\n./Maildir/\n"
                           b"| /usr/bin/prog 'x y'\n\n")
    assert [(line.kind, line.value) for line in lines] == [
        ("comment", ""), ("address", "a@b.c"), ("address", "d@e.f"),
        ("path", "/home/vpopmail/domains/x/u/Maildir/"), ("path", "./Maildir/"), ("program", "/usr/bin/prog 'x y'")]
    assert [line.number for line in lines] == [1, 2, 3, 4, 5, 6]


def test_autorespond_and_message_file() -> None:
    auto = parse_autorespond("/usr/local/bin/autorespond 86400 3 /h/vacation/message /h/vacation")
    assert auto is not None and (auto.seconds, auto.message, auto.folder) == (86400, "/h/vacation/message",
                                                                              "/h/vacation")
    auto = parse_autorespond("/usr/local/bin/qmail-autoresponder -c /h/ROBOT")
    assert auto is not None and (auto.seconds, auto.message) == (None, "/h/ROBOT/message.txt")
    assert parse_autorespond("/usr/local/bin/autorespond soon 3 m d") is None
    assert parse_autorespond("/usr/local/bin/autorespond 10") is None
    sender, subject, text = parse_message_file(
        b"From: r@d.fr\nSubject: Cong\xe9s\nContent-Type: text/plain; charset=iso-8859-1\nMIME-Version: 1.0\n\n"
        b"Texte \xe0 lire\nligne 2 \xc3\xa9\n")
    assert (sender, subject, text) == ("r@d.fr", "Congés", "Texte à lire\nligne 2 é\n")
    assert parse_message_file(b"No header here\nat all\n") == ("", "", "No header here\nat all\n")


@pytest.mark.parametrize(("line", "mode", "target"), [
    (b"| /home/vpopmail/bin/vdelivermail '' bounce-no-mailbox", "bounce", ""),
    (b"|/home/vpopmail/bin/vdelivermail '' delete", "delete", ""),
    (b"| /home/vpopmail/bin/vdelivermail '' someone@example.net", "remote", "someone@example.net"),
    (b"| /home/vpopmail/bin/vdelivermail '' postmaster@exemple.fr", "mailbox", "postmaster"),
    (b"| /home/vpopmail/bin/vdelivermail '' /home/vpopmail/domains/exemple.fr/postmaster", "mailbox",
     "/home/vpopmail/domains/exemple.fr/postmaster"),
    (b"| /home/vpopmail/bin/vdelivermail '' $EXT@other.example", "domain", "other.example"),
    (b"| /home/vpopmail/bin/vdelivermail '' '${EXT}@Other.Example'", "domain", "other.example"),
    (b"| /var/qmail/bin/forward \"$EXT@other.example\"", "domain", "other.example"),
    (b"&catch@example.net", "remote", "catch@example.net"),
    (b"# nothing\n#", "delete", ""),
])
def test_catchall_forms(line: bytes, mode: str, target: str) -> None:
    catchall, why, _path = parse_catchall(parse_dotqmail(line + b"\n"), "exemple.fr")
    assert why == "" and catchall is not None and (catchall.mode, catchall.target) == (mode, target)


@pytest.mark.parametrize("line", [
    b"| /home/vpopmail/bin/vdelivermail '' $EXT@exemple.fr",  # a loop
    b"| /usr/bin/maildrop filter",
    b"| /home/vpopmail/bin/vdelivermail '' $LOCAL@x.example",
    b"&a@b.example\n&c@d.example",
])
def test_catchall_refused(line: bytes) -> None:
    catchall, why, _path = parse_catchall(parse_dotqmail(line + b"\n"), "exemple.fr")
    assert catchall is None and why


@pytest.mark.parametrize(("line", "mode", "target"), [
    (b"| /home/vpopmail/bin/vdelivermail '' /home/vpopmail/domains/exemple.fr/zoe/Maildir/", "mailbox", "zoe"),
    (b"| /home/vpopmail/bin/vdelivermail '' jean@exemple.fr", "mailbox", "jean"),
    (b"| /home/vpopmail/bin/vdelivermail '' info@exemple.fr", "remote", "info@exemple.fr"),  # a forward's
    (b"|/home/vpopmail/bin/vdelivermail '' delete", "delete", ""),
])
def test_catchall_in_the_tree(tree: Tree, line: bytes, mode: str, target: str) -> None:
    (tree.domain_dirs["exemple.fr"] / ".qmail-default").write_bytes(line + b"\n")
    catchall = domain_of(read_server(tree.root), "exemple.fr").catchall
    assert catchall is not None and (catchall.mode, catchall.target) == (mode, target)


def test_catchall_to_a_folder_that_is_no_account(tree: Tree) -> None:
    (tree.domain_dirs["exemple.fr"] / ".qmail-default").write_text(
        "| /home/vpopmail/bin/vdelivermail '' /home/vpopmail/domains/exemple.fr/nobody\n")
    server = read_server(tree.root)
    assert domain_of(server, "exemple.fr").catchall is None
    assert problems_about(server, "not an account's")


# --- paths that would leave ROOT ----------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "passwd"
    secret.parent.mkdir()
    secret.write_text(SECRET + "\n")
    return secret


def test_a_relative_symlink_out_of_root_is_refused(tree: Tree, outside: Path) -> None:
    ddir = tree.domain_dirs["exemple.fr"]
    depth = len(ddir.relative_to(tree.root.parent).parts)
    os.symlink("../" * depth + "outside/passwd", ddir / ".qmail-evil")
    assert (ddir / ".qmail-evil").read_text().startswith("root:")  # it does lead out, when followed blindly
    server = read_server(tree.root)
    assert SECRET not in repr(server)
    assert not any(f.local_part == "evil" for f in domain_of(server, "exemple.fr").forwards)
    assert any("climbs above" in p.why for p in problems_about(server, ".qmail-evil"))


def test_an_absolute_symlink_is_read_under_root(tree: Tree, outside: Path) -> None:
    """`/…/outside/passwd` names the old server's file: read from the copy (absent here), never the
    importing machine's."""
    ddir = tree.domain_dirs["exemple.fr"]
    os.symlink(str(outside), ddir / ".qmail-abs")
    server = read_server(tree.root)
    assert SECRET not in repr(server)
    assert any("missing" in p.why for p in problems_about(server, ".qmail-abs"))
    # Put the same path inside the copy: that one is read.
    inside = tree.root / str(outside).lstrip("/")
    inside.parent.mkdir(parents=True)
    inside.write_text("&copy@example.net\n")
    forward = next(f for f in domain_of(read_server(tree.root), "exemple.fr").forwards if f.local_part == "abs")
    assert forward.destinations == ["copy@example.net"]


def test_paths_in_files_are_refused_when_they_climb_out(tree: Tree, outside: Path) -> None:
    ddir = tree.domain_dirs["exemple.fr"]
    climb = "/home/vpopmail/" + "../" * 6 + str(outside).lstrip("/")
    vpasswd = ddir / "vpasswd"
    vpasswd.write_bytes(vpasswd.read_bytes() + f"evil:$1$a$b:1:0:Evil:{climb}:NOQUOTA\n".encode())
    (ddir / ".qmail-robot").write_text(f"|/usr/local/bin/autorespond 10 1 {climb} /tmp\n")
    (ddir / ".qmail-default").write_text(f"| /home/vpopmail/bin/vdelivermail '' {climb}\n")
    server = read_server(tree.root)
    assert SECRET not in repr(server)
    evil = mailbox_of(server, "evil@exemple.fr")
    assert evil.home is None and any("refused" in p.why for p in evil.problems)
    assert not any(r.local_part == "robot" for r in domain_of(server, "exemple.fr").robots)
    assert problems_about(server, ".qmail-robot")
    assert domain_of(server, "exemple.fr").catchall is None


def test_an_account_folder_elsewhere_or_shared_is_not_copied(tree: Tree) -> None:
    """One account cannot take another's mail, nor another domain's."""
    vpasswd = tree.domain_dirs["exemple.fr"] / "vpasswd"
    vpasswd.write_bytes(vpasswd.read_bytes()
                        + b"thief:$1$a$b:1:0:T:/home/vpopmail/domains/exemple.fr/rene:NOQUOTA\n"
                        + b"far:$1$a$b:1:0:F:/home/vpopmail/domains/club-voile.org/capitaine:NOQUOTA\n")
    server = read_server(tree.root)
    for name, why in (("thief", "rene's"), ("far", "outside its domain")):
        mailbox = mailbox_of(server, f"{name}@exemple.fr")
        assert mailbox.home is None and mailbox.maildir is None
        assert any(why in p.why for p in mailbox.problems)
    assert mailbox_of(server, "rene@exemple.fr").maildir == tree.mailboxes["rene@exemple.fr"].maildir.resolve()


def test_a_list_symlink_out_of_root_and_a_symlinked_subscriber_file(tree: Tree, outside: Path) -> None:
    ddir = tree.domain_dirs["exemple.fr"]
    os.symlink("../" * 12 + str(outside.parent).lstrip("/") + "/editor", ddir / ".qmail-fuite")
    subscribers = ddir / "annonces" / "subscribers"
    os.symlink(str(outside), subscribers / "Z")
    digest = ddir / "annonces" / "digest" / "subscribers"
    digest.rename(tmp_path_of(tree) / "digest-elsewhere")
    os.symlink(str(tmp_path_of(tree) / "digest-elsewhere"), digest)
    server = read_server(tree.root)
    assert SECRET not in repr(server)
    assert "digest-lecteur@example.com" not in repr(server)  # behind a link out of the copy: not read
    assert any(p.where.endswith("digest/subscribers") and "not a folder" in p.why for p in server.all_problems())
    assert not any(ml.name == "fuite" for ml in domain_of(server, "exemple.fr").lists)
    assert problems_about(server, ".qmail-fuite")
    annonces = next(ml for ml in domain_of(server, "exemple.fr").lists if ml.name == "annonces")
    assert any(p.where.endswith("subscribers/Z") for p in annonces.problems)


def test_jail_resolves_links_by_hand(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "home" / "vpopmail" / "domains").mkdir(parents=True)
    os.symlink("/home/vpopmail", root / "vp")  # absolute: under ROOT
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    jail = Jail(root)
    assert jail.resolve("/vp/domains") == (root / "home/vpopmail/domains").resolve()
    assert jail.resolve("domains", (root / "home/vpopmail").resolve()) == (root / "home/vpopmail/domains").resolve()
    with pytest.raises(Escape):
        jail.resolve("/loop1/x")
    with pytest.raises(Escape):
        jail.resolve("/home/../../etc/passwd")
    with pytest.raises(Escape):
        jail.resolve("relative/without/base")
    os.mkfifo(root / "fifo")
    with pytest.raises(Unreadable, match="regular"):
        jail.read(jail.resolve("/fifo"))  # would block a plain open()
    (root / "big").write_bytes(b"x" * 100)
    with pytest.raises(Unreadable, match="larger"):
        jail.read(root.resolve() / "big", limit=10)


# --- problems, never an exception --------------------------------------------------------


def test_broken_lines_are_problems(tree: Tree) -> None:
    qmail = tree.root / "var" / "qmail"
    with (qmail / "users" / "assign").open("r+") as assign:
        lines = assign.read().splitlines()
        lines.insert(0, "=joe:joe:500:500:/home/joe:::")
        lines.insert(0, "+gone.example-:gone.example:89:89:/home/vpopmail/domains/gone.example:-::")
        lines.insert(0, "+orphan.example-:nowhere.example:89:89:/home/vpopmail/domains/nowhere.example:-::")
        assign.seek(0)
        assign.write("\n".join(lines) + "\n")
    with (qmail / "control" / "virtualdomains").open("a") as virtual:
        virtual.write(".wild.example:wild\nother.example:other-user\nvirt-alias.fr:club-voile.org\n")
    ddir = tree.domain_dirs["exemple.fr"]
    vpasswd = ddir / "vpasswd"
    vpasswd.write_bytes(vpasswd.read_bytes() + b"short:line\nbadq:plain-secret:1:0:B:/home/vpopmail/domains/"
                        b"exemple.fr/badq:lots\nrene:$1$dup$dup:1:0:Dup:/x:NOQUOTA\n")
    (ddir / ".qmail-prog").write_text("| /usr/bin/procmail\n")
    (ddir / ".qmail-mixed").write_text("&ok@example.net\n| /usr/bin/procmail\nlocal-only\n")
    (ddir / ".qmail-empty").write_text("")
    (ddir / ".qmail-x-default").write_text("&a@example.net\n")
    (tree.domain_dirs["club-voile.org"] / "vpasswd").unlink()
    server = read_server(tree.root)
    whys = {p.why for p in server.all_problems()}
    assert any("single-user" in w for w in whys)
    assert any("gone.example" in p.what or "gone.example" in p.why for p in server.problems)
    assert any("nowhere.example" in p.why for p in server.problems)
    assert any("wildcard" in p.why for p in server.problems)
    assert any("other-user" in p.why for p in server.problems)
    assert domain_of(server, "club-voile.org").aliases == ["virt-alias.fr"]
    assert any("no vpasswd" in p.why for p in domain_of(server, "club-voile.org").problems)
    assert any(p.where.endswith("vpasswd:8") and "not a vpasswd line" in p.why for p in server.all_problems())
    badq = mailbox_of(server, "badq@exemple.fr")
    assert badq.password_hash == "" and badq.quota_bytes is None and len(badq.problems) == 2
    assert "plain-secret" not in repr(server.all_problems())
    assert mailbox_of(server, "rene@exemple.fr").real_name == "René Müller"  # the first line kept
    assert any("named twice" in p.why for p in server.all_problems())
    forwards = {f.local_part: f for f in domain_of(server, "exemple.fr").forwards}
    assert "prog" not in forwards and "empty" not in forwards and "x-default" not in forwards
    assert forwards["mixed"].destinations == ["ok@example.net"] and len(forwards["mixed"].problems) == 2
    assert problems_about(server, ".qmail-prog") and problems_about(server, ".qmail-empty")
    assert problems_about(server, ".qmail-x-default")
