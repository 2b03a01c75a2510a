"""`python -m mailhost.stack configure`: a real mail host's Postfix and Dovecot configuration, from the
test stack's templates (mailhost/stack/templates.py).

No daemon is started: the files are rendered into a temporary folder and read back by Postfix's
`postconf -n` and Dovecot's `doveconf -n` (both installed with the mail packages). Writing needs
root (files owned by postfix, dovecot, mail, list); without it those tests skip and say why.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailhost import list_pipe, maps, migrate
from mailhost.stack import (
    HostConfig,
    StackConfig,
    StackError,
    configure,
    dovecot_conf,
    dovecot_sql_conf,
    main,
    postfix_main_cf,
    postfix_map_cf,
    postfix_master_cf,
    production_files,
)

POSTCONF = "/usr/sbin/postconf"
DOVECONF = "/usr/bin/doveconf"
PASSWORD = "doveadm-secret-for-the-test"
STACK_ROOT = Path("/srv/stack-for-comparison")  # only rendered, never written

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="writing the files chowns them to postfix/dovecot: root")
needs_tools = pytest.mark.skipif(
    not (Path(POSTCONF).exists() and Path(DOVECONF).exists() and shutil.which("openssl")),
    reason="postconf, doveconf (Debian postfix, dovecot-core) and openssl are needed",
)


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder users postfix, dovecot, mail and list can reach (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="configure-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def host(folder: Path, monkeypatch: pytest.MonkeyPatch) -> HostConfig:
    monkeypatch.setenv("MAILSTACK_DOVEADM_PASSWORD", PASSWORD)
    cert, key = folder / "cert.pem", folder / "key.pem"
    if shutil.which("openssl"):
        subprocess.run(  # noqa: S603
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",  # noqa: S607
             "-subj", "/CN=mx1.example.net", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )
    return HostConfig(
        root=folder / "srv" / "mailhost",
        hostname="mx1.example.net",
        tls_cert=cert,
        tls_key=key,
        postfix_dir=folder / "etc" / "postfix",
        dovecot_dir=folder / "etc" / "dovecot",
        rspamd_dir=folder / "etc" / "rspamd",
    )


def _cli_args(config: HostConfig) -> list[str]:
    return [
        "configure", "--root", str(config.root), "--hostname", config.hostname,
        "--tls-cert", str(config.tls_cert), "--tls-key", str(config.tls_key),
        "--postfix-dir", str(config.postfix_dir), "--dovecot-dir", str(config.dovecot_dir),
        "--rspamd-dir", str(config.rspamd_dir),
    ]


def _postconf(config: HostConfig) -> dict[str, str]:
    out = subprocess.run(  # noqa: S603
        [POSTCONF, "-c", str(config.postfix_dir), "-n"], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split(" = ", 1) if " = " in line else (line.rstrip(" ="), "") for line in out.splitlines())


def _doveconf(config: HostConfig) -> str:
    proc = subprocess.run(  # noqa: S603
        [DOVECONF, "-c", str(config.dovecot_conf), "-n"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _block(text: str, start: str) -> str:
    """The `start { ... }` block of a Dovecot configuration (nested braces counted)."""
    begin = text.index(start + " {")
    depth = 0
    for end in range(begin, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if text[end] == "}" and depth == 0:
            return text[begin : end + 1]
    raise AssertionError(f"unclosed block {start}")


# ----------------------------------------------------------------------------- accepted by the programs


@needs_root
@needs_tools
def test_postconf_and_doveconf_accept_the_written_files(host: HostConfig, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_cli_args(host)) == 0
    assert "nothing was started" in capsys.readouterr().out

    postfix = _postconf(host)
    assert postfix["myhostname"] == "mx1.example.net"
    assert postfix["inet_interfaces"] == "all"
    assert postfix["virtual_transport"] == f"lmtp:unix:{host.lmtp_socket}"
    assert postfix["smtpd_tls_cert_file"] == str(host.tls_cert)
    assert postfix["smtpd_tls_key_file"] == str(host.tls_key)
    assert postfix["virtual_mailbox_maps"] == f"proxy:sqlite:{host.postfix_maps_dir}/vmailbox.cf"
    master = subprocess.run(  # noqa: S603
        [POSTCONF, "-c", str(host.postfix_dir), "-M"], capture_output=True, text=True, check=True
    ).stdout
    services = {tuple(line.split()[:2]) for line in master.splitlines()}
    assert {("25", "inet"), ("587", "inet"), ("mlmmj", "unix"), ("tlsmgr", "unix")} <= services

    dovecot = _doveconf(host)
    assert "ssl = required" in dovecot
    assert f"ssl_cert = </{host.tls_cert.relative_to('/')}" in dovecot
    imap, pop3 = _block(dovecot, "service imap-login"), _block(dovecot, "service pop3-login")
    assert re.search(r"inet_listener imap \{\s+address = \*\s+port = 143\s", imap)
    assert re.search(r"inet_listener imaps \{\s+port = 993\s", imap)
    assert re.search(r"inet_listener pop3 \{\s+address = \*\s+port = 110\s", pop3)
    assert re.search(r"inet_listener pop3s \{\s+port = 995\s", pop3)
    assert re.search(r"address = \*\s+port = 12424", _block(dovecot, "service doveadm"))
    assert "port = 12340" in _block(dovecot, "service quota-status")
    assert "mail_plugins = \" quota sieve\"" in _block(dovecot, "protocol lmtp")
    assert f"args = {host.dovecot_sql_conf}" in _block(dovecot, "passdb")
    assert f"args = {host.dovecot_sql_conf}" in _block(dovecot, "userdb")

    # The agent's data: the maps database with the agent's schema, vmail/ and mlmmj/.
    assert host.maps_db == host.root / "db" / "maps.sqlite"
    assert host.maps_db.is_file() and host.vmail_root.is_dir() and host.mlmmj_root.is_dir()
    assert host.doveadm_password_file.read_text().strip() == PASSWORD
    assert host.doveadm_password_file.stat().st_mode & 0o777 == 0o600


@needs_root
@needs_tools
def test_the_operators_ports_listen_address_and_relay(host: HostConfig) -> None:
    config = HostConfig(**{
        **{name: getattr(host, name) for name in ("root", "hostname", "tls_cert", "tls_key", "postfix_dir",
                                                  "dovecot_dir", "rspamd_dir")},
        "listen": "192.0.2.10", "relayhost": "[smtp.example.net]:587", "smtp_port": 2025,
        "imap_port": 1143, "imaps_port": 1993,
    })
    configure(config)
    postfix = _postconf(config)
    # Loopback stays: Dovecot's Sieve replies and mlmmj send through 127.0.0.1.
    assert postfix["inet_interfaces"] == "192.0.2.10, 127.0.0.1"
    assert postfix["relayhost"] == "[smtp.example.net]:587"
    dovecot = _doveconf(config)
    assert re.search(r"address = 192\.0\.2\.10\s+port = 1143", _block(dovecot, "service imap-login"))
    assert re.search(r"inet_listener imaps \{\s+port = 1993\s", _block(dovecot, "service imap-login"))
    assert re.search(r"address = 192\.0\.2\.10\s+port = 12424", _block(dovecot, "service doveadm"))
    assert "submission_host = 127.0.0.1:2025" in dovecot


# ----------------------------------------------------------------------------- same queries, no test piece


def test_the_sql_queries_are_the_test_stacks(host: HostConfig) -> None:
    stack = StackConfig(root=STACK_ROOT)

    def queries(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.split(" = ")[0].endswith("query")]

    production_sql, stack_sql = queries(dovecot_sql_conf(host)), queries(dovecot_sql_conf(stack))
    assert production_sql == stack_sql == [
        f"password_query = {maps.DOVECOT_AUTH_QUERY}",
        f"user_query = {maps.DOVECOT_USER_QUERY}",
        f"iterate_query = {maps.DOVECOT_ITERATE_QUERY}",
    ]
    assert f"connect = {host.root}/db/maps.sqlite" in dovecot_sql_conf(host)

    files = {file.path: file.text for file in production_files(host, PASSWORD)}
    for name, query in {**maps.POSTFIX_QUERIES, "moving": migrate.POSTFIX_QUERY}.items():
        text = files[host.postfix_maps_dir / f"{name}.cf"]
        assert text == postfix_map_cf(host, query)
        assert queries(text) == queries(postfix_map_cf(stack, query)) == [f"query = {query}"]
        assert f"dbpath = {host.maps_db}" in text


def test_the_list_pipes_run_a_copy_beside_postfixs_config(host: HostConfig) -> None:
    """User list runs the list pipe: never from the agent's checkout, which may be out of its reach
    (a checkout under /root), but from a copy beside Postfix's config, world-readable."""
    files = {file.path: file for file in production_files(host, PASSWORD)}
    pipe = files[host.list_pipe_script]
    assert pipe.text == Path(list_pipe.__file__).read_text(encoding="utf-8") and pipe.mode == 0o755
    master = files[host.postfix_dir / "master.cf"].text
    assert master.count(f"-I {host.list_pipe_script} ") == 2 and str(Path(list_pipe.__file__)) not in master


