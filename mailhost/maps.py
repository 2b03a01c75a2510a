"""The host-local SQLite database that Postfix (`proxy:sqlite:` maps) and Dovecot (`driver = sql`,
sqlite) read live. The agent replaces one domain's rows in one transaction; nothing else writes it.

Plain Python: used by the agent and by the mail-stack bring-up (mailhost/stack/).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_VERSION = 5  # 2: the table `names`; 3: `renames`; 4: `alias_domains` (each created by the agent's start)
# 5: `domain_languages`

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS domains (
    domain   TEXT PRIMARY KEY,            -- IDNA (ASCII) form
    active   INTEGER NOT NULL DEFAULT 1,   -- 1 served (vdomains), 2 not yet proven its customer's: not
                                           -- served, nothing stored but this row (mailhost.apply); 0 absent
    revision INTEGER NOT NULL              -- the panel's revision applied here
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS domain_languages (  -- the language of the host's own mail to a domain's
    domain   TEXT PRIMARY KEY,            -- mailboxes (its customer's: mailhost.quota_warning); none:
    language TEXT NOT NULL                 -- English. 'fr' or 'en' (mailhost.apply.LANGUAGES)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mailboxes (
    email         TEXT PRIMARY KEY,        -- local@domain, lower-case
    domain        TEXT NOT NULL,
    password_hash TEXT NOT NULL,           -- '{ARGON2ID}...', '{BLF-CRYPT}...', '!' for robots
    quota_bytes   INTEGER NOT NULL DEFAULT 0,  -- 0 = unlimited
    active        INTEGER NOT NULL DEFAULT 1,
    allow_pop3    INTEGER NOT NULL DEFAULT 1,
    allow_imap    INTEGER NOT NULL DEFAULT 1,
    allow_smtp    INTEGER NOT NULL DEFAULT 1,
    home          TEXT NOT NULL,           -- absolute, under the mail root
    sieve         TEXT                     -- absolute path of the active Sieve script, or NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mailboxes_domain ON mailboxes(domain);
CREATE TABLE IF NOT EXISTS aliases (
    source      TEXT PRIMARY KEY,          -- 'local@domain' or '@domain' (catch-all)
    domain      TEXT NOT NULL,
    destination TEXT NOT NULL,             -- 'a@x,b@y' (Postfix list syntax)
    active      INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS aliases_domain ON aliases(domain);
CREATE TABLE IF NOT EXISTS transports (
    address   TEXT PRIMARY KEY,            -- an address or a domain
    domain    TEXT NOT NULL,
    transport TEXT NOT NULL                -- 'discard:', 'mlmmj:domain/list', 'error:5.1.1 ...'
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS transports_domain ON transports(domain);
CREATE TABLE IF NOT EXISTS names (        -- what holds each address of a domain (a delta checks it)
    email  TEXT PRIMARY KEY,               -- local@domain
    domain TEXT NOT NULL,
    kind   TEXT NOT NULL                   -- mailbox, robot, forward, list
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS names_domain ON names(domain);
CREATE TABLE IF NOT EXISTS renames (      -- mailboxes renamed here (mailhost.apply: the mail follows)
    email  TEXT PRIMARY KEY,               -- the new address, local@domain
    domain TEXT NOT NULL,
    old    TEXT NOT NULL,                  -- the previous local part
    moved  INTEGER NOT NULL DEFAULT 0      -- 0: the old home is still to move to the new name
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS renames_domain ON renames(domain);
CREATE TABLE IF NOT EXISTS alias_domains (  -- alias domains (mailhost.apply): x@alias is x@domain here
    alias  TEXT PRIMARY KEY,               -- the alias's IDNA name (its `domains` row says if it is served)
    domain TEXT NOT NULL                   -- the target's
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS list_members (  -- mailing-list membership last applied (mailhost.lists)
    domain  TEXT NOT NULL,
    list    TEXT NOT NULL,
    kind    TEXT NOT NULL,
    address TEXT NOT NULL,
    PRIMARY KEY (domain, list, kind, address)
) WITHOUT ROWID;
"""

# The alias queries below join `alias_domains a` with the `domains` rows of the alias (s) and of its
# target (t), both served (active = 1): an unproven alias, or an alias of an unproven or absent
# target, answers nothing (written out in each query: constants, never built from input).

