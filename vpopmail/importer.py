"""A vpopmail server's tree (`vpopmail.vp.Server`, as `vpopmail.reader` reads it) moved into one
pack of the panel: `plan` says what would be created, what is already there, what cannot be
mapped and why, without writing anything; `run` writes what the plan says, through the panel's
services, and reports.

Each domain of the source is created (its postmaster and other accounts come from the source:
`mail.accounts.domain_create_with_accounts` would need a password in clear, which the old server
never had), marked proven by the import (`VerifiedHow.IMPORT`: its host serves it today), given
its alias domains, then its POP accounts in one bulk service call (`mail.bulkimport`: hashes as
they are, never re-hashed, upgraded by the panel's login at the next login), its robots, mailing
lists (options, texts, then their members in one call: `lists.bulkimport`), its forwards (one call:
`mail.bulkimport.forwards_import`), and last its catch-all (a catch-all that sends mail on is
checked against everything else). The bulk calls' audit rows say "vpopmail import".

Safe to run again: what is already in the panel is compared with the source, never rewritten.
Equal: "present", nothing written (no revision, no audit row). Different: "differs", reported
with the fields that differ and left as the panel has it: once moved in, a domain is run from the
panel, where its users may have changed what the old server still says (a password, a forward, a
list member who left); a later run must not undo that. The mail copy is asked again at each run
(`Report.maildirs`: every account of the source the panel has): the host copies nothing twice, so
a later run brings only the mail that reached the old server meanwhile.

Refused, reported, and never touched: a domain name the panel already holds for another pack
(another customer's, or another pack of the same customer), a name under another customer's
domain, a reserved name (a special-use name, a mail host's own), an invalid one. The pack's room
(its plan's counts, its reseller's pool, its total quota, each list's member limit) is counted
across the whole plan, domain by domain: a domain whose new objects would not fit is refused whole
and its objects named in the report (raise the plan, run again).
"""

from __future__ import annotations

import math
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Sum
from passlib.hash import sha512_crypt

from hosting.models import UNLIMITED, Domain, Pack, VerifiedHow
from hosting.validators import MAX_QUOTA_MB, normalize_hosted_domain
from lists import bulkimport as list_bulk
from lists import options as list_options
from lists import services as list_services
from lists.models import ListMember, MailingList, MemberKind
from mail import bulkimport, services
from mail.models import (
    POSTMASTER,
    ROBOT_REPLY_HOURS_DEFAULT,
    ROBOT_REPLY_HOURS_MAX,
    ROBOT_REPLY_HOURS_MIN,
    CatchAll,
    CatchAllMode,
    Forward,
    Mailbox,
    Robot,
    Routing,
    hostmaster_required,
)
from mail.validators import normalize_address, normalize_local_part
from mailhost.passwords import CRYPT_SCHEMES, SCHEME, split_scheme
from mailhost.render import HASH_RE, list_bases, list_sub_addresses
from provisioning import domains as domain_services
from provisioning.domains import parent_names
from vpopmail import source as vp

SOURCE = "vpopmail import"  # the audit rows' `source`
# Hashes the panel's login verifies (`mailhost.passwords`) and Dovecot too: kept as they are.
VERIFIED_SCHEMES = {SCHEME, "BLF-CRYPT", *CRYPT_SCHEMES}
# Dovecot verifies these (crypt(3)); the panel's login does not: kept, reported.
HOST_ONLY_SCHEMES = {"CRYPT", "DES-CRYPT"}
PROGRESS_EVERY = 1000  # mailboxes between two progress lines (the bulk service's batch)


class State(StrEnum):
    CREATE = "create"
    PRESENT = "present"  # in the panel already, equal
    DIFFERS = "differs"  # in the panel already, different: left as it is (module)
    SKIP = "skip"  # cannot be mapped or not allowed: reported, nothing written


class Kind(StrEnum):
    ALIAS = "alias domain"
    MAILBOX = "POP account"
    ROBOT = "robot"
    LIST = "mailing list"
    FORWARD = "forward"
    CATCHALL = "catch-all"


@dataclass
class Item:
    kind: Kind
    name: str
    state: State
    why: str = ""
    where: str = ""  # the source's file, relative to ROOT
    obj: Any = None  # the source's object (vpopmail.source), or the catch-all


@dataclass
class DomainPlan:
    source: vp.Domain
    name: str
    state: State  # CREATE: a new domain; PRESENT: in this pack already (its objects compared); SKIP: refused
    why: str = ""
    domain: Domain | None = None
    items: list[Item] = field(default_factory=list)
    problems: list[vp.Problem] = field(default_factory=list)  # the importer's notes (not refusals)

    def of(self, kind: Kind, state: State | None = None) -> list[Item]:
        return [i for i in self.items if i.kind == kind and (state is None or i.state == state)]

    def counts(self) -> Counter[tuple[Kind, State]]:
        return Counter((i.kind, i.state) for i in self.items)


@dataclass
class Plan:
    server: vp.Server
    pack: Pack
    domains: list[DomainPlan] = field(default_factory=list)
    problems: list[vp.Problem] = field(default_factory=list)  # the limits', the server's

    def all_problems(self) -> list[vp.Problem]:
        """What the reader could not map, then every refusal and note of the importer."""
        found = self.server.all_problems() + list(self.problems)
        for dp in self.domains:
            if dp.state == State.SKIP:
                found.append(vp.Problem(rel(self.server, dp.source.path), dp.name, dp.why))
            found += dp.problems
            found += [vp.Problem(i.where, f"{i.kind} {i.name}", i.why) for i in dp.items
                      if i.state in (State.SKIP, State.DIFFERS)]
        return found


@dataclass
class Report:
    created: Counter[str] = field(default_factory=Counter)
    present: Counter[str] = field(default_factory=Counter)
    problems: list[vp.Problem] = field(default_factory=list)  # the plan's, then the refusals while writing
    planned: int = 0  # how many of `problems` the plan had
    # Per domain created into: (address, the Maildir's path under ROOT) of each POP account created.
    maildirs: list[tuple[Domain, list[tuple[str, Path]]]] = field(default_factory=list)


