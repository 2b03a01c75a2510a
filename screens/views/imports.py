"""A list's members in bulk: import (paste or CSV upload), the import's report and progress, and
the CSV export."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from hosting.csvfiles import decode
from lists import export, imports
from lists.access import get_list_in
from lists.models import ImportState, MemberImport, MemberKind
from screens.forms.lists import ImportForm, member_kind
from screens.kit import DomainContext, apply_changes, domain_screen


@require_http_methods(["GET", "POST"])
@domain_screen
def member_import(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    mailing_list = get_list_in(ctx.seat, ctx.domain, obj)
    form = ImportForm(request.POST if request.method == "POST" else None, request.FILES or None,
                      initial={"kind": member_kind(request.GET.get("kind"))})
    job: list[MemberImport] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        text, source = (decode(data["file"]), "csv") if data.get("file") else (data["text"], "paste")
        if apply_changes(form, [({"too_large": "file", "": None}, lambda: job.append(imports.member_import(
            mailing_list=mailing_list, kind=data["kind"], text=text, source=source, acting_user=ctx.seat)))]):
            return redirect("screens:member_import_status", pk=ctx.domain.pk, obj=mailing_list.pk, job=job[0].pk)
    too_large = any(e.code == "too_large" for e in form.errors.as_data().get("file", []))
    page = ctx.page(mailing_list=mailing_list, form=form, kinds=MemberKind.choices)
    return render(request, "lists/import.html", page, status=413 if too_large else 400 if form.errors else 200)


@require_GET
@domain_screen
def member_import_status(request: HttpRequest, ctx: DomainContext, obj: int, job: int) -> HttpResponse:
    """The import's report; while it runs, its progress (the page refreshes itself)."""
    mailing_list = get_list_in(ctx.seat, ctx.domain, obj)
    member_import = get_object_or_404(MemberImport.objects.visible_to(ctx.seat).filter(mailing_list=mailing_list),
                                      pk=job)
    running = member_import.state == ImportState.RUNNING
    invalid_count = member_import.done - member_import.added - member_import.present
    # An import that is done short of its last line stopped at the list's limit (lists.imports).
    not_read = member_import.total - member_import.done if member_import.state == ImportState.DONE else 0
    return render(request, "lists/import_status.html", ctx.page(
        mailing_list=mailing_list, job=member_import, running=running, invalid_count=invalid_count, not_read=not_read,
        hidden_invalid=max(invalid_count - len(member_import.invalid), 0), kind_label=member_import.get_kind_display(),
    ))


@require_GET
@domain_screen
def member_export(request: HttpRequest, ctx: DomainContext, obj: int) -> StreamingHttpResponse:
    mailing_list = get_list_in(ctx.seat, ctx.domain, obj)
    kind = member_kind(request.GET.get("kind"))
    response = StreamingHttpResponse(export.csv_rows(ctx.seat, mailing_list, kind),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{export.file_name(mailing_list, kind)}"'
    response["Cache-Control"] = "private, no-store"
    return response
