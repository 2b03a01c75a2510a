"""The quota warning Dovecot's quota_warning runs (mailhost/quota_warning.py): its message in the
mailbox's language, headers RFC 2047-encoded, no value reaching a header or the LDA's command line
unchecked; and how the stack installs and wires it (a copy beside Dovecot's config, run as user
mail, 95 % before 80 %). tests/e2e/test_quota_warning_e2e.py proves it with real mail.
"""

from __future__ import annotations

import email
import email.policy
import re
import subprocess
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from hosting.models import AuditEvent, Customer, Domain, Plan
from hosting.services import customer_create
from hostlink import snapshot
from mail.models import Mailbox
from mailhost import contract, maps, quota_warning
from mailhost.apply import HostConfig as ApplyConfig
from mailhost.apply import apply
from mailhost.quota_warning import EX_USAGE, Refused, check_percent, check_user, human_size, language_of, quota_bytes
from mailhost.render import RenderError
from mailhost.stack import HostConfig, StackConfig, dovecot_conf, production_files
from provisioning.customers import customer_set_language
from tests.conftest import Cast, client_for
from tests.factories import MailboxFactory

QUOTA = "*:bytes=1048576"


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def test_french_warning_says_percent_quota_and_how_to_free_space() -> None:
    raw = quota_warning.warning("anne@exemple.test", 80, 1048576, "fr").as_bytes()
    head, _, _body = raw.partition(b"\r\n\r\n")
    assert max(head) < 128  # every header in ASCII: the Subject as RFC 2047 encoded words
    message = parsed(raw)
    assert str(message["Subject"]) == "Votre boîte anne@exemple.test est pleine à 80\N{NO-BREAK SPACE}%"
    assert message["From"] == "postmaster@exemple.test" and message["To"] == "anne@exemple.test"
    assert message["Auto-Submitted"] == "auto-generated" and message["Content-Language"] == "fr"
    text = message.get_content()
    assert "80\N{NO-BREAK SPACE}% de son quota de 1\N{NO-BREAK SPACE}Mo" in text
    assert "supprimez les messages" in text and "Indésirables" in text


def test_english_for_anything_but_french() -> None:
    for value in ("en", "", "de", "EN", "xx-yy"):
        assert language_of(value) == "en"
    for value in ("fr", "FR", "fr-ca"):
        assert language_of(value) == "fr"
    message = parsed(quota_warning.warning("bob@example.test", 95, 500 * 1024 * 1024, "en").as_bytes())
    assert str(message["Subject"]) == "Your mailbox bob@example.test is 95 % full"
    assert "95 % of its quota of 500 MB" in message.get_content()


def test_sizes_as_the_panel_shows_them() -> None:
    assert human_size(1536 * 1024, "en") == "1.5 MB"
    assert human_size(1536 * 1024, "fr") == "1,5\N{NO-BREAK SPACE}Mo"
    assert human_size(2 * 1024**3, "en") == "2 GB"
    assert human_size(900, "en") == "900 bytes"


@pytest.mark.parametrize("user", [
    "bob@example.test\r\nBcc: eve@evil.test", "bob@example.test\n", "Bob@Example.test", "bob smith@example.test",
    "bob@example.test -o mail_location=/tmp", "bob", "bob@", "@example.test", "bob@@x.test",
    "bob@exa mple.test", "bob@123",
])
def test_an_address_that_could_break_a_header_or_the_command_is_refused(user: str) -> None:
    with pytest.raises(Refused):
        check_user(user)


@pytest.mark.parametrize("percent", ["0", "101", "8o", "80\n", "-80", "", "1000"])
def test_a_percent_out_of_range_is_refused(percent: str) -> None:
    with pytest.raises(Refused):
        check_percent(percent)


@pytest.mark.parametrize("rule", ["*:bytes=1\nx", "*:storage=10M", "", "*:bytes=-1", "*:bytes=1 2"])
def test_a_quota_rule_of_another_form_is_refused(rule: str) -> None:
    with pytest.raises(Refused):
        quota_bytes(rule)


def test_nothing_is_delivered_for_a_refused_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[object] = []
    monkeypatch.setattr(quota_warning.subprocess, "run", lambda *a, **k: ran.append(a))
    conf = "/etc/dovecot/dovecot.conf"
    assert quota_warning.main(["qw", conf, "80", "a@b.test\nBcc: c@d.test", QUOTA, "fr"]) == EX_USAGE
    assert quota_warning.main(["qw", conf, "80", "a@b.test", QUOTA, "fr", "extra"]) == EX_USAGE
    assert quota_warning.main(["qw", "dovecot.conf", "80", "a@b.test", QUOTA, "fr"]) == EX_USAGE
    assert ran == []


