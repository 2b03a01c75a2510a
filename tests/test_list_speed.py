"""How a list post leaves (README "Lists at the speed of Postfix"): mlmmj's control files send it
in VERP batches to the smtpd for mlmmj, which the Postfix templates make (loopback only, XVERP,
no per-recipient policy); the e2e proof is tests/e2e/test_list_speed_e2e.py."""

from __future__ import annotations

import re
from pathlib import Path

from mailhost import lists
from mailhost.lists import LIST_SMTPD_RECIPIENT_LIMIT, VERP_RECIPIENTS, ListHost, control, retune
from mailhost.stack import StackConfig
from mailhost.stack.config import HostConfig
from mailhost.stack.templates import postfix_main_cf, postfix_master_cf

LIST = {"name": "news", "owner": "owner@example.test"}


def service(master_cf: str, name: str) -> list[str]:
    """A master.cf service's line and its -o lines."""
    lines = master_cf.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [name])
    block = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        block.append(line.strip())
    return block


def test_a_list_sends_in_verp_batches_to_the_port_it_is_given() -> None:
    _flags, texts = control(LIST, "example.test", 10027)
    assert (texts["smtpport"], texts["relayhost"], texts["verp"]) == ("10027", "127.0.0.1", "postfix")
    assert texts["maxverprecips"] == str(VERP_RECIPIENTS)
    # mlmmj requeues a whole batch that Postfix cuts short (452 "too many recipients").
    assert 0 < VERP_RECIPIENTS <= LIST_SMTPD_RECIPIENT_LIMIT


def test_a_list_an_older_agent_wrote_is_retuned_by_the_maintenance(tmp_path: Path) -> None:
    path = tmp_path / "example.test" / "news"
    (path / "control").mkdir(parents=True)
    (path / "control" / "listaddress").write_text("news@example.test\n")
    (path / "control" / "smtpport").write_text("25\n")
    host = ListHost(tmp_path, smtp_port=10027)
    assert retune(host, path) is True
    assert {name: (path / "control" / name).read_text() for name in lists.sending(10027)} == {
        "smtpport": "10027\n", "relayhost": "127.0.0.1\n", "verp": "postfix\n",
        "maxverprecips": f"{VERP_RECIPIENTS}\n"}
    assert retune(host, path) is False  # nothing to change the next minute


def test_the_smtpd_for_mlmmj_listens_on_loopback_alone_in_both_kinds_of_host() -> None:
    host = HostConfig(root=Path("/srv/mailhost"), hostname="mx1.example.net", tls_cert=Path("/etc/c.pem"),
                      tls_key=Path("/etc/k.pem"), listen="*")
    for config in (StackConfig(root=Path("/srv/stack-for-listspeed")), host):
        block = service(postfix_master_cf(config), f"127.0.0.1:{config.list_smtp_port}")
        assert block[0].split()[1:] == ["inet", "n", "-", "n", "-", "-", "smtpd"]
        options = dict(line.removeprefix("-o ").split("=", 1) for line in block[1:])
        # Only loopback's 127.0.0.1 may relay or use XVERP; nothing but a moving domain is refused
        # at RCPT (no quota-status, no disabled map: those bounce to the member's VERP address).
        assert options["mynetworks"] == "127.0.0.1/32"
        assert options["smtpd_authorized_verp_clients"] == "$mynetworks"
        assert options["smtpd_client_restrictions"] == options["smtpd_relay_restrictions"] == "permit_mynetworks,reject"
        assert options["smtpd_recipient_restrictions"] == "$mlmmj_recipient_restrictions"
        assert options["smtpd_reject_unlisted_recipient"] == "no"
        # Not scanned by rspamd: one member's domain set to "refuse" would refuse the whole batch.
        assert options["smtpd_milters"] == ""
        assert int(options["smtpd_recipient_limit"]) == LIST_SMTPD_RECIPIENT_LIMIT
        main_cf = postfix_main_cf(config)
        restrictions = re.search(r"^mlmmj_recipient_restrictions = (.*)$", main_cf, re.M)
        assert restrictions and restrictions.group(1) == (
            f"check_recipient_access proxy:sqlite:{config.postfix_maps_dir / 'moving.cf'}")
        # The public port is unchanged: no XVERP client, its recipient checks and quota-status.
        assert "smtpd_authorized_verp_clients" not in main_cf
        assert "check_policy_service" in re.search(r"^smtpd_recipient_restrictions = (.*)$", main_cf, re.M).group(1)
