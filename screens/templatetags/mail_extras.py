"""Template filters of mail's pages."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def megabytes(used_bytes: int) -> str:
    """Bytes as QmailAdmin showed them in "Utilisé / Quota (Mo)": two decimals ("0.05")."""
    return f"{(used_bytes or 0) / (1024 * 1024):.2f}"