def test_the_lda_gets_the_message_with_the_quota_not_enforced(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[list[str], bytes]] = []

    def run(argv: list[str], *, input: bytes, **_kw: object) -> subprocess.CompletedProcess[bytes]:
        calls.append((argv, input))
        return subprocess.CompletedProcess(argv, 0, b"", b"")

    monkeypatch.setattr(quota_warning.subprocess, "run", run)
    # No language (a domain the host has none for): English.
    assert quota_warning.main(["qw", "/etc/dovecot/dovecot.conf", "95", "a@b.test", QUOTA]) == 0
    [(argv, data)] = calls
    assert argv[:5] == [quota_warning.DOVECOT_LDA, "-c", "/etc/dovecot/dovecot.conf", "-d", "a@b.test"]
    assert "plugin/quota=count:User quota:noenforcing" in argv
    assert str(parsed(data)["Subject"]) == "Your mailbox a@b.test is 95 % full"


def test_the_script_runs_alone_under_the_systems_python() -> None:
    """Isolated (-I), with the standard library only: no import of the agent."""
    done = subprocess.run(["python3", "-I", quota_warning.__file__], capture_output=True, text=True, check=False)
    assert done.returncode == EX_USAGE and "usage" in done.stderr


def test_dovecot_runs_a_copy_as_user_mail_95_before_80(tmp_path: Path) -> None:
    stack = StackConfig(root=Path("/srv/stack-for-comparison"))
    text = dovecot_conf(stack)
    assert f"executable = script /usr/bin/python3 -I {stack.quota_warning_script} {stack.dovecot_conf}" in text
    service = text.split("service quota-warning {", 1)[1].split("\n}\n", 1)[0]
    assert "user = mail" in service and "mode = 0600" in service
    high, low = text.index("storage=95%% quota-warning 95 %u"), text.index("storage=80%% quota-warning 80 %u")
    assert high < low  # Dovecot runs the first warning a delivery crosses: the higher one
    assert text.count("%{userdb:quota_rule} %{userdb:panel_language}") == 2


def test_the_production_files_carry_the_copy(tmp_path: Path) -> None:
    host = HostConfig(root=tmp_path, hostname="mail.example.net", tls_cert=tmp_path / "c", tls_key=tmp_path / "k",
                      dovecot_dir=tmp_path / "dovecot", postfix_dir=tmp_path / "postfix")
    files = {file.path: file for file in production_files(host, "secret")}
    copy = files[host.quota_warning_script]
    assert copy.text == Path(quota_warning.__file__).read_text(encoding="utf-8") and copy.mode == 0o755


def test_the_userdb_gives_the_domains_language(tmp_path: Path) -> None:
    path = tmp_path / "maps.sqlite"
    maps.create(path)
    db = maps.connect(path)
    db.execute("INSERT INTO domains(domain, active, revision) VALUES ('d.test', 1, 3), ('alias.test', 1, 1)")
    db.execute("INSERT INTO alias_domains(alias, domain) VALUES ('alias.test', 'd.test')")
    db.execute("INSERT INTO mailboxes(email, domain, password_hash, home) VALUES ('a@d.test', 'd.test', 'x', '/h')")

    def userdb(user: str) -> dict[str, object]:
        local, _, domain = user.partition("@")
        query = maps.DOVECOT_USER_QUERY.replace("%Lu", user).replace("%Ln", local).replace("%Ld", domain)
        cursor = db.execute(query)
        return dict(zip([c[0] for c in cursor.description], cursor.fetchone(), strict=True))

    assert userdb("a@d.test")["panel_language"] is None  # none said: Dovecot gives an empty word, English
    db.execute("INSERT INTO domain_languages(domain, language) VALUES ('d.test', 'fr')")
    assert userdb("a@d.test")["panel_language"] == userdb("a@alias.test")["panel_language"] == "fr"
    assert userdb("a@d.test")["quota_rule"] == "*:bytes=0"


# --- the list of POP accounts: who is near full --------------------------------------------------


