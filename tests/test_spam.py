"""Spam filtering per domain: the panel's settings (mail.services.spam_filter_set), carried in the
domain's document (format 7), checked again by the agent and written for rspamd and Dovecot
(mailhost.spam)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from hosting.audit import Action
from hosting.models import AuditEvent
from hostlink import snapshot
from mail.models import SpamFilter, SpamMode
from mail.services import spam_filter_set
from mailhost import contract, maps
from mailhost import spam as host_spam
from mailhost.apply import HostConfig, apply
from mailhost.render import RenderError
from tests.conftest import Cast, client_for


@pytest.fixture
def cfg(tmp_path: Path) -> HostConfig:
    tmp_path.chmod(0o755)
    config = HostConfig(name="t", root=tmp_path)
    (tmp_path / "db").mkdir()
    maps.create(config.maps_db)
    return config


def document(name: str, revision: int, **extra: Any) -> dict[str, Any]:
    return {"format": contract.FORMAT, "domain": name, "revision": revision, "state": "present", "verified": True,
            "mailboxes": [], **extra}


def spam(mode: str = "junk", score: float = 6.0, allow: list[str] | None = None,
         block: list[str] | None = None) -> dict[str, Any]:
    return {"mode": mode, "score": score, "allow": allow or [], "block": block or []}


def test_the_agent_writes_the_settings_map_and_the_junk_rule(cfg: HostConfig) -> None:
    apply(document("real.test", 1, spam=spam("junk", 7.5, allow=["friend@good.test"], block=["bad.test"])), cfg)
    text = (cfg.spam_root / "settings.conf").read_text()
    assert 'domain0_block { priority = high; rcpt = "@real.test"; from = ["@bad.test"]; ' in text
    assert 'domain0_allow { priority = medium; rcpt = "@real.test"; from = ["friend@good.test"]; ' in text
    assert ('domain0 { priority = low; rcpt = "@real.test"; apply { actions { "reject" = null; '
            '"add header" = 7.5; "rewrite subject" = null; "greylist" = null; } } }') in text
    sieve = (cfg.spam_root / "junk.sieve").read_text()
    assert 'envelope :domain :is "to" ["real.test"]' in sieve and 'fileinto :create "Junk"' in sieve
    if Path(host_spam.SIEVEC).exists():  # compiled for Dovecot, not older than the script
        binary = cfg.spam_root / "junk.svbin"
        assert binary.stat().st_mtime > (cfg.spam_root / "junk.sieve").stat().st_mtime

    # An alias domain is filtered as its target.
    apply({"format": contract.FORMAT, "domain": "alias.test", "revision": 1, "state": "present", "verified": True,
           "alias_of": "real.test"}, cfg)
    assert '["alias.test", "real.test"]' in (cfg.spam_root / "junk.sieve").read_text()

    # A delta without `spam` keeps the settings; a change replaces them; null is off.
    apply({**document("real.test", 2), "base": 1, "removed": []}, cfg)
    assert "junk" in (cfg.spam_root / "domains" / "real.test.json").read_text()
    apply(document("real.test", 3, spam=spam("reject", 12.0)), cfg)
    text = (cfg.spam_root / "settings.conf").read_text()
    assert '"reject" = 12.0; "add header" = null' in text and "_allow" not in text
    assert "fileinto" not in (cfg.spam_root / "junk.sieve").read_text()
    apply(document("real.test", 4, spam=None), cfg)
    assert not (cfg.spam_root / "domains" / "real.test.json").exists()
    assert '"reject" = null; "add header" = null; "rewrite subject" = null' in (
        cfg.spam_root / "settings.conf").read_text()

    # A removed domain leaves no rule behind.
    apply({"format": contract.FORMAT, "domain": "alias.test", "revision": 2, "state": "absent"}, cfg)
    apply({"format": contract.FORMAT, "domain": "real.test", "revision": 5, "state": "absent"}, cfg)
    assert "rcpt" not in (cfg.spam_root / "settings.conf").read_text()


@pytest.mark.parametrize("bad", [
    spam(mode="delete"), spam(score=4.9), spam(score=30.5), spam(score=float("nan")),
    spam(allow=['a"b@x.test']), spam(allow=["/.*/"]), spam(block=["x.test\nrule { }"]),
    spam(block=["x@y.test; }"]), spam(allow=["a b@x.test"]), spam(block=["ab{c}.test"]),
    spam(allow=[f"s{i}@x.test" for i in range(201)]),
])
def test_a_bad_value_applies_nothing(cfg: HostConfig, bad: dict[str, Any]) -> None:
    with pytest.raises(RenderError):
        apply(document("real.test", 1, spam=bad), cfg)
    assert not (cfg.spam_root / "settings.conf").exists()


def test_an_older_format_cannot_carry_spam_settings() -> None:
    older = {"format": 6, "domain": "a.test", "revision": 1, "state": "present", "spam": spam()}
    with pytest.raises(contract.DocumentError, match="spam: unknown in format 6"):
        contract.check_document(older)
    contract.check_document({**older, "format": 7})
    contract.check_document({"format": 6, "domain": "a.test", "revision": 1, "state": "present"})


def test_the_map_holds_only_checked_values() -> None:
    assert host_spam.sender("Friend@Good.test".lower()) == "friend@good.test"
    assert host_spam.settings({"mode": "mark", "score": 6.04, "allow": ["b.test", "a.test", "a.test"],
                               "block": []}) == {"mode": "mark", "score": 6.0, "allow": ["a.test", "b.test"],
                                                 "block": []}


# --- the panel ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_service_checks_keeps_and_audits(cast: Cast) -> None:
    domain = cast.a.domain
    before = domain.revision
    row = spam_filter_set(domain=domain, mode=SpamMode.JUNK, score="7.25",
                          allow=["Friend@Good.TEST", "exämple.test", "good.test", "good.test"], block=["bad.test"],
                          acting_user=cast.operator)
    assert (row.mode, str(row.score), row.allow, row.block) == (
        "junk", "7.2", ["friend@good.test", "good.test", "xn--exmple-cua.test"], ["bad.test"])
    domain.refresh_from_db()
    assert domain.revision > before and row.revision == domain.revision
    assert AuditEvent.objects.filter(action=Action.SPAM_FILTER_SET).count() == 1
    # The same settings again: nothing changes, no audit row.
    spam_filter_set(domain=domain, mode="junk", score=7.2, allow=["good.test", "friend@good.test",
                    "xn--exmple-cua.test"], block=["bad.test"], acting_user=cast.operator)
    assert AuditEvent.objects.filter(action=Action.SPAM_FILTER_SET).count() == 1

    document = snapshot.build(domain)
    assert document["spam"] == {"mode": "junk", "score": 7.2, "allow": row.allow, "block": ["bad.test"]}
    contract.check_document(document, complete=True)
    spam_filter_set(domain=domain, mode="off", score=6, allow=[], block=[], acting_user=cast.operator)
    assert snapshot.build(domain)["spam"] is None


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "code"), [
    ({"mode": "delete"}, "mode"), ({"score": "4.9"}, "score"), ({"score": "30.1"}, "score"),
    ({"score": "NaN"}, "score"), ({"score": "beaucoup"}, "score"),
    ({"allow": ["/.*/"]}, "allow"), ({"allow": ['a"b@x.test']}, "allow"), ({"block": ["x.test\n}"]}, "block"),
    ({"block": ["a b.test"]}, "block"), ({"allow": [f"s{i}@x.test" for i in range(201)]}, "allow"),
    ({"allow": ["x.test"], "block": ["x.test"]}, "block"),
])
def test_the_service_refuses_what_the_host_would(cast: Cast, change: dict[str, Any], code: str) -> None:
    args: dict[str, Any] = {"mode": "reject", "score": "6", "allow": [], "block": [], **change}
    with pytest.raises(ValidationError) as refused:
        spam_filter_set(domain=cast.a.domain, acting_user=cast.operator, **args)
    assert refused.value.code == code
    assert not SpamFilter.objects.exists()


@pytest.mark.django_db
def test_the_page_sets_the_filtering_in_french(cast: Cast) -> None:
    path = reverse("screens:spam_filter", args=[cast.a.domain.pk])
    client = client_for(cast, "domain_admin_a", "fr")
    page = client.get(path).content.decode()
    assert "Filtrage du courrier indésirable" in page and "Indésirables" in page
    menu = client.get(reverse("screens:domain", args=[cast.a.domain.pk])).content.decode()
    assert f'href="{path}"' in menu
    response = client.post(path, {"mode": "reject", "score": "8.5", "allow": "ami@ailleurs.test\nbon.test",
                                  "block": "mechant.test"})
    assert response.status_code == 302
    row = SpamFilter.objects.get(domain=cast.a.domain)
    assert (row.mode, str(row.score), row.allow, row.block) == (
        "reject", "8.5", ["ami@ailleurs.test", "bon.test"], ["mechant.test"])
    refused = client.post(path, {"mode": "junk", "score": "8", "allow": "pas une adresse", "block": ""})
    assert refused.status_code == 400
    assert "ni une adresse e-mail ni un nom de domaine" in refused.content.decode()


@pytest.mark.django_db
def test_an_outsider_gets_404(cast: Cast) -> None:
    path = reverse("screens:spam_filter", args=[cast.a.domain.pk])
    client = client_for(cast, "domain_admin_b")
    assert client.get(path).status_code == 404
    assert client.post(path, {"mode": "reject", "score": "6", "allow": "", "block": ""}).status_code == 404
    assert not SpamFilter.objects.exists()


def test_a_real_host_reads_the_map_and_files_junk(tmp_path: Path) -> None:
    from mailhost.stack import templates
    from mailhost.stack.config import HostConfig as RealHost
    from mailhost.stack.production import production_files

    host = RealHost(root=tmp_path / "srv", hostname="mx1.example.net", tls_cert=tmp_path / "c.pem",
                    tls_key=tmp_path / "k.pem", rspamd_dir=tmp_path / "rspamd")
    files = {file.path: file.text for file in production_files(host, "pw")}
    # rspamd's stock thresholds out of reach there too: a domain whose filtering is off is not filtered.
    assert "reject = 10000;" in files[tmp_path / "rspamd" / "local.d" / "actions.conf"].splitlines()
    override = files[tmp_path / "rspamd" / "rspamd.conf.override"]
    assert f'settings = "{tmp_path}/srv/spam/settings.conf";' in override.splitlines()
    dovecot = templates.dovecot_conf(host)
    assert f"  sieve_before = {tmp_path}/srv/spam/junk.sieve" in dovecot.splitlines()
    assert "    special_use = \\Junk" in dovecot.splitlines() and "    auto = subscribe" in dovecot.splitlines()