# Postfix lookup queries (one file each under the Postfix config, `dbpath` + `query`).
POSTFIX_QUERIES = {
    "vdomains": "SELECT 'OK' FROM domains WHERE domain='%s' AND active=1",
    "vmailbox": "SELECT 'OK' FROM mailboxes WHERE email='%s' AND active=1",
    # Aliases, else the identity of any mailbox, in one statement (one snapshot): a catch-all
    # '@domain' row is consulted only when 'user@domain' returned nothing, so it never swallows
    # a real mailbox, nor a disabled one (refused with 550 by the vmailbox lookup).
    "valiases": (
        "SELECT destination FROM aliases WHERE source='%s' AND active=1 "
        "UNION ALL SELECT email FROM mailboxes WHERE email='%s' "
        "AND NOT EXISTS (SELECT 1 FROM aliases WHERE source='%s' AND active=1)"
    ),
    # Alias domains, after `valiases` (virtual_alias_maps): x@alias is rewritten to x@target when
    # both are served and x@target is delivered here (a mailbox, even disabled: its 550 comes from
    # `disabled`; a robot; an alias row: a forward, a list and its addresses) or target has a
    # catch-all; else nothing, and x@alias is refused at RCPT (550 5.1.1: the alias is a virtual
    # mailbox domain without that mailbox; a name `names` holds that routes nowhere, a list's
    # -request switched off, is refused so too, never accepted to bounce after the rewrite). The
    # '@alias' key Postfix tries last has an empty %u: Postfix skips this query for it. x+ext@alias
    # is looked up as x@alias after x+ext@alias, and Postfix puts +ext back on x@target
    # (propagate_unmatched_extensions), so list+subscribe@alias reaches the list.
    "valiasdomains": (
        "SELECT '%u@' || a.domain FROM alias_domains a JOIN domains s ON s.domain=a.alias AND s.active=1 "
        "JOIN domains t ON t.domain=a.domain AND t.active=1 WHERE a.alias='%d' AND ("
        "EXISTS (SELECT 1 FROM mailboxes WHERE email='%u@' || a.domain) "
        "OR EXISTS (SELECT 1 FROM aliases WHERE source='%u@' || a.domain AND active=1) "
        "OR EXISTS (SELECT 1 FROM aliases WHERE source='@' || a.domain AND active=1))"
    ),
    "transport": "SELECT transport FROM transports WHERE address='%s'",
    # smtpd recipient access: a disabled mailbox is refused at RCPT TO, at its alias domains' names too.
    "disabled": (
        "SELECT '550 5.2.1 Mailbox disabled' FROM mailboxes WHERE email='%s' AND active=0 "
        "UNION ALL SELECT '550 5.2.1 Mailbox disabled' FROM alias_domains a "
        "JOIN domains s ON s.domain=a.alias AND s.active=1 JOIN domains t ON t.domain=a.domain AND t.active=1 "
        "JOIN mailboxes m ON m.email='%u@' || a.domain WHERE a.alias='%d' AND m.active=0"
    ),
    # SASL submission: which logins may send as an address (a login at an alias domain is its
    # target's mailbox, Dovecot's `user`; it may send as either name).
    "senders": (
        "SELECT email FROM mailboxes WHERE email='%s' AND active=1 AND allow_smtp=1 "
        "UNION ALL SELECT m.email FROM alias_domains a JOIN domains s ON s.domain=a.alias AND s.active=1 "
        "JOIN domains t ON t.domain=a.domain AND t.active=1 JOIN mailboxes m ON m.email='%u@' || a.domain "
        "WHERE a.alias='%d' AND m.active=1 AND m.allow_smtp=1"
    ),
}