def rel(server: vp.Server, path: Path | None) -> str:
    """`path` relative to the server's ROOT ("" when none or outside it)."""
    if path is None:
        return ""
    if not path.is_absolute():
        return str(path)
    try:
        return str(path.relative_to(server.root))
    except ValueError:
        return ""


def inside(server: vp.Server, path: Path | None) -> bool:
    """Whether `path` is under ROOT once resolved (links followed): a hostile tree's paths never
    reach the mail copy otherwise."""
    if path is None:
        return False
    try:
        path.resolve().relative_to(server.root.resolve())
    except (ValueError, OSError):
        return False
    return True


def _message(error: ValidationError) -> str:
    return " ".join(error.messages)


def _address(value: str) -> str:
    """`value` normalised when it is an address, else as it is (for comparing)."""
    try:
        return normalize_address(value)
    except ValidationError:
        return value.strip().lower()


# What each source object becomes in the panel's terms.

def quota_mb(mailbox: vp.Mailbox, pack: Pack) -> tuple[int | None, str]:
    """A POP account's quota in whole MB (None: the plan's default), and a note when it changed."""
    if mailbox.quota_bytes is None:
        if pack.plan.total_quota_mb:
            return None, "no quota on the old server; this pack has no unlimited quota: the plan's default given"
        return 0, ""
    megabytes = max(math.ceil(mailbox.quota_bytes / (1024 * 1024)), 1)
    if megabytes > MAX_QUOTA_MB:
        return MAX_QUOTA_MB, f"quota of {mailbox.quota_bytes} bytes: the panel's largest ({MAX_QUOTA_MB} MB) given"
    return megabytes, ""


def vacation_days(vacation: vp.Vacation) -> int:
    if not vacation.reply_seconds:
        return 1
    return min(max(math.ceil(vacation.reply_seconds / 86400), 1), 365)


def reply_hours(robot: vp.Robot) -> int:
    if not robot.reply_seconds:
        return ROBOT_REPLY_HOURS_DEFAULT
    return min(max(math.ceil(robot.reply_seconds / 3600), ROBOT_REPLY_HOURS_MIN), ROBOT_REPLY_HOURS_MAX)


def hash_kept(password_hash: str) -> bool:
    """Whether the source's hash is stored as it is (a scheme Dovecot verifies, well formed)."""
    scheme, _value = split_scheme(password_hash or "")
    return bool(HASH_RE.match(password_hash or "")) and scheme in VERIFIED_SCHEMES | HOST_ONLY_SCHEMES


def unusable_hash() -> str:
    """A well-formed hash no password opens (a random secret's, forgotten): an account whose old
    password cannot be kept still receives its mail; its admin gives it a password."""
    return "{SHA512-CRYPT}" + sha512_crypt.using(rounds=1000).hash(secrets.token_urlsafe(32))


def new_mailbox(mailbox: vp.Mailbox, pack: Pack, *, hashed: bool = True) -> bulkimport.NewMailbox:
    """The account to create (`hashed`: with its unusable hash made, when its own cannot be kept)."""
    quota, _note = quota_mb(mailbox, pack)
    routing = Routing.STANDARD
    if mailbox.delete_all:
        routing = Routing.DELETE
    elif mailbox.forward_to:
        routing = Routing.FORWARD
    vacation = mailbox.vacation
    return bulkimport.NewMailbox(
        local_part=mailbox.local_part,
        password_hash=mailbox.password_hash if hash_kept(mailbox.password_hash) else unusable_hash() if hashed else "",
        real_name=mailbox.real_name, quota_mb=quota, is_admin=mailbox.is_admin or mailbox.local_part == POSTMASTER,
        allow_pop3=mailbox.allow_pop3, allow_imap=mailbox.allow_imap, allow_smtp=mailbox.allow_smtp,
        routing=routing, forward_to=list(mailbox.forward_to) if routing == Routing.FORWARD else [],
        keep_copy=mailbox.keep_copy and routing == Routing.FORWARD,
        vacation_enabled=vacation is not None, vacation_subject=vacation.subject if vacation else "",
        vacation_message=vacation.message if vacation else "", vacation_days=vacation_days(vacation) if vacation else 1,
    )


