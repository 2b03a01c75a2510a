"""DKIM keys: sealed in the panel (hosting.dkim), made, rotated and switched by the services
(provisioning.dkim), carried to the host in the domain's document (format 6), and written by the
agent for rspamd (mailhost.dkim) after it checked them. tests/e2e/test_dkim_e2e.py proves the
signature with real mail and a real DNS server."""

from __future__ import annotations

import os
import sqlite3
import stat
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from hosting import dkim as keys
from hosting.audit import Action
from hosting.models import AuditEvent, DkimKey, DkimKeyState, Domain, Plan
from hostlink import snapshot
from mailhost import contract, maps
from mailhost import dkim as host_dkim
from mailhost.apply import HostConfig, apply
from mailhost.render import RenderError
from provisioning import dkim
from provisioning.domains import alias_domain_create, domain_create, domain_verify
from tests.conftest import Cast

MAKE_KEY = keys.new_key


@cache
def premade(index: int) -> keys.NewKey:
    """Keys made once for the whole run (2048 bits, as in production: the tests only avoid making
    one per test)."""
    return MAKE_KEY()


@pytest.fixture
def fast_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = iter(range(1000))
    monkeypatch.setattr(keys, "new_key", lambda bits=keys.DEFAULT_BITS: premade(next(counter) % 3))


# --- the seal ---------------------------------------------------------------------------------------


def test_a_sealed_key_opens_with_the_same_settings_only() -> None:
    pem = premade(0).private_pem
    with override_settings(DKIM_SEAL_KEY="one seal key"):
        sealed = keys.seal(pem)
        assert pem not in sealed and "PRIVATE" not in sealed
        assert keys.unseal(sealed) == pem
    with override_settings(DKIM_SEAL_KEY="another seal key"), pytest.raises(keys.SealBroken):
        keys.unseal(sealed)
    with override_settings(DKIM_SEAL_KEY="", SECRET_KEY="a-secret-key-of-another-panel-xxxxxxxxxxxxxxxxxxxxxxxx"):
        with pytest.raises(keys.SealBroken):
            keys.unseal(sealed)


def test_the_record_is_the_public_key() -> None:
    made = premade(0)
    assert keys.txt_value(made.public_b64) == f"v=DKIM1; k=rsa; p={made.public_b64}"
    assert keys.record_name("mp20261208", "example.test") == "mp20261208._domainkey.example.test"
    assert made.bits == 2048


# --- the services -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("fast_keys")
def test_the_first_key_signs_at_once_and_is_made_once(cast: Cast) -> None:
    domain = cast.a.domain
    revision = Domain.objects.get(pk=domain.pk).revision
    key = dkim.dkim_key_ensure(domain, acting_user=cast.operator)
    assert key is not None and key.state == DkimKeyState.ACTIVE and key.activated_at is not None
    assert key.selector.startswith("mp") and keys.SELECTOR_RE.match(key.selector)
    assert Domain.objects.get(pk=domain.pk).revision == revision + 1  # its host gets the key
    assert AuditEvent.objects.filter(action=Action.DKIM_KEY_CREATE, domain_id=domain.pk).count() == 1
    assert dkim.dkim_key_ensure(domain) == key
    assert Domain.objects.get(pk=domain.pk).revision == revision + 1
    assert keys.unseal(key.sealed_private_key).startswith("-----BEGIN PRIVATE KEY-----")


@pytest.mark.usefixtures("fast_keys")
def test_an_alias_domain_has_no_key_and_publishes_its_targets(cast: Cast) -> None:
    alias = alias_domain_create(domain=cast.a.domain, name="alias-of-alpha.test", acting_user=cast.operator)
    assert dkim.dkim_key_ensure(alias) is None
    key = dkim.dkim_key_ensure(cast.a.domain)
    assert dkim.signing_key(alias) == key and dkim.published_keys(alias) == [key]
    assert not DkimKey.objects.filter(domain=alias).exists()
    with pytest.raises(Exception, match="alias"):
        dkim.dkim_key_rotate(alias, acting_user=cast.operator)


