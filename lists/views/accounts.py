"""QmailAdmin's "Nouveau compte Pop", with its "subscribe to these lists" checkboxes: on the lists'
floor, because it subscribes the new account through the lists' services. The account and its
subscriptions are one change: when the account is refused, no subscription is left behind (the
fault of QmailAdmin, which subscribed first)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from lists.forms import MailboxWithListsForm
from lists.models import MailingList
from lists.services import list_member_add
from mail import services
from mail.views.domain import DomainContext, apply_changes, domain_screen


@require_http_methods(["GET", "POST"])
@domain_screen
def mailbox_create(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    default = ctx.domain.pack.plan.default_quota_mb
    domain_lists = MailingList.objects.visible_to(ctx.seat).filter(domain=ctx.domain).order_by("name")
    form = MailboxWithListsForm(
        request.POST if request.method == "POST" else None,
        lists=domain_lists if ctx.domain.pack.plan.max_lists else None,
        default_quota=_("%(quota)d MB") % {"quota": default} if default else _("unlimited"))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        address = f"{data['local_part'].strip().lower()}@{ctx.domain.name}"
        calls = [({"quota": "quota_mb", "": "local_part"}, lambda: services.mailbox_create(
            domain=ctx.domain, local_part=data["local_part"], password=data["password1"],
            real_name=data["real_name"], quota_mb=data["quota_mb"] or None, acting_user=ctx.seat,
        ))]
        calls += [("lists", lambda ml=ml: list_member_add(mailing_list=ml, address=address, acting_user=ctx.seat))
                  for ml in data.get("lists", [])]
        if apply_changes(form, calls):
            messages.success(request, _("The POP account %(address)s was created.") % {
                "address": f"{data['local_part'].strip().lower()}@{ctx.domain.unicode_name}"})
            return redirect("mail:mailboxes", pk=ctx.domain.pk)
    status = 400 if form.errors else 200
    return render(request, "mail/mailbox_create.html", ctx.page(form=form, feature=ctx.room("mailboxes")),
                  status=status)
