"""`python -m mailhost.stack install|up|down|status|configure` (bin/mailstack runs the first four)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from mailhost.stack import production
from mailhost.stack.config import HostConfig, StackConfig, StackError
from mailhost.stack.install import PACKAGES, install_packages
from mailhost.stack.lifecycle import down, status, up

DESCRIPTION = "A real Postfix + Dovecot + mlmmj mail stack: the test stack on 127.0.0.1, or a real host's files."


def _config_for(root: Path, command: str) -> StackConfig:
    """`up` takes ports from the environment; the others use what `up` recorded for that root."""
    if command != "up":
        try:
            saved = json.loads((root / "stack.json").read_text())
        except (OSError, ValueError):
            saved = None
        if saved is not None:
            saved["root"] = Path(saved["root"])
            fields = {f.name for f in dataclasses.fields(StackConfig)}
            return StackConfig(**{k: v for k, v in saved.items() if k in fields})
    return StackConfig.from_env(root)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mailhost.stack", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="apt-get the Debian packages when missing (root)")
    for name, text in (("up", "write the test stack's configuration under ROOT and start it"),
                       ("down", "stop the test stack of ROOT"), ("status", "daemons and ports of ROOT")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--root", type=Path, required=True, help="absolute directory of the stack")
    host = commands.add_parser(
        "configure",
        help="write a real mail host's Postfix and Dovecot configuration (starts nothing)",
        description="Write the production Postfix and Dovecot configuration the agent needs, from the "
        "test stack's templates. Starts nothing; an existing file with other content needs --force "
        "(kept as FILE.bak).",
    )
    defaults = {field.name: field.default for field in dataclasses.fields(HostConfig)}
    option = host.add_argument
    option("--root", type=Path, required=True, help="the agent's MAILHOST_ROOT (maps db: ROOT/db/maps.sqlite)")
    option("--hostname", required=True, help="the host's fully qualified name (myhostname, Dovecot's hostname)")
    option("--tls-cert", type=Path, required=True, help="PEM certificate (chain) for SMTP, submission, IMAP, POP3")
    option("--tls-key", type=Path, required=True, help="its PEM private key")
    option("--postfix-dir", type=Path, default=defaults["postfix_dir"], help="config_directory (default %(default)s)")
    option("--dovecot-dir", type=Path, default=defaults["dovecot_dir"], help="Dovecot's folder (default %(default)s)")
    option("--rspamd-dir", type=Path, default=defaults["rspamd_dir"],
           help="rspamd's folder: local.d/dkim_signing.conf is written there (default %(default)s)")
    option("--rspamd-port", type=int, default=defaults["rspamd_port"],
           help="rspamd's milter (its proxy worker) on 127.0.0.1 (default %(default)s)")
    option("--listen", default=defaults["listen"],
           help="address(es) of the public listeners, comma-separated (default %(default)s: every IPv4 address)")
    option("--relayhost", default=defaults["relayhost"],
           help="outbound relay, e.g. [smtp.example.net]:587 (default: deliver to each MX)")
    for field in ("smtp_port", "submission_port", "pop3_port", "imap_port", "pop3s_port", "imaps_port",
                  "quota_policy_port", "doveadm_port", "list_smtp_port"):
        option("--" + field.replace("_", "-"), type=int, default=defaults[field], help="default %(default)s")
    option("--dry-run", action="store_true", help="print the files instead of writing them")
    option("--force", action="store_true", help="replace existing files (each kept as FILE.bak)")
    return parser


def _configure(args: argparse.Namespace) -> int:
    fields = {field.name for field in dataclasses.fields(HostConfig)}
    config = HostConfig(**{name: value for name, value in vars(args).items() if name in fields})
    written = production.configure(config, dry_run=args.dry_run, force=args.force)
    if args.dry_run:
        return 0
    print("\n".join(f"wrote {path}" for path in written) or "nothing to change: every file is up to date")
    print(
        f"agent data under {config.root} (maps db {config.maps_db}); nothing was started.\n"
        "Next: systemctl restart postfix dovecot rspamd, then start the agent with "
        f"MAILHOST_ROOT={config.root} MAILHOST_POSTFIX_DIR={config.postfix_dir} "
        f"MAILHOST_DOVECOT_CONF={config.dovecot_conf} MAILHOST_SMTP_PORT={config.smtp_port} "
        f"MAILHOST_LIST_SMTP_PORT={config.list_smtp_port} (see README)."
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "install":
            installed = install_packages()
            if not installed:
                print("all packages present: " + " ".join(PACKAGES))
            return 0
        if args.command == "configure":
            return _configure(args)
        config = _config_for(args.root, args.command)
        if args.command == "up":
            stack = up(config)
            print(f"mail stack up in {stack.startup_seconds:.2f} s (postfix {stack.postfix_pid}, "
                  f"dovecot {stack.dovecot_pid})")
            print("\n".join(status(config).lines(config)))
            print(f"maps db: {config.maps_db}\nlogs: {config.log_dir}\nsink: {config.sink_root}")
        elif args.command == "down":
            t0 = time.monotonic()
            down(config)
            print(f"mail stack of {config.root} stopped ({time.monotonic() - t0:.2f} s)")
        else:
            st = status(config)
            print("\n".join(st.lines(config)))
            return 0 if st.running else 3
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