@pytest.mark.usefixtures("fast_keys")
def test_a_rotation_publishes_then_switches_once_seen(cast: Cast) -> None:
    domain = cast.a.domain
    old = dkim.dkim_key_ensure(domain)
    assert old is not None
    new = dkim.dkim_key_rotate(domain, acting_user=cast.a.customer_user)
    assert new.state == DkimKeyState.NEXT and new.selector != old.selector
    assert dkim.dkim_key_rotate(domain, acting_user=None) == new  # one rotation at a time
    assert dkim.published_keys(domain) == [old, new]
    assert dkim.signing_key(domain) == old
    revision = Domain.objects.get(pk=domain.pk).revision
    assert not dkim.dkim_activate_seen(domain)  # its record not seen yet
    assert Domain.objects.get(pk=domain.pk).revision == revision

    DkimKey.objects.filter(pk=new.pk).update(dns_seen_at=new.created_at)
    assert dkim.dkim_maintain() >= 1
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.state, new.state) == (DkimKeyState.RETIRED, DkimKeyState.ACTIVE)
    assert Domain.objects.get(pk=domain.pk).revision == revision + 1
    assert dkim.signing_key(domain) == new and dkim.published_keys(domain) == [new]
    assert AuditEvent.objects.filter(action=Action.DKIM_ACTIVATE, domain_id=domain.pk).count() == 1
    assert AuditEvent.objects.filter(action=Action.DKIM_ROTATE, domain_id=domain.pk).count() == 1


@pytest.mark.usefixtures("fast_keys")
def test_the_beat_makes_the_missing_keys(cast: Cast) -> None:
    alias = alias_domain_create(domain=cast.b.domain, name="alias-of-bravo.test", acting_user=cast.operator)
    assert dkim.dkim_maintain() == 2  # alpha's and bravo's; none for the alias
    assert set(DkimKey.objects.values_list("domain__name", flat=True)) == {cast.a.domain.name, cast.b.domain.name}
    assert dkim.dkim_maintain() == 0
    assert dkim.signing_key(alias) is not None


def test_a_new_domain_queues_its_key_after_commit(cast: Cast, monkeypatch: pytest.MonkeyPatch,
                                                  django_capture_on_commit_callbacks: Any) -> None:
    queued: list[int] = []
    monkeypatch.setattr(dkim, "enqueue_ensure", queued.append)
    monkeypatch.setattr("provisioning.revisions.enqueue_push", lambda domain_id, countdown=None: None)
    Plan.objects.filter(pk=cast.a.plan.pk).update(max_domains=5)
    cast.a.pack.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        domain = domain_create(pack=cast.a.pack, name="fresh-domain.test", acting_user=cast.operator)
    assert queued == [domain.pk]
    assert not DkimKey.objects.filter(domain=domain).exists()  # not made in the page's time


# --- the document -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("fast_keys")
def test_the_document_carries_the_signing_key(cast: Cast) -> None:
    domain = Domain.objects.get(pk=cast.a.domain.pk)
    document = snapshot.build(domain)
    assert document["dkim"] is None  # type: ignore[typeddict-item]
    key = dkim.dkim_key_ensure(domain)
    assert key is not None
    domain.refresh_from_db()
    document = snapshot.build(domain)
    contract.check_document(document, complete=True)
    assert document["dkim"] == {  # type: ignore[typeddict-item]
        "selector": key.selector, "private_key": keys.unseal(key.sealed_private_key)}
    delta = snapshot.build_delta(domain, domain.revision - 1)
    contract.check_document(delta, complete=True)
    assert delta["dkim"] == document["dkim"]  # type: ignore[typeddict-item]
    with override_settings(DKIM_SEAL_KEY="not the key it was sealed with"):
        assert "dkim" not in snapshot.build(domain)  # left as the host has it; the rest still goes