# Dovecot SQL (sqlite driver). %s is the service: a login for a switched-off service finds no row.
# A login at an alias domain (x@alias, both served) is x@target's: `user` is the real address, so
# the userdb, quota and Sieve are that mailbox's (as vpopmail did: clients set up with the alias
# name keep working). The userdb answers for x@alias too: quota-status, asked about a recipient
# x@alias before Postfix rewrites it, refuses mail for a full x@target at RCPT as for x@target.
DOVECOT_AUTH_QUERY = (
    "SELECT m.email AS user, m.password_hash AS password FROM mailboxes m WHERE m.email = '%Lu' "
    "AND m.active = 1 AND m.password_hash <> '!' AND CASE '%s' WHEN 'pop3' THEN m.allow_pop3 "
    "WHEN 'imap' THEN m.allow_imap WHEN 'smtp' THEN m.allow_smtp WHEN 'submission' THEN m.allow_smtp ELSE 1 END = 1 "
    "UNION ALL SELECT m.email AS user, m.password_hash AS password FROM alias_domains a "
    "JOIN domains s ON s.domain=a.alias AND s.active=1 JOIN domains t ON t.domain=a.domain AND t.active=1 "
    "JOIN mailboxes m ON m.email = '%Ln@' || a.domain WHERE a.alias = '%Ld' "
    "AND m.active = 1 AND m.password_hash <> '!' AND CASE '%s' WHEN 'pop3' THEN m.allow_pop3 "
    "WHEN 'imap' THEN m.allow_imap WHEN 'smtp' THEN m.allow_smtp WHEN 'submission' THEN m.allow_smtp ELSE 1 END = 1"
)
# A robot (password '!') answers every mail that reaches it, as QmailAdmin's autoresponder did:
# Sieve's vacation otherwise answers only mail whose To/Cc names the robot's own address, and mail
# to info@alias reaches info@target without that name (Postfix's LMTP passes no ORCPT to Dovecot,
# which announces no DSN). Its other checks stay (no reply to lists, to automatic mail).
# `panel_language` (the domain's, a plugin setting nothing reads) is what Dovecot's quota_warning
# passes to mailhost.quota_warning as %{userdb:panel_language}.
DOVECOT_USER_QUERY = (
    "SELECT m.home AS home, 'mail' AS uid, 'mail' AS gid, '*:bytes=' || m.quota_bytes AS quota_rule, "
    "m.sieve AS sieve, CASE m.password_hash WHEN '!' THEN 'yes' ELSE 'no' END AS sieve_vacation_dont_check_recipient, "
    "(SELECT l.language FROM domain_languages l WHERE l.domain = m.domain) AS panel_language "
    "FROM mailboxes m WHERE m.email = '%Lu' AND m.active = 1 "
    "UNION ALL SELECT m.home AS home, 'mail' AS uid, 'mail' AS gid, '*:bytes=' || m.quota_bytes AS quota_rule, "
    "m.sieve AS sieve, CASE m.password_hash WHEN '!' THEN 'yes' ELSE 'no' END AS sieve_vacation_dont_check_recipient, "
    "(SELECT l.language FROM domain_languages l WHERE l.domain = a.domain) AS panel_language "
    "FROM alias_domains a "
    "JOIN domains s ON s.domain=a.alias AND s.active=1 JOIN domains t ON t.domain=a.domain AND t.active=1 "
    "JOIN mailboxes m ON m.email = '%Ln@' || a.domain WHERE a.alias = '%Ld' AND m.active = 1"
)
DOVECOT_ITERATE_QUERY = "SELECT email AS user FROM mailboxes WHERE active = 1"


def connect(path: str | Path) -> sqlite3.Connection:
    """Open the map database for writing (autocommit; callers use BEGIN IMMEDIATE). The cache
    holds a whole big domain's rows during its apply (100,000 mailboxes: 2 s instead of 5)."""
    db = sqlite3.connect(str(path), isolation_level=None, timeout=30)
    db.execute("PRAGMA busy_timeout = 30000")
    db.execute("PRAGMA cache_size = -65536")  # KiB
    return db


def create(path: str | Path) -> None:
    """Create the database and its schema (idempotent); WAL so readers never wait for the writer."""
    db = connect(path)
    try:
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise RuntimeError(f"{path}: journal_mode is {mode}, expected wal")
        db.execute("PRAGMA journal_size_limit = 4194304")
        db.executescript(SCHEMA)
        found = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if found and int(found[0]) < 2:
            # Domains applied before `names` existed have none: their next document must be the
            # complete one (a delta on revision 0 is answered "behind"), which fills it.
            db.execute("UPDATE domains SET revision = 0")
        db.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )
        # Where a "delete everything" catch-all sends mail: Postfix's discard transport.
        db.execute(
            "INSERT OR IGNORE INTO transports(address, domain, transport) VALUES ('discard.invalid', '', 'discard:')"
        )
    finally:
        db.close()