def _differences(current: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    return [name for name, value in wanted.items() if current.get(name) != value]


def mailbox_differences(row: Mailbox, mailbox: vp.Mailbox, pack: Pack) -> list[str]:
    new = new_mailbox(mailbox, pack, hashed=False)
    wanted: dict[str, Any] = {
        "real_name": new.real_name.strip(), "is_admin": new.is_admin, "allow_pop3": new.allow_pop3,
        "allow_imap": new.allow_imap, "allow_smtp": new.allow_smtp, "routing": new.routing,
        "forward_to": [_address(a) for a in new.forward_to], "keep_copy": new.keep_copy,
        "vacation_enabled": new.vacation_enabled,
    }
    if new.quota_mb is not None:
        wanted["quota_mb"] = new.quota_mb
    if new.vacation_enabled:
        wanted |= {"vacation_subject": new.vacation_subject.strip(), "vacation_message": new.vacation_message.strip()}
    current = {name: getattr(row, name) for name in wanted}
    found = _differences(current, wanted)
    # A hash of the panel's own scheme is the old one upgraded at a login: the same password.
    if (hash_kept(mailbox.password_hash) and row.password_hash != mailbox.password_hash
            and split_scheme(row.password_hash)[0] != SCHEME):
        found.append("password")
    return found


def robot_differences(row: Robot, robot: vp.Robot) -> list[str]:
    wanted = {"subject": robot.subject.strip(), "message": robot.message.strip(),
              "copy_to": _address(robot.copy_to) if robot.copy_to.strip() else "", "reply_hours": reply_hours(robot)}
    return _differences({name: getattr(row, name) for name in wanted}, wanted)


def forward_differences(row: Forward, forward: vp.Forward) -> list[str]:
    wanted = [] if forward.discard else [_address(a) for a in forward.destinations]
    return [] if row.destinations == wanted else ["destinations"]


def list_owner(ml: vp.MailingList, domain_name: str) -> str:
    return ml.owner.strip() or f"{POSTMASTER}@{domain_name}"


def list_settings(ml: vp.MailingList) -> dict[str, Any]:
    """The source's options the panel knows (`lists.options`); the owner apart."""
    return {name: value for name, value in ml.options.items() if name in list_options.NAMES and name != "owner"}


def source_members(ml: vp.MailingList) -> dict[str, list[str]]:
    return {MemberKind.SUBSCRIBER: ml.subscribers, MemberKind.MODERATOR: ml.moderators,
            MemberKind.DIGEST: ml.digest_subscribers}


def _as_stored(name: str, value: Any) -> Any:
    """A list option's value as the service stores it (`lists.services`: texts stripped, CRLF as
    LF; the reply address normalised)."""
    if not isinstance(value, str):
        return value
    if name == "reply_to_address":
        return _address(value) if value.strip() else ""
    return value.replace("\r\n", "\n").strip()


def list_differences(row: MailingList, ml: vp.MailingList, domain_name: str) -> list[str]:
    found = [name for name, value in list_settings(ml).items() if getattr(row, name) != _as_stored(name, value)]
    if row.owner != _address(list_owner(ml, domain_name)):
        found.append("owner")
    texts = {name: _as_stored(name, text) for name, text in ml.texts.items() if text.strip()}
    if {name: row.texts.get(name) for name in texts} != texts:
        found.append("texts")
    there = set(ListMember.objects.filter(mailing_list=row).values_list("kind", "address"))
    valid, _invalid = list_bulk.valid_members(row, source_members(ml))  # the invalid ones were never added
    for kind, addresses in valid.items():
        if any((kind, address) not in there for address in addresses):
            found.append(f"{kind} members")
    return found


def catchall_wanted(catchall: vp.CatchAll | None, domain_name: str) -> tuple[str, str]:
    if catchall is None:
        return CatchAllMode.BOUNCE, ""
    target = catchall.target.strip()
    if catchall.mode == CatchAllMode.REMOTE:
        target = _address(target)
    elif catchall.mode == CatchAllMode.MAILBOX:
        target = target.partition("@")[0].lower()
    elif catchall.mode == CatchAllMode.DOMAIN:
        target = target.lower().rstrip(".")
    else:
        target = ""
    return catchall.mode, target


# Chains: the panel refuses a destination that sends its mail on again (`mail.routing_rules`); a
# vpopmail server has them (a forward to a forward, to a POP account that forwards without keeping
# a copy; a robot copying to a forward). Each is replaced by the final addresses before anything is
# written, so the mail goes where it went on the old server.

CHAIN_NOTE = "forwards again: replaced by its final address(es)"


@dataclass
class _Flat:
    destinations: list[str]  # the final addresses, in order, without duplicates
    replaced: list[tuple[str, list[str]]] = field(default_factory=list)  # (a destination, its final addresses)
    refusal: str = ""  # a cycle: the redirect cannot be made
    copying_robots: list[str] = field(default_factory=list)  # destinations the panel refuses (robots with a copy)


class _Cycle(Exception):
    def __init__(self, trail: list[str]) -> None:
        super().__init__(" → ".join(trail))
        self.trail = trail


class _Chains:
    """Where each name of the import's domains and of the pack's domains sends its mail on. Only
    those: a domain the panel holds for another pack (another customer's) is never read, from the
    panel nor from the source; its addresses are final, as another server's.

    A name of a domain the pack has is the panel's (a later run compares with what is there);
    otherwise the source's. Redirects: a forward (its destinations; none: it drops the mail) and a
    POP account forwarding without keeping a copy (its forward_to; none: deleted). Final: a POP
    account that keeps its mail (or a copy), a list, a robot, a name the domain does not have
    (`name+tag`: `name`'s when it is not a name itself). A robot that copies its mail on cannot
    be a destination in the panel: it is left as it is and noted."""

    def __init__(self, server: vp.Server, pack: Pack) -> None:
        self.alias_to: dict[str, str] = {}  # an alias domain's name → its target's
        self.names: dict[tuple[str, str], list[str] | None] = {}  # (domain, name) → onward (None: final)
        self.copying: set[tuple[str, str]] = set()  # robots with a copy
        self._robots: list[tuple[str, vp.Robot]] = []  # the source's robots with a copy (domain, robot)
        self._memo: dict[tuple[str, str], tuple[list[str], list[str]]] = {}  # key → (finals, copying robots)
        self.alias_to = dict(Domain.objects.filter(pack=pack, alias_of__isnull=False).values_list(
            "name", "alias_of__name"))
        self._panel(pack)
        for src in server.domains:
            name, _why = _domain_name(src.name)
            if not name:
                continue
            state, _why, _existing = _name_refusal(name, pack, None, alias=False)
            if state == State.SKIP:
                continue
            for alias in src.aliases:
                alias_name, _why = _domain_name(alias)
                if alias_name and _name_refusal(alias_name, pack, None, alias=True)[0] == State.CREATE:
                    self.alias_to[alias_name] = name
            self._source(src, name)
        # A robot whose copy cannot be kept (it leads to several addresses, or loops) is made without
        # it: a final destination then, as any robot without copy.
        for domain_name, robot in self._robots:
            if not self.robot(robot, domain_name, []).copy_to:
                self.copying.discard((domain_name, robot.local_part.lower()))
        self._memo.clear()

    def _panel(self, pack: Pack) -> None:
        for host, local, destinations in Forward.objects.filter(domain__pack=pack).values_list(
                "domain__name", "local_part", "destinations"):
            self.names[(host, local)] = list(destinations)
        for host, local, routing, keep, forward_to in Mailbox.objects.filter(domain__pack=pack).values_list(
                "domain__name", "local_part", "routing", "keep_copy", "forward_to"):
            self.names[(host, local)] = list(forward_to) if (routing, keep) == (Routing.FORWARD, False) else None
        for host, local, copy_to in Robot.objects.filter(domain__pack=pack).values_list(
                "domain__name", "local_part", "copy_to"):
            self.names[(host, local)] = None
            if copy_to:
                self.copying.add((host, local))
        for host, local in MailingList.objects.filter(domain__pack=pack).values_list("domain__name", "name"):
            self.names[(host, local)] = None

    def _source(self, src: vp.Domain, name: str) -> None:
        def put(local: str, onward: list[str] | None) -> bool:
            """Whether the name is this object's (the panel's object, or the source's first, has it)."""
            if (name, local.lower()) in self.names:
                return False
            self.names[(name, local.lower())] = onward
            return True

        for mailbox in src.mailboxes:
            forwards = mailbox.forward_to and not mailbox.keep_copy and not mailbox.delete_all
            put(mailbox.local_part, self.qualified(mailbox.forward_to, name) if forwards else None)
        for robot in src.robots:
            if put(robot.local_part, None) and robot.copy_to.strip():
                self.copying.add((name, robot.local_part.lower()))
                self._robots.append((name, robot))
        for ml in src.lists:
            put(ml.name, None)
        for forward in src.forwards:
            put(forward.local_part, [] if forward.discard else self.qualified(forward.destinations, name))

    @staticmethod
    def qualified(addresses: list[str], domain_name: str) -> list[str]:
        """The addresses normalised; a bare name is a name of `domain_name` (as the panel reads it)."""
        return [_address(a if "@" in a else f"{a.strip()}@{domain_name}") for a in addresses if a.strip()]

    def key(self, address: str) -> tuple[str, str]:
        local, _at, host = address.rpartition("@")
        host = self.alias_to.get(host, host)
        if (host, local) not in self.names and "+" in local and (host, local.split("+", 1)[0]) in self.names:
            local = local.split("+", 1)[0]
        return host, local

    def flatten(self, destinations: list[str], *, start: str) -> _Flat:
        """`destinations` of the redirect `start` (an address), each replaced by its final addresses."""
        flat = _Flat(destinations=[])
        for address in destinations:
            try:
                finals = self._walk(address, [start], flat)
            except _Cycle as cycle:
                flat.refusal = f"its mail would go round a loop ({cycle}): not kept"
                return flat
            if finals != [address]:
                flat.replaced.append((address, finals))
            flat.destinations += [a for a in finals if a not in flat.destinations]
        return flat

    def _walk(self, address: str, trail: list[str], flat: _Flat) -> list[str]:
        key = self.key(address)
        if key in {self.key(a) for a in trail}:
            raise _Cycle([*trail, address])
        if key in self.copying and address not in flat.copying_robots:
            flat.copying_robots.append(address)
        onward = self.names.get(key)
        if onward is None:
            return [address]
        if key in self._memo:
            finals, robots = self._memo[key]
            flat.copying_robots += [a for a in robots if a not in flat.copying_robots]
            return finals
        finals, seen = [], len(flat.copying_robots)
        for destination in onward:
            finals += [a for a in self._walk(destination, [*trail, address], flat) if a not in finals]
        self._memo[key] = finals, flat.copying_robots[seen:]
        return finals

    def forward(self, forward: vp.Forward, domain_name: str, notes: list[str]) -> tuple[vp.Forward, str]:
        """The source's forward with its destinations flattened, and why it cannot be made ("": it can)."""
        if forward.discard:
            return forward, ""
        start = f"{forward.local_part.lower()}@{domain_name}"
        flat = self.flatten(self.qualified(forward.destinations, domain_name), start=start)
        self._notes(flat, notes)
        if flat.refusal:
            return forward, flat.refusal
        if not flat.replaced:
            return forward, ""
        if len(flat.destinations) > services.MAX_DESTINATIONS:
            return forward, (f"its chains lead to {len(flat.destinations)} final addresses: the panel allows "
                             f"{services.MAX_DESTINATIONS} a forward; not kept")
        return replace(forward, destinations=flat.destinations, discard=not flat.destinations), ""

    def mailbox(self, mailbox: vp.Mailbox, domain_name: str, notes: list[str]) -> vp.Mailbox:
        """The source's POP account with its forwarding flattened (when it forwards). A loop or too
        many addresses: left as it is, noted (the service creates it without its forwarding)."""
        if not mailbox.forward_to or mailbox.delete_all:
            return mailbox
        start = f"{mailbox.local_part.lower()}@{domain_name}"
        flat = self.flatten(self.qualified(mailbox.forward_to, domain_name), start=start)
        self._notes(flat, notes)
        if flat.refusal:
            notes.append(f"{flat.refusal.removesuffix(': not kept')}: created without its forwarding")
            return mailbox
        if not flat.replaced:
            return mailbox
        if len(flat.destinations) > services.MAX_DESTINATIONS:
            notes.append(f"its chains lead to {len(flat.destinations)} final addresses: the panel allows "
                         f"{services.MAX_DESTINATIONS}; created without its forwarding")
            return mailbox
        if not flat.destinations:  # every destination drops the mail
            return replace(mailbox, forward_to=[], delete_all=not mailbox.keep_copy)
        return replace(mailbox, forward_to=flat.destinations)

    def robot(self, robot: vp.Robot, domain_name: str, notes: list[str]) -> vp.Robot:
        """The source's robot with its copy flattened: one final address, that one; none, several,
        or a loop: created without its copy, noted."""
        if not robot.copy_to.strip():
            return robot
        start = f"{robot.local_part.lower()}@{domain_name}"
        flat = self.flatten(self.qualified([robot.copy_to], domain_name), start=start)
        self._notes(flat, notes)
        if flat.refusal:
            notes.append(f"{flat.refusal.removesuffix(': not kept')}: created without its copy")
            return replace(robot, copy_to="")
        if not flat.replaced:
            return robot
        if len(flat.destinations) == 1:
            return replace(robot, copy_to=flat.destinations[0])
        notes.append(f"its copy went to {', '.join(flat.destinations) or 'no address (dropped)'}: a robot copies "
                     "to one address in the panel; created without its copy")
        return replace(robot, copy_to="")

    @staticmethod
    def _notes(flat: _Flat, notes: list[str]) -> None:
        for address, finals in flat.replaced:
            notes.append(f"{address} → {', '.join(finals) or 'nothing (its mail is dropped)'} ({CHAIN_NOTE})")
        for address in flat.copying_robots:
            notes.append(f"{address} is a robot that copies its mail on: the panel refuses it as a destination")


# The plan.

class _Room:
    """What the pack (and its reseller's pool) can still take, spent domain by domain."""

    def __init__(self, pack: Pack) -> None:
        plan = pack.plan
        self.pack = pack
        in_pack = Domain.objects.filter(pack=pack)
        mailboxes = Mailbox.objects.filter(domain__pack=pack)
        self.left: dict[str, int | None] = {
            "domains": self._left(plan.max_domains, in_pack.filter(alias_of__isnull=True).count()),
            "alias domains": self._left(plan.max_alias_domains, in_pack.filter(alias_of__isnull=False).count()),
            "POP accounts": self._left(plan.max_mailboxes, mailboxes.count()),
            "forwards": self._left(plan.max_forwards, Forward.objects.filter(domain__pack=pack).count()),
            "robots": self._left(plan.max_robots, Robot.objects.filter(domain__pack=pack).count()),
            "mailing lists": self._left(plan.max_lists, MailingList.objects.filter(domain__pack=pack).count()),
            "total quota (MB)": (plan.total_quota_mb - (mailboxes.aggregate(s=Sum("quota_mb"))["s"] or 0)
                                 if plan.total_quota_mb else None),
        }
        reseller = pack.customer.reseller
        if reseller is not None:
            self.left["domains of the reseller"] = self._left(
                reseller.max_domains, Domain.objects.filter(pack__customer__reseller=reseller,
                                                            alias_of__isnull=True).count())
            self.left["POP accounts of the reseller"] = self._left(
                reseller.max_mailboxes, Mailbox.objects.filter(domain__pack__customer__reseller=reseller).count())

    @staticmethod
    def _left(limit: int, used: int) -> int | None:
        return None if limit == UNLIMITED else max(limit - used, 0)

    def take(self, wanted: dict[str, int]) -> str:
        """Spend `wanted` when all of it fits and return ""; else spend nothing and say what does not fit."""
        short = [f"{n} new {what} (room for {self.left[what]})" for what, n in wanted.items()
                 if n and self.left.get(what) is not None and n > (self.left[what] or 0)]
        if short:
            return "the pack cannot hold this domain: " + ", ".join(short)
        for what, n in wanted.items():
            if self.left.get(what) is not None:
                self.left[what] = (self.left[what] or 0) - n
        return ""


def _domain_name(name: str) -> tuple[str, str]:
    """The panel's name of a source domain, or "" and why it cannot be one."""
    try:
        ascii_name = normalize_hosted_domain(name)
    except ValidationError as error:
        return "", _message(error)
    if ascii_name != name:
        return "", f"the panel reads this name as {ascii_name}: not imported under another name"
    return ascii_name, ""


def _name_refusal(name: str, pack: Pack, target: Domain | None, *, alias: bool) -> tuple[State, str, Domain | None]:
    """Whether the panel can take `name` into `pack` (as an alias of `target` when `alias`):
    CREATE, PRESENT (already there, as such) or SKIP with why. Never touches what is there."""
    existing = Domain.objects.filter(name=name).first()
    if existing is not None:
        if existing.pack_id != pack.pk:
            return State.SKIP, "the panel already hosts this domain in another pack: left as it is", None
        if alias and (target is None or existing.alias_of_id != target.pk):
            return State.SKIP, "the panel already has this name in the pack, not as an alias of this domain", None
        if not alias and existing.alias_of_id is not None:
            return State.SKIP, "the panel already has this name in the pack as an alias domain", None
        return State.PRESENT, "", existing
    for parent, customer_id in Domain.objects.filter(name__in=parent_names(name)).values_list(
            "name", "pack__customer_id"):
        if customer_id != pack.customer_id:
            return State.SKIP, f"this name is under {parent}, which another customer holds", None
    return State.CREATE, "", None


def _claim(claimed: dict[str, str], local: str, kind: Kind) -> str:
    """Claim `local` in the domain for `kind`; why not when another object of the source has it."""
    holder = claimed.get(local)
    if holder is not None:
        return f"{local} is also a {holder} of the source: the panel gives a name to one object only"
    claimed[local] = kind
    return ""


def plan(server: vp.Server, pack: Pack) -> Plan:
    """What importing `server` into `pack` would do (module), read from the panel without writing."""
    pack = Pack.objects.select_related("plan", "customer__reseller", "mail_host").get(pk=pack.pk)
    result = Plan(server=server, pack=pack)
    room = _Room(pack)
    chains = _Chains(server, pack)
    names_seen: set[str] = set()
    for src in server.domains:
        result.domains.append(_plan_domain(server, pack, src, room, names_seen, chains))
    return result


def _plan_domain(server: vp.Server, pack: Pack, src: vp.Domain, room: _Room,
                 names_seen: set[str], chains: _Chains) -> DomainPlan:
    where = rel(server, src.path)
    name, why = _domain_name(src.name)
    if not name:
        return DomainPlan(source=src, name=src.name, state=State.SKIP, why=why)
    if name in names_seen:
        return DomainPlan(source=src, name=name, state=State.SKIP, why="this domain is twice in the source")
    names_seen.add(name)
    state, why, domain = _name_refusal(name, pack, None, alias=False)
    dp = DomainPlan(source=src, name=name, state=state, why=why, domain=domain)
    if state == State.SKIP:
        return dp
    _limits_notes(dp, pack, where)
    for alias in src.aliases:
        alias_name, why = _domain_name(alias)
        if alias_name and alias_name in names_seen:
            why = "this name is twice in the source"
        elif alias_name:
            names_seen.add(alias_name)
            state, why, _existing = _name_refusal(alias_name, pack, domain, alias=True)
            dp.items.append(Item(Kind.ALIAS, alias_name, state, why, where))
            continue
        dp.items.append(Item(Kind.ALIAS, alias or "?", State.SKIP, why, where))
    _plan_objects(server, dp, pack, chains)
    if dp.state == State.CREATE and not any(i.name == POSTMASTER for i in dp.of(Kind.MAILBOX, State.CREATE)):
        dp.problems.append(vp.Problem(where, name, "no postmaster account in the source: the domain has "
                                      "no admin account until one is created in the panel"))
    if hostmaster_required(name) and not any(i.name == "hostmaster" for i in dp.of(Kind.MAILBOX)) and (
            domain is None or not Mailbox.objects.filter(domain=domain, local_part="hostmaster").exists()):
        dp.problems.append(vp.Problem(where, name, "a .fr domain needs a hostmaster account (the .fr registry "
                                      "checks it): none in the source, create it in the panel"))
    new = dp.counts()
    new_quota = sum(quota_mb(i.obj, pack)[0] or pack.plan.default_quota_mb
                    for i in dp.of(Kind.MAILBOX, State.CREATE))
    wanted = {
        "domains": int(dp.state == State.CREATE), "alias domains": new[(Kind.ALIAS, State.CREATE)],
        "POP accounts": new[(Kind.MAILBOX, State.CREATE)], "forwards": new[(Kind.FORWARD, State.CREATE)],
        "robots": new[(Kind.ROBOT, State.CREATE)], "mailing lists": new[(Kind.LIST, State.CREATE)],
        "total quota (MB)": new_quota,
        "domains of the reseller": int(dp.state == State.CREATE),
        "POP accounts of the reseller": new[(Kind.MAILBOX, State.CREATE)],
    }
    refusal = room.take(wanted) or _members_refusal(dp, pack)
    if refusal:
        dp.state, dp.why = State.SKIP, refusal
    return dp


def _members_refusal(dp: DomainPlan, pack: Pack) -> str:
    """Why the domain is refused when one of its new lists has more members than the plan lets a
    list have (its owner, whom the panel subscribes, counted)."""
    limit = pack.plan.max_list_members
    if limit == UNLIMITED:
        return ""
    for item in dp.of(Kind.LIST, State.CREATE):
        ml: vp.MailingList = item.obj
        count = sum(len(set(addresses)) for addresses in source_members(ml).values())
        count += _address(list_owner(ml, dp.name)) not in {_address(a) for a in ml.subscribers}
        if count > limit:
            return f"the mailing list {item.name} has {count} members: the pack's plan allows {limit} a list"
    return ""


def _limits_notes(dp: DomainPlan, pack: Pack, where: str) -> None:
    """The old server's limits for the domain against the pack's plan: what the plan allows less
    of is noted (the plan rules from now on)."""
    limits, plan_ = dp.source.limits, pack.plan
    for what, old, new in (("POP accounts", limits.max_mailboxes, plan_.max_mailboxes),
                           ("forwards", limits.max_forwards, plan_.max_forwards),
                           ("robots", limits.max_robots, plan_.max_robots),
                           ("mailing lists", limits.max_lists, plan_.max_lists)):
        if old is not None and new != UNLIMITED and (old == UNLIMITED or old > new):
            shown = "unlimited" if old == UNLIMITED else str(old)
            dp.problems.append(vp.Problem(where, f"{what}: {shown}", f"the old server allowed {shown} {what}; "
                                          f"the pack's plan allows {new}"))
    if limits.default_quota_mb is not None and limits.default_quota_mb != plan_.default_quota_mb:
        dp.problems.append(vp.Problem(
            where, f"default quota: {limits.default_quota_mb} MB", f"new POP accounts get the plan's default "
            f"({plan_.default_quota_mb} MB) from now on"))


def _plan_objects(server: vp.Server, dp: DomainPlan, pack: Pack, chains: _Chains) -> None:
    src, domain, name = dp.source, dp.domain, dp.name
    where = rel(server, src.path)
    claimed: dict[str, str] = {}
    panel: dict[Kind, dict[str, Any]] = {kind: {} for kind in Kind}
    if domain is not None:
        panel[Kind.MAILBOX] = {m.local_part: m for m in Mailbox.objects.filter(domain=domain)}
        panel[Kind.ROBOT] = {r.local_part: r for r in Robot.objects.filter(domain=domain)}
        panel[Kind.FORWARD] = {f.local_part: f for f in Forward.objects.filter(domain=domain)}
        panel[Kind.LIST] = {ml.name: ml for ml in MailingList.objects.filter(domain=domain)}
    list_names = {ml.name for ml in src.lists} | set(panel[Kind.LIST])
    list_addresses = {sub for ln in list_names for sub in list_sub_addresses(ln)}

    def add(kind: Kind, obj: Any, local: str, item_where: str, differences: Callable[[Any], list[str]],
            notes: list[str] | None = None, refusal: str = "") -> None:
        item = _item(kind, obj, local, item_where, differences)
        if item.state == State.CREATE:  # what a chain changed, said of what is written only
            dp.problems += [vp.Problem(item_where, item.name, note) for note in notes or []]
            if refusal:
                item.state, item.why = State.SKIP, refusal
        dp.items.append(item)

    def _item(kind: Kind, obj: Any, local: str, item_where: str, differences: Callable[[Any], list[str]]) -> Item:
        try:
            local = normalize_local_part(local)
        except ValidationError as error:
            return Item(kind, local, State.SKIP, _message(error), item_where, obj)
        why = _claim(claimed, local, kind)
        if why:
            return Item(kind, local, State.SKIP, why, item_where, obj)
        row = panel[kind].get(local)
        if row is not None:
            found = differences(row)
            state = State.DIFFERS if found else State.PRESENT
            why = f"the panel's differs in: {', '.join(found)}; left as the panel has it" if found else ""
            return Item(kind, local, state, why, item_where, obj)
        holder = next((str(k) for k, rows in panel.items() if k != kind and local in rows), None)
        if holder is None and kind != Kind.LIST and (local in list_addresses or list_bases(local) & list_names):
            holder = "mailing list's address"
        if holder is not None:
            return Item(kind, local, State.SKIP, f"the panel's domain has {local} as a {holder}", item_where, obj)
        return Item(kind, local, State.CREATE, "", item_where, obj)

    for mailbox in src.mailboxes:
        item_where = rel(server, mailbox.home) or where
        notes: list[str] = []
        mailbox = chains.mailbox(mailbox, name, notes)
        add(Kind.MAILBOX, mailbox, mailbox.local_part, item_where,
            partial(mailbox_differences, mailbox=mailbox, pack=pack), notes)
        _mailbox_notes(dp, mailbox, item_where, pack)
    for robot in src.robots:
        notes = []
        robot = chains.robot(robot, name, notes)
        add(Kind.ROBOT, robot, robot.local_part, where, partial(robot_differences, robot=robot), notes)
    for ml in src.lists:
        add(Kind.LIST, ml, ml.name, rel(server, ml.path) or where, partial(list_differences, ml=ml, domain_name=name))
    for forward in src.forwards:  # one of comments only (`discard`): a forward without destination
        notes = []
        forward, refusal = chains.forward(forward, name, notes)
        add(Kind.FORWARD, forward, forward.local_part, where, partial(forward_differences, forward=forward),
            notes, refusal)
    mode, target = catchall_wanted(src.catchall, name)
    current = CatchAll.objects.filter(domain=domain).values_list("mode", "target").first() if domain else None
    current = current or (CatchAllMode.BOUNCE, "")
    if (mode, target) == tuple(current):
        if domain is None:
            return  # a new domain bounces unknown names already: nothing to do, nothing to show
        state, why = State.PRESENT, ""
    elif domain is not None and current != (CatchAllMode.BOUNCE, ""):
        state, why = State.DIFFERS, f"the panel's is {current[0]} {current[1]}: left as the panel has it"
    else:
        state, why = State.CREATE, ""
    dp.items.append(Item(Kind.CATCHALL, f"{mode} {target}".strip(), state, why, where, src.catchall))


def _mailbox_notes(dp: DomainPlan, mailbox: vp.Mailbox, where: str, pack: Pack) -> None:
    """What of a POP account the panel keeps otherwise, noted."""
    scheme, _value = split_scheme(mailbox.password_hash or "")
    who = mailbox.local_part
    if not hash_kept(mailbox.password_hash):
        dp.problems.append(vp.Problem(where, who, "no usable password hash (empty, clear text or an unknown "
                                      "scheme): the account is created with a password nobody knows; set one "
                                      "in the panel"))
    elif scheme in HOST_ONLY_SCHEMES:
        dp.problems.append(vp.Problem(where, who, f"{scheme} hash kept: mail clients log in, the panel's login "
                                      "cannot check it until the password is set again"))
    _quota, note = quota_mb(mailbox, pack)
    if note:
        dp.problems.append(vp.Problem(where, who, note))
    if mailbox.quota_messages is not None:
        dp.problems.append(vp.Problem(where, who, f"a limit of {mailbox.quota_messages} messages: the panel has "
                                      "no message quota"))
    sender = _address(mailbox.vacation.sender) if mailbox.vacation is not None and mailbox.vacation.sender else ""
    if sender and sender != f"{who}@{dp.name}":
        dp.problems.append(vp.Problem(where, who, "the vacation reply's From is the account's own address in "
                                      f"the panel, not {sender}"))
    if mailbox.delete_all and mailbox.forward_to:
        dp.problems.append(vp.Problem(where, who, "deletes all its mail: its forwards are not kept"))


# The run.

def run(plan_: Plan, *, progress: Callable[[str], None] | None = None) -> Report:
    """Write what `plan_` says (module), domain after domain; a refusal of a service is reported
    and the rest goes on. `progress(line)` tells how far it is."""
    say = progress or (lambda line: None)
    report = Report(problems=plan_.all_problems())
    report.planned = len(report.problems)
    total = len([dp for dp in plan_.domains if dp.state != State.SKIP])
    done = 0
    for dp in plan_.domains:
        if dp.state == State.SKIP:
            continue
        done += 1
        say(f"[{done}/{total}] {dp.name}: {len(dp.of(Kind.MAILBOX, State.CREATE))} POP account(s) to create")
        try:
            _run_domain(plan_, dp, report, say)
        except ValidationError as error:
            report.problems.append(vp.Problem(rel(plan_.server, dp.source.path), dp.name,
                                              f"not imported: {_message(error)}"))
    return report


def _problem(report: Report, item: Item, error: ValidationError | str) -> None:
    why = _message(error) if isinstance(error, ValidationError) else error
    report.problems.append(vp.Problem(item.where, f"{item.kind} {item.name}", why))


def _run_domain(plan_: Plan, dp: DomainPlan, report: Report, say: Callable[[str], None]) -> None:
    server, pack = plan_.server, plan_.pack
    if dp.state == State.CREATE:
        domain = domain_services.domain_create(pack=pack, name=dp.name, acting_user=None)
        report.created["domains"] += 1
    else:
        assert dp.domain is not None
        domain = Domain.objects.select_related("pack__plan", "pack__customer").get(pk=dp.domain.pk)
        report.present["domains"] += 1
    if domain.verified_at is None:
        domain_services.domain_verify(domain=domain, how=VerifiedHow.IMPORT, acting_user=None)
    for item in dp.items:
        if item.state == State.PRESENT:
            report.present[item.kind] += 1
    for item in dp.of(Kind.ALIAS, State.PRESENT):  # an earlier run stopped before proving it
        alias = Domain.objects.filter(name=item.name, alias_of=domain, verified_at__isnull=True).first()
        if alias is not None:
            domain_services.domain_verify(domain=alias, how=VerifiedHow.IMPORT, acting_user=None)
    for item in dp.of(Kind.ALIAS, State.CREATE):
        try:
            domain_services.alias_domain_create(domain=domain, name=item.name, acting_user=None,
                                                verified_how=VerifiedHow.IMPORT)
            report.created[item.kind] += 1
        except ValidationError as error:
            _problem(report, item, error)
    _run_mailboxes(server, domain, dp, report, say)
    for item in dp.of(Kind.ROBOT, State.CREATE):
        robot: vp.Robot = item.obj
        try:
            services.robot_create(domain=domain, local_part=item.name, subject=robot.subject, message=robot.message,
                                  copy_to=robot.copy_to, reply_hours=reply_hours(robot), acting_user=None)
            report.created[item.kind] += 1
        except ValidationError as error:
            _problem(report, item, error)
    for item in dp.of(Kind.LIST, State.CREATE):
        _run_list(domain, item, report)
    forwards = {item.name: item for item in dp.of(Kind.FORWARD, State.CREATE)}
    if forwards:
        try:
            result = bulkimport.forwards_import(domain=domain, acting_user=None, source=SOURCE, forwards=[
                (name, [] if item.obj.discard else list(item.obj.destinations)) for name, item in forwards.items()])
        except ValidationError as error:
            for item in forwards.values():
                _problem(report, item, error)
        else:
            report.created[Kind.FORWARD] += len(result.created)
            for name, why in result.refused.items():
                _problem(report, forwards[name], why)
    for item in dp.of(Kind.CATCHALL, State.CREATE):
        mode, target = catchall_wanted(dp.source.catchall, domain.name)
        try:
            services.catchall_set(domain=domain, mode=mode, target=target, acting_user=None)
            report.created[item.kind] += 1
        except ValidationError as error:
            _problem(report, item, error)


def _run_mailboxes(server: vp.Server, domain: Domain, dp: DomainPlan, report: Report,
                   say: Callable[[str], None]) -> None:
    items = dp.of(Kind.MAILBOX, State.CREATE)
    created: list[str] = []
    if items:
        created = _create_mailboxes(domain, items, report, say)
    # The mail copy: every account of the source the panel has, created now or by an earlier run.
    # Asked again at each run: the host's copy is idempotent (nothing copied twice), so a later run
    # brings what reached the old server meanwhile, or what a run with --no-mail left behind.
    there = {i.name: i for i in dp.items if i.kind == Kind.MAILBOX and i.state in (State.PRESENT, State.DIFFERS)}
    made = set(created)
    candidates = [*[(i.name, i) for i in items if i.name in made], *there.items()]
    copies: list[tuple[str, Path]] = []
    for local, item in candidates:
        mailbox: vp.Mailbox = item.obj
        address = f"{local}@{domain.name}"
        if mailbox.maildir is None:
            continue
        if not inside(server, mailbox.maildir):
            _problem(report, item, "its Maildir is outside ROOT: its mail is not copied")
            continue
        copies.append((address, mailbox.maildir))
    if copies:
        report.maildirs.append((domain, copies))


def _create_mailboxes(domain: Domain, items: list[Item], report: Report, say: Callable[[str], None]) -> list[str]:
    by_name = {item.name: item for item in items}
    rows = [new_mailbox(item.obj, domain.pack) for item in items]  # hashes made here: before any lock
    for row, item in zip(rows, items, strict=True):
        row.local_part = item.name

    def batch_done(count: int) -> None:
        say(f"  {domain.name}: {count}/{len(rows)} POP accounts written")

    result = bulkimport.mailboxes_import(domain=domain, mailboxes=rows, acting_user=None, source=SOURCE,
                                         progress=batch_done if len(rows) >= PROGRESS_EVERY else None)
    report.created[Kind.MAILBOX] += len(result.created)
    for local, why in result.refused.items():
        _problem(report, by_name.get(local) or Item(Kind.MAILBOX, local, State.SKIP), why)
    for local, why in result.routing_refused.items():
        _problem(report, by_name[local], f"created without its forwarding: {why}")
    return result.created


def _run_list(domain: Domain, item: Item, report: Report) -> None:
    ml: vp.MailingList = item.obj
    try:
        mailing_list = list_services.list_create(domain=domain, name=item.name, owner=list_owner(ml, domain.name),
                                                 acting_user=None, **list_settings(ml))
    except (ValidationError, TypeError) as error:
        _problem(report, item, error if isinstance(error, ValidationError) else str(error))
        return
    report.created[item.kind] += 1
    for name, text in ml.texts.items():
        try:
            list_services.list_set_text(mailing_list=mailing_list, name=name, text=text, acting_user=None)
        except ValidationError as error:
            _problem(report, item, f"text {name} not kept: {_message(error)}")
    try:
        result = list_bulk.members_import(mailing_list=mailing_list, members=source_members(ml), acting_user=None,
                                          source=SOURCE)
    except ValidationError as error:
        _problem(report, item, f"members not imported: {_message(error)}")
        return
    report.created["list members"] += result.added
    for kind, address in result.invalid:
        _problem(report, item, f"{kind} {address[:80]!r} is not a valid address: left out")
