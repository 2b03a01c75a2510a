"""A silent mail host is seen (issue 15, item 14): the real agent's heartbeat (sent at its worker's
start and by its beat) reaches the panel through the real broker and worker; the operators' admin
shows each host's last report and contract version, its pending and failed domains and its oldest
change not applied; an agent that stops is flagged there after the interval, and logged as an
error once per silence."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from hostlink import push
from mailhost import contract
from provisioning.models import HostHealth
from tests.e2e.conftest import E2E
from tests.e2e.mailclient import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SILENT_AFTER = timedelta(seconds=3)  # the test's interval (the panel's: push.HOST_SILENT_AFTER)


def health_page(client, e2e: E2E) -> str:
    client.force_login(e2e.operator)
    page = client.get(reverse("admin:provisioning_hosthealth_changelist"), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    row = page.content.decode()
    start = row.index(f">{e2e.host.name}<")
    return row[start:row.index("</tr>", start)]


def test_a_live_agent_shows_its_version_and_a_silent_one_is_flagged_once(
    e2e: E2E, client, caplog: pytest.LogCaptureFixture
) -> None:
    domain = e2e.domain("health")
    e2e.wait_applied(domain)
    e2e.workers.agent.restart()  # its start heartbeat (this test's host row is new)
    wait_for(lambda: HostHealth.objects.filter(host=e2e.host, last_heartbeat_at__isnull=False).exists())
    health = HostHealth.objects.get(host=e2e.host)
    assert health.contract_version == max(contract.READS) and health.silent_since is None
    row = health_page(client, e2e)
    assert "reporting" in row and f">{max(contract.READS)}<" in row and "SILENT" not in row

    e2e.workers.agent.stop()
    try:
        e2e.mailbox(domain, "waits")  # a change the silent host will not apply
        caplog.set_level(logging.ERROR, logger="hostlink.push")
        last = HostHealth.objects.get(host=e2e.host).last_report_at
        assert push.check_hosts(now=last + SILENT_AFTER - timedelta(seconds=1),
                                    silent_after=SILENT_AFTER) == []  # not silent long enough yet
        wait_for(lambda: timezone.now() > last + SILENT_AFTER, timeout=SILENT_AFTER.total_seconds() + 5)
        assert push.check_hosts(silent_after=SILENT_AFTER) == [e2e.host.name]
        assert push.check_hosts(silent_after=SILENT_AFTER) == []  # once per silence
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and f"mail host {e2e.host.name} is silent" in errors[0]
        row = health_page(client, e2e)
        assert "SILENT since" in row and "its agent does not report" in row
        assert "<td class=\"field-pending_domains\">1</td>" in row  # the domain whose change waits
    finally:
        e2e.workers.agent.mark()
        e2e.workers.agent.start()
    wait_for(lambda: HostHealth.objects.get(host=e2e.host).silent_since is None)  # it reports again
    e2e.wait_applied(domain)
    row = health_page(client, e2e)
    assert "reporting" in row and "<td class=\"field-pending_domains\">0</td>" in row