def test_an_older_format_cannot_carry_a_key() -> None:
    document = {"format": 5, "domain": "a.test", "revision": 1, "state": "present",
                "dkim": {"selector": "s", "private_key": "x"}}
    with pytest.raises(contract.DocumentError, match="dkim: unknown in format 5"):
        contract.check_document(document)


# --- the host ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("hostile", ["a;b", "../x", "x\n", "a b", "A1", "-a", "a.b", "", "x" * 64, "é", 5, None])
def test_a_hostile_selector_is_refused(hostile: object) -> None:
    with pytest.raises(RenderError, match="selector"):
        host_dkim.selector(hostile)


def test_only_an_rsa_private_key_is_taken() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pem = premade(0).private_pem
    assert host_dkim.private_key(pem).decode().startswith("-----BEGIN PRIVATE KEY-----")
    public = serialization.load_pem_private_key(pem.encode(), None).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    edwards = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    for bad in (public, edwards, "garbage", pem.replace("A", "B", 3), "é" + pem, 7):
        with pytest.raises(RenderError, match="private key"):
            host_dkim.private_key(bad)
    # What is written is the parsed key written again, never the text received.
    assert host_dkim.private_key(pem + "\nselector x;\n") == host_dkim.private_key(pem)


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


def read_map(cfg: HostConfig, name: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in (cfg.dkim_root / name).read_text().splitlines())


def test_the_agent_writes_the_key_and_the_maps(cfg: HostConfig) -> None:
    pem = premade(0).private_pem
    apply(document("real.test", 1, dkim={"selector": "mp20261208", "private_key": pem}), cfg)
    path = cfg.dkim_root / "keys" / "real.test.mp20261208.key"
    assert path.read_text() == host_dkim.private_key(pem).decode()
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640 and info.st_uid == 0
    assert stat.S_IMODE(cfg.dkim_root.stat().st_mode) == 0o750
    if os.geteuid() == 0:
        import grp
        assert info.st_gid == grp.getgrnam(host_dkim.RSPAMD_GROUP).gr_gid
    assert read_map(cfg, "selectors.map") == {"real.test": "mp20261208"}
    assert read_map(cfg, "paths.map") == {"real.test": str(path)}

    # An alias domain signs d=<alias> with its target's key.
    apply({"format": contract.FORMAT, "domain": "alias.test", "revision": 1, "state": "present", "verified": True,
           "alias_of": "real.test"}, cfg)
    assert read_map(cfg, "selectors.map") == {"alias.test": "mp20261208", "real.test": "mp20261208"}
    assert read_map(cfg, "paths.map")["alias.test"] == str(path)

    # A delta that does not name the key leaves it; a rotation replaces it (the old file goes).
    apply({**document("real.test", 2), "base": 1, "removed": []}, cfg)
    assert path.exists()
    other = premade(1).private_pem
    apply(document("real.test", 3, dkim={"selector": "mp20261209", "private_key": other}), cfg)
    assert not path.exists()
    assert read_map(cfg, "selectors.map") == {"alias.test": "mp20261209", "real.test": "mp20261209"}

    # A domain not served (unproven) signs nothing; a removed one leaves no key behind.
    apply(document("real.test", 4, verified=False, dkim={"selector": "mp20261209", "private_key": other}), cfg)
    assert read_map(cfg, "selectors.map") == {}
    apply({"format": contract.FORMAT, "domain": "real.test", "revision": 5, "state": "absent"}, cfg)
    assert list((cfg.dkim_root / "keys").iterdir()) == []
    assert (cfg.dkim_root / "paths.map").read_text() == ""


def test_a_bad_key_applies_nothing(cfg: HostConfig) -> None:
    with pytest.raises(RenderError, match="selector"):
        apply(document("real.test", 1, dkim={"selector": "../../etc/x", "private_key": premade(0).private_pem}), cfg)
    with pytest.raises(RenderError, match="private key"):
        apply(document("real.test", 1, dkim={"selector": "ok", "private_key": "-----BEGIN nothing"}), cfg)
    db = sqlite3.connect(cfg.maps_db)
    assert db.execute("SELECT count(*) FROM domains").fetchone() == (0,)
    db.close()
    assert not (cfg.dkim_root / "keys").exists() or not list((cfg.dkim_root / "keys").iterdir())


