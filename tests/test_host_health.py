"""The mail hosts' health in the operators' admin (issue 15, item 14), panel side: what the
agents' heartbeats and reports record, the pending and failed domains and the oldest change not
applied, a host never heard from. The real agent's heartbeat and silence: tests/e2e/test_host_health_e2e.py."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from hostlink import push
from hostlink import reports as host_reports
from mail.services import mailbox_set_access
from provisioning.models import DomainSync, HostHealth
from tests.conftest import ROLES, Cast, client_for

pytestmark = pytest.mark.django_db


def row_of(cast: Cast) -> str:
    page = client_for(cast, "operator").get(reverse("admin:provisioning_hosthealth_changelist")).content.decode()
    start = page.index(f">{cast.host.name}<")
    return page[start:page.index("</tr>", start)]


def cell(row: str, field: str) -> str:
    start = row.index(f'class="field-{field}">') + len(f'class="field-{field}">')
    return row[start:row.index("</td>", start)]


def test_the_admin_shows_what_waits_on_each_host(
    cast: Cast, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    monkeypatch.setattr("provisioning.revisions.enqueue_push", lambda domain_id, countdown=None: None)
    monkeypatch.setattr(push, "send", lambda host, document: None)
    push.heard_from(cast.host.name, contract_version=4, heartbeat=True)
    for tenant in (cast.a, cast.b):
        with django_capture_on_commit_callbacks(execute=True):
            mailbox_set_access(mailbox=tenant.postmaster, allow_pop3=False, acting_user=cast.operator)
            push.push(tenant.domain.pk)
    first = DomainSync.objects.get(domain=cast.a.domain).pending_since
    assert first is not None and first > timezone.now() - timedelta(seconds=5)
    cast.b.domain.refresh_from_db()
    host_reports.record_report(host=cast.host.name, domain=cast.b.domain.name, revision=cast.b.domain.revision,
                           state="present", error="OperationalError: database or disk is full")
    row = row_of(cast)
    assert cell(row, "state") == "reporting" and cell(row, "contract_version") == "4"
    assert cell(row, "pending_domains") == "2" and cell(row, "failed_domains") == "1"
    assert cell(row, "oldest_change") != "-"
    cast.a.domain.refresh_from_db()
    host_reports.record_report(host=cast.host.name, domain=cast.a.domain.name, revision=cast.a.domain.revision,
                           state="present")
    assert DomainSync.objects.get(domain=cast.a.domain).pending_since is None  # nothing waits there now
    row = row_of(cast)
    assert cell(row, "pending_domains") == "1" and cell(row, "failed_domains") == "1"


def test_a_host_never_heard_from_is_flagged_after_the_interval(cast: Cast, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="hostlink.push")
    assert push.check_hosts() == []  # first seen now: its agent has the interval to speak
    health = HostHealth.objects.get(host=cast.host)
    assert health.last_report_at is None and cell(row_of(cast), "state") == "never heard from yet"
    later = timezone.now() + push.HOST_SILENT_AFTER + timedelta(seconds=1)
    assert push.check_hosts(now=later) == [cast.host.name]
    assert push.check_hosts(now=later + timedelta(minutes=5)) == []  # logged once per silence
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        f"mail host {cast.host.name} is silent: its agent has not reported since it was first expected "
        "(its domains' changes wait)"]
    assert cell(row_of(cast), "state").startswith("SILENT since")
    push.heard_from(cast.host.name)  # a report ends the silence
    assert HostHealth.objects.get(host=cast.host).silent_since is None
    assert cell(row_of(cast), "state") == "reporting"


@pytest.mark.parametrize("role", ROLES)
def test_only_operators_and_support_see_the_hosts_health(cast: Cast, role: str) -> None:
    health = HostHealth.objects.create(host=cast.host)
    seen = set(HostHealth.objects.visible_to(cast.seat(role)))
    assert seen == ({health} if role in ("operator", "support") else set())