def test_no_test_stack_piece_in_the_production_files(host: HostConfig) -> None:
    main_cf, master_cf, dovecot = postfix_main_cf(host), postfix_master_cf(host), dovecot_conf(host)
    # No sink, no test-only timing or lookups, no files under a stack root.
    for text in (main_cf, master_cf, dovecot):
        assert "sink" not in text
        assert "mailstack" not in text
    for setting in ("default_transport", "relay_transport", "disable_dns_lookups", "smtp_host_lookup",
                    "maillog_file", "queue_run_delay", "maximal_backoff_time", "smtpd_error_sleep_time",
                    "local_recipient_maps"):
        assert not re.search(rf"^{setting} =", main_cf, re.M), setting
    for setting in ("instance_name", "base_dir", "state_dir", "log_path", "auth_failure_delay"):
        assert not re.search(rf"^{setting} =", dovecot, re.M), setting
    assert "\nssl = no" not in dovecot and "disable_plaintext_auth = no" not in dovecot
    # 127.0.0.1 only where it is meant: Postfix asks quota-status there, Sieve sends through it,
    # mlmmj's own smtpd listens there alone (README "Lists at the speed of Postfix").
    assert [line.split()[0] for line in master_cf.splitlines() if "127.0.0.1" in line] == [
        f"127.0.0.1:{host.list_smtp_port}", "-o"]
    assert "  -o mynetworks=127.0.0.1/32\n" in master_cf
    assert [line for line in main_cf.splitlines() if "127.0.0.1" in line] == [
        "smtpd_recipient_restrictions = "
        f"check_recipient_access proxy:sqlite:{host.postfix_maps_dir}/moving.cf, "
        f"check_recipient_access proxy:sqlite:{host.postfix_maps_dir}/disabled.cf, "
        "check_policy_service inet:127.0.0.1:12340",
        "smtpd_milters = inet:127.0.0.1:11332",  # rspamd (DKIM), Debian's proxy worker
    ]
    outside_quota_status = dovecot.replace(_block(dovecot, "service quota-status"), "")
    assert [line for line in outside_quota_status.splitlines() if "127.0.0.1" in line] == [
        "submission_host = 127.0.0.1:25"
    ]
    # ... and the test stack still has its pieces.
    stack = StackConfig(root=STACK_ROOT)
    assert "default_transport = sink" in postfix_main_cf(stack)
    assert "listen = 127.0.0.1" in dovecot_conf(stack) and "ssl = no" in dovecot_conf(stack)
    assert re.search(r"^127\.0\.0\.1:2525 ", postfix_master_cf(stack), re.M)


