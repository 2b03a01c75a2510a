"""What becomes of mail to unknown addresses of the domain: bounce (the default, the seed
recommends it), delete, deliver to a POP account, forward to a remote address, or forward x@ to
x@ another domain. Domain admins and above only (QmailAdmin let any mailbox user change it)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from mail import services
from mail.models import CatchAll, CatchAllMode, Mailbox
from screens.forms.domain import CatchAllForm
from screens.kit import DomainContext, apply_changes, domain_screen
from screens.views.mailboxes import catchall_status

MAX_CHOICES = 500  # beyond this many accounts the page asks for the name, not a list


@require_http_methods(["GET", "POST"])
@domain_screen
def catchall(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    current = CatchAll.objects.visible_to(ctx.seat).filter(domain=ctx.domain).first()
    names = list(Mailbox.objects.visible_to(ctx.seat).filter(domain=ctx.domain).order_by("local_part")
                 .values_list("local_part", flat=True)[:MAX_CHOICES])
    posted = request.POST.copy() if request.method == "POST" else None
    if posted is not None and "mode" not in posted and posted.get("mailbox"):
        posted["mode"] = CatchAllMode.MAILBOX  # the radio of the POP accounts' list
    chosen = posted.get("mailbox") if posted is not None else None
    if chosen and chosen not in names:
        names.append(chosen)  # past MAX_CHOICES: the service checks the account exists
    initial = {"mode": current.mode if current else CatchAllMode.BOUNCE}
    if current is not None:
        initial[{"mailbox": "mailbox", "remote": "remote", "domain": "other_domain"}.get(current.mode, "_")] = (
            current.target)
    form = CatchAllForm(posted, initial=initial, mailboxes=names)
    if posted is not None and form.is_valid():
        # A refusal of the target on the target's field; one about the domain's redirects on the form.
        target = {"mailbox": "mailbox", "remote": "remote", "domain": "other_domain"}.get(form.cleaned_data["mode"])
        if apply_changes(form, [({"": target, "pointed_at": None}, lambda: services.catchall_set(
            domain=ctx.domain, mode=form.cleaned_data["mode"], target=form.target(), acting_user=ctx.seat,
        ))]):
            fresh = CatchAll.objects.visible_to(ctx.seat).filter(domain=ctx.domain).first()
            messages.success(request, catchall_status(fresh))
            back = "screens:mailboxes" if request.POST.get("next") == "mailboxes" else "screens:catchall"
            return redirect(back, pk=ctx.domain.pk)
    return render(request, "mail/catchall.html", ctx.page(
        form=form, status_line=catchall_status(current), **ctx.sync(current.revision if current else 0),
    ), status=400 if form.errors else 200)