@pytest.mark.django_db
def test_the_account_list_marks_and_filters_the_accounts_near_full(cast: Cast) -> None:
    domain = cast.a.domain
    Plan.objects.filter(pk=cast.a.plan.pk).update(max_mailboxes=-1)
    MB = 1024 * 1024
    # 80 % exactly is near full; one byte under is not; no quota never is.
    for local, quota_mb, used in (("full80", 10, 8 * MB), ("under", 10, 8 * MB - 1), ("full99", 1, MB - 10),
                                  ("nolimit", 0, 50 * MB), ("big", 200_000, 150_000 * MB)):  # 75 % of 195 GiB
        MailboxFactory(domain=domain, local_part=local, quota_mb=quota_mb)
        Mailbox.objects.filter(domain=domain, local_part=local).update(quota_used_bytes=used)
    client = client_for(cast, "domain_admin_a", "fr")
    path = reverse("screens:mailboxes", args=[domain.pk])

    def near_full_badges(page: str) -> list[str]:
        rows = page.split("<tr")[2:]
        return [re.search(r">([a-z0-9]+)</a>", row).group(1) for row in rows  # type: ignore[union-attr]
                if 'class="badge near-full">presque pleine</span>' in row]

    page = client.get(path).content.decode()
    assert near_full_badges(page) == ["full80", "full99"]
    assert "Seulement les comptes presque pleins (quota utilisé à 80\N{NO-BREAK SPACE}% ou plus)" in page
    with CaptureQueriesContext(connection) as every:
        client.get(path)
    with CaptureQueriesContext(connection) as filtered:
        page = client.get(path, {"full": "1"}).content.decode()
    assert [m for m in ("full80", "under", "full99", "nolimit", "big", "postmaster") if f">{m}</a>" in page] == [
        "full80", "full99"]
    assert len(filtered) <= len(every) + 1  # the filter's own count of rows, at most

    outsider = client_for(cast, "domain_admin_b")
    assert outsider.get(path, {"full": "1"}).status_code == 404


# --- the domain's language: from the customer to the host's userdb ------------------------------


def _document(revision: int, **changes: object) -> dict[str, object]:
    return {"format": contract.FORMAT, "domain": "lang.test", "revision": revision, "state": "present",
            "verified": True, "mailboxes": [], **changes}


def test_the_host_keeps_the_language_the_document_says_and_refuses_another(tmp_path: Path) -> None:
    cfg = ApplyConfig(name="t", root=tmp_path)
    (tmp_path / "db").mkdir()
    maps.create(cfg.maps_db)

    def stored() -> list[tuple[str, str]]:
        db = maps.connect(cfg.maps_db)
        try:
            return db.execute("SELECT domain, language FROM domain_languages").fetchall()
        finally:
            db.close()

    apply(_document(1, language="en"), cfg)
    assert stored() == [("lang.test", "en")]
    apply(_document(2), cfg)  # absent: kept (an older panel's document)
    assert stored() == [("lang.test", "en")]
    apply(_document(3, language="fr"), cfg)
    assert stored() == [("lang.test", "fr")]
    for hostile in ("fr %u", "de", "fr\n", ""):
        with pytest.raises(RenderError, match="unknown language"):
            apply(_document(4, language=hostile), cfg)
    assert stored() == [("lang.test", "fr")]
    with pytest.raises(contract.DocumentError, match="language: unknown in format 5"):
        contract.check_document(_document(4, format=5, language="fr"))
    apply({"format": contract.FORMAT, "domain": "lang.test", "revision": 5, "state": "absent"}, cfg)
    assert stored() == []


@pytest.mark.django_db
def test_the_document_carries_the_customers_language(cast: Cast) -> None:
    domain = cast.a.domain
    assert snapshot.build(domain)["language"] == "fr"  # type: ignore[typeddict-item]
    before = Domain.objects.get(pk=domain.pk).revision
    customer_set_language(customer=cast.a.customer, language="en", acting_user=cast.operator)
    domain.refresh_from_db()
    assert domain.revision > before  # its host gets the language with the push this queues
    assert snapshot.build(domain)["language"] == "en"  # type: ignore[typeddict-item]
    assert snapshot.build_delta(domain, before)["language"] == "en"
    with pytest.raises(ValidationError):
        customer_set_language(customer=cast.a.customer, language="de", acting_user=cast.operator)
    with pytest.raises(ValidationError):
        customer_create(reseller=None, name="X", language="de", acting_user=cast.operator)


@pytest.mark.django_db
def test_the_customers_admin_page_sets_the_language_and_its_domains_go_to_their_host(cast: Cast) -> None:
    customer, domain = cast.a.customer, cast.a.domain
    before = Domain.objects.get(pk=domain.pk).revision
    path = reverse("admin:hosting_customer_change", args=[customer.pk])
    client = client_for(cast, "reseller_a")
    assert client.post(path, {"name": customer.name, "email": "", "language": "en"}).status_code == 302
    assert Customer.objects.get(pk=customer.pk).language == "en"
    assert Domain.objects.get(pk=domain.pk).revision > before
    assert AuditEvent.objects.filter(action="customer.change", detail__fields=["language"]).exists()
    # Not sent (an older form): kept; the same language: no new revision.
    revision = Domain.objects.get(pk=domain.pk).revision
    assert client.post(path, {"name": customer.name, "email": ""}).status_code == 302
    assert client.post(path, {"name": customer.name, "email": "", "language": "en"}).status_code == 302
    assert Customer.objects.get(pk=customer.pk).language == "en"
    assert Domain.objects.get(pk=domain.pk).revision == revision
    assert client_for(cast, "reseller_b").post(path, {"name": "x", "language": "fr"}).status_code in (302, 403, 404)
    assert Customer.objects.get(pk=customer.pk).language == "en"