# ----------------------------------------------------------------------------- dry run, overwrite, refusals


def test_dry_run_prints_every_file_writes_none_and_hides_the_password(
    host: HostConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*_cli_args(host), "--dry-run"]) == 0
    out = capsys.readouterr().out
    for file in production_files(host, PASSWORD):
        assert f"==> {file.path} " in out
    assert "virtual_transport = lmtp:unix:/run/dovecot/lmtp" in out
    assert PASSWORD not in out
    assert not host.postfix_dir.exists() and not host.dovecot_dir.exists() and not host.root.exists()


@needs_root
@needs_tools
def test_an_existing_config_is_kept_unless_forced_then_backed_up(host: HostConfig) -> None:
    configure(host)
    main_cf = host.postfix_dir / "main.cf"
    assert not main_cf.with_name("main.cf.bak").exists()
    assert configure(host) == []  # same content: nothing rewritten, no conflict

    main_cf.write_text("# the operator's own main.cf\n")
    with pytest.raises(StackError, match="exist with other content") as refused:
        configure(host)
    assert str(main_cf) in str(refused.value)
    assert main_cf.read_text() == "# the operator's own main.cf\n"
    assert not main_cf.with_name("main.cf.bak").exists()

    assert configure(host, force=True) == [main_cf]
    assert main_cf.with_name("main.cf.bak").read_text() == "# the operator's own main.cf\n"
    assert main_cf.read_text() == postfix_main_cf(host)


def test_the_cli_refuses_what_a_host_cannot_use(host: HostConfig, capsys: pytest.CaptureFixture[str]) -> None:
    args = _cli_args(host)
    assert main([*args[:2], "relative/root", *args[3:]]) == 1  # --root relative/root
    assert "--root must be an absolute path" in capsys.readouterr().err
    assert main([*args[:4], "localhost", *args[5:]]) == 1  # --hostname localhost
    assert "fully qualified" in capsys.readouterr().err
    assert main([*args, "--smtp-port", "143"]) == 1
    assert "ports must differ" in capsys.readouterr().err
    host.tls_key.unlink(missing_ok=True)
    assert main(args) == 1
    assert "TLS file(s) not found" in capsys.readouterr().err
    assert not host.postfix_dir.exists()
