"""Mailing lists made in the panel become mlmmj lists on the real stack; membership changed by
mail comes back to the panel."""

from __future__ import annotations

import pytest
from celery import current_app

from lists.models import ListMember
from lists.services import list_create, list_member_add
from mailhost import contract
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import pop3_messages, send, sink_messages, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def subjects(e2e: E2E, address: str) -> list[str]:
    return [str(m["Subject"]) for m in pop3_messages(e2e.stack, address, PASSWORD)]


def test_a_list_created_in_the_panel_distributes_a_subscribers_post(e2e: E2E) -> None:
    domain = e2e.domain("list")
    e2e.mailbox(domain, "owner")
    e2e.mailbox(domain, "reader")
    news = list_create(domain=domain, name="news", owner=f"owner@{domain.name}", prefix="[news]",
                       sub_confirm=False, acting_user=e2e.operator)
    for address in (f"reader@{domain.name}", "friend@outside.test"):
        list_member_add(mailing_list=news, address=address, acting_user=e2e.operator)
    e2e.wait_applied(domain)
    send(e2e.stack, f"reader@{domain.name}", f"news@{domain.name}", "hello list", "first post")
    wait_for(lambda: "[news] hello list" in subjects(e2e, f"owner@{domain.name}"), timeout=30)
    wait_for(lambda: "[news] hello list" in subjects(e2e, f"reader@{domain.name}"), timeout=30)
    wait_for(lambda: [m for m in sink_messages(e2e.stack, "friend@outside.test")
                      if str(m["Subject"]) == "[news] hello list"], timeout=30)
    # A non-subscriber is refused (subscribers only, the default); nothing reaches the members.
    send(e2e.stack, "stranger@outside.test", f"news@{domain.name}", "spam", "x")
    wait_for(lambda: sink_messages(e2e.stack, "stranger@outside.test"), timeout=30)
    assert "[news] spam" not in subjects(e2e, f"reader@{domain.name}")


def test_subscription_by_mail_shows_up_in_the_panel(e2e: E2E) -> None:
    domain = e2e.domain("sub")
    e2e.mailbox(domain, "owner")
    news = list_create(domain=domain, name="club", owner=f"owner@{domain.name}", sub_confirm=False,
                       acting_user=e2e.operator)
    e2e.wait_applied(domain)
    send(e2e.stack, "newcomer@outside.test", f"club+subscribe@{domain.name}", "subscribe", "")
    wait_for(lambda: sink_messages(e2e.stack, "newcomer@outside.test"), timeout=30)  # the welcome
    current_app.send_task(contract.MAINTAIN, queue=e2e.host.queue)  # what the agent's beat runs
    wait_for(lambda: ListMember.objects.filter(mailing_list=news, address="newcomer@outside.test").exists(),
             timeout=30)
    e2e.wait_applied(domain)  # the panel's new revision, with the member, applied without a change
    list_member_add(mailing_list=news, address=f"owner@{domain.name}", acting_user=e2e.operator)
    e2e.wait_applied(domain)
    send(e2e.stack, f"owner@{domain.name}", f"club@{domain.name}", "welcome all", "x")
    wait_for(lambda: [m for m in sink_messages(e2e.stack, "newcomer@outside.test")
                      if "welcome all" in str(m["Subject"])], timeout=30)
