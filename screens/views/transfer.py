"""A domain's POP accounts and forwards as CSV (mail.transfer): the export, the import (paste or
upload), the import's report and progress."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from mail import transfer
from mail.models import AccountImport, ImportKind, ImportState
from screens.forms.lists import ImportForm
from screens.kit import DomainContext, domain_screen

LIST_PAGE = {ImportKind.MAILBOXES: "screens:mailboxes", ImportKind.FORWARDS: "screens:forwards"}
HELP = {
    ImportKind.MAILBOXES: gettext_lazy(
        "One account a line: its name (or address), real name, quota in MB, password, separated by ; or , "
        "(at most %(max)d lines). A first line that names the columns (address, real_name, quota_mb, password) "
        "may give them in any order."),
    ImportKind.FORWARDS: gettext_lazy(
        "One forward a line: its name (or address), then its destinations, separated by ; or , "
        "(at most %(max)d lines). A first line that names the columns (address, destinations) may give them "
        "in any order."),
}


class TransferForm(ImportForm):
    """The members' import form (text or file, its size checked) without their kind."""

    kind = None  # type: ignore[assignment]  # Django's way to drop a parent form's field; the stubs say a field

    def __init__(self, *args: Any, import_kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["text"].label = gettext_lazy("Lines")
        self.fields["text"].help_text = HELP[ImportKind(import_kind)] % {"max": transfer.MAX_LINES}
        self.fields["file"].help_text = gettext_lazy("At most 5 MB, UTF-8 or Windows-1252.")


@require_GET
@domain_screen
def account_export(request: HttpRequest, ctx: DomainContext, kind: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(transfer.export(ctx.seat, ctx.domain, kind),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{transfer.file_name(ctx.domain, kind)}"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_http_methods(["GET", "POST"])
@domain_screen
def account_import(request: HttpRequest, ctx: DomainContext, kind: str) -> HttpResponse:
    """The import's form. Not in a transaction: the import hashes its passwords before its own."""
    form = TransferForm(request.POST if request.method == "POST" else None, request.FILES or None, import_kind=kind)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data.get("file")
        try:
            job = transfer.account_import(domain=ctx.domain, kind=kind, data=upload or form.cleaned_data["text"],
                                          acting_user=ctx.seat)
        except ValidationError as error:
            form.add_error("file" if upload and error.code == "too_large" else None, error)
        else:
            return redirect("screens:account_import_status", pk=ctx.domain.pk, job=job.pk)
    too_large = any(e.code == "too_large" for e in form.errors.as_data().get("file", []))
    return render(request, "mail/account_import.html", ctx.page(
        form=form, kind=kind, kind_label=ImportKind(kind).label, list_page=LIST_PAGE[ImportKind(kind)]),
        status=413 if too_large else 400 if form.errors else 200)


@require_GET
@domain_screen
def account_import_status(request: HttpRequest, ctx: DomainContext, job: int) -> HttpResponse:
    """The import's report; while it runs, its progress (the page refreshes itself)."""
    found = get_object_or_404(AccountImport.objects.visible_to(ctx.seat).filter(domain=ctx.domain), pk=job)
    kind = ImportKind(found.kind)
    return render(request, "mail/account_import_status.html", ctx.page(
        job=found, running=found.state == ImportState.RUNNING, kind_label=kind.label, list_page=LIST_PAGE[kind],
        import_page=f"screens:{'mailbox' if kind == ImportKind.MAILBOXES else 'forward'}_import",
        hidden_refused=max(found.refused_count - len(found.refused), 0)))
