"""A domain's mail robots (standalone autoresponders): the list, add, modify, delete."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods
from django_tables2 import RequestConfig

from mail import services
from mail.access import get_robot_in
from mail.models import Robot
from screens.forms.domain import RobotForm
from screens.kit import DomainContext, apply_changes, confirm_delete, domain_screen
from screens.tables import RobotTable

# Where the service's refusal goes, by its code (the name's, on create: "" there; else the whole form).
ROBOT_FIELDS: dict[str, str | None] = {
    "": None, "limit": None, "destination": "copy_to", "chain": "copy_to", "loop": "copy_to",
    "reply_hours": "reply_hours", "required": "message"}


@domain_screen
def robot_list(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    rows = Robot.objects.visible_to(ctx.seat).filter(domain=ctx.domain).order_by("local_part")
    table = RobotTable(rows, domain_pk=ctx.domain.pk)
    RequestConfig(request, paginate={"per_page": 25}).configure(table)
    return render(request, "mail/robot_list.html", ctx.page(table=table, feature=ctx.feature("robots")))


@require_http_methods(["GET", "POST"])
@domain_screen
def robot_create(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    form = RobotForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if apply_changes(form, [({**ROBOT_FIELDS, "": "local_part"}, lambda: services.robot_create(
            domain=ctx.domain, local_part=data["local_part"], subject=data["subject"], message=data["message"],
            copy_to=data["copy_to"], reply_hours=data["reply_hours"], acting_user=ctx.seat,
        ))]):
            messages.success(request, _("The mail robot %(name)s@%(domain)s was created.") % {
                "name": data["local_part"].strip().lower(), "domain": ctx.domain.unicode_name})
            return redirect("screens:robots", pk=ctx.domain.pk)
    return render(request, "mail/robot_form.html", ctx.page(form=form, feature=ctx.room("robots"), robot=None),
                  status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@domain_screen
def robot_modify(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    robot = get_robot_in(ctx.seat, ctx.domain, obj)
    initial = {"copy_to": robot.copy_to, "subject": robot.subject, "message": robot.message,
               "reply_hours": robot.reply_hours}
    form = RobotForm(request.POST if request.method == "POST" else None, initial=initial, renaming=False)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if apply_changes(form, [(ROBOT_FIELDS, lambda: services.robot_update(
            robot=robot, subject=data["subject"], message=data["message"], copy_to=data["copy_to"],
            reply_hours=data["reply_hours"], acting_user=ctx.seat,
        ))]):
            messages.success(request, _("%(address)s was modified.") % {"address": str(robot)})
            return redirect("screens:robot_modify", pk=ctx.domain.pk, obj=robot.pk)
        robot.refresh_from_db()
    return render(request, "mail/robot_form.html", ctx.page(form=form, robot=robot, **ctx.sync(robot.revision)),
                  status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@domain_screen
def robot_delete(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    robot = get_robot_in(ctx.seat, ctx.domain, obj)
    address = {"address": str(robot)}
    return confirm_delete(
        request, ctx, robot, delete=lambda: services.robot_delete(robot=robot, acting_user=ctx.seat),
        back="screens:robots", question=_("Delete the mail robot %(address)s?") % address,
        done=_("The mail robot %(address)s was deleted.") % address)