@pytest.mark.usefixtures("fast_keys")
def test_domain_verify_still_works_with_keys(cast: Cast) -> None:
    # a proven domain's document carries its key (the host serves and signs it)
    Plan.objects.filter(pk=cast.a.plan.pk).update(max_domains=5)
    cast.a.pack.refresh_from_db()
    domain = domain_create(pack=cast.a.pack, name="proven-later.test", acting_user=cast.operator)
    dkim.dkim_key_ensure(domain)
    domain_verify(domain=domain, acting_user=cast.operator)
    domain.refresh_from_db()
    built = snapshot.build(domain)
    assert built["verified"] is True and built["dkim"] is not None  # type: ignore[typeddict-item]


def test_a_real_host_signs_through_debians_rspamd(tmp_path: Path) -> None:
    from mailhost.stack import rspamd, templates
    from mailhost.stack.config import HostConfig as RealHost
    from mailhost.stack.production import production_files

    host = RealHost(root=tmp_path / "srv", hostname="mx1.example.net", tls_cert=tmp_path / "c.pem",
                    tls_key=tmp_path / "k.pem", rspamd_dir=tmp_path / "rspamd")
    files = {file.path: file.text for file in production_files(host, "pw")}
    conf = files[tmp_path / "rspamd" / "local.d" / "dkim_signing.conf"]
    assert f'selector_map = "{tmp_path}/srv/dkim/selectors.map";' in conf
    assert f'path_map = "{tmp_path}/srv/dkim/paths.map";' in conf
    assert "try_fallback = false;" in conf and "sign_inbound = false;" in conf
    arc = files[tmp_path / "rspamd" / "local.d" / "arc.conf"]
    assert 'use_domain = "recipient";' in arc and f'path_map = "{tmp_path}/srv/dkim/paths.map";' in arc
    main_cf = templates.postfix_main_cf(host)
    for line in ("smtpd_milters = inet:127.0.0.1:11332", "non_smtpd_milters = $smtpd_milters",
                 "milter_default_action = accept"):
        assert line in main_cf.splitlines()
    assert rspamd.milter(host) == "inet:127.0.0.1:11332"


# --- the screens ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("fast_keys")
@pytest.mark.parametrize("role", ["customer_a", "reseller_a", "support", "domain_admin_a"])
def test_the_domains_page_shows_the_records_to_publish(cast: Cast, client_as: Any, role: str) -> None:
    from django.urls import reverse

    domain = cast.a.domain
    alias = alias_domain_create(domain=domain, name="alias-of-alpha.test", acting_user=cast.operator)
    key = dkim.dkim_key_ensure(domain)
    assert key is not None
    nxt = dkim.dkim_key_rotate(domain, acting_user=cast.operator)
    page = client_as(role).get(reverse("screens:domain", args=[domain.pk])).content.decode()
    for name in (domain.name, alias.name):
        for k in (key, nxt):
            assert f"{k.selector}._domainkey.{name}</code>" in page
    assert f"v=DKIM1; k=rsa; p={key.public_key}</code>" in page
    assert page.count("next key: publish it now") == 2
    alias_page = client_as(role).get(reverse("screens:alias_domain", args=[domain.pk, alias.pk])).content.decode()
    assert f"{key.selector}._domainkey.{alias.name}</code>" in alias_page
    # The other tenant's pages show nothing of it.
    other = client_as("customer_b").get(reverse("screens:domain", args=[domain.pk]))
    assert other.status_code == 404


@pytest.mark.usefixtures("fast_keys")
def test_the_records_in_french(cast: Cast) -> None:
    from django.urls import reverse

    from tests.conftest import client_for

    dkim.dkim_key_ensure(cast.a.domain)
    page = client_for(cast, "customer_a", "fr").get(reverse("screens:domain", args=[cast.a.domain.pk])).content.decode()
    assert "DKIM : les enregistrements à publier" in page
