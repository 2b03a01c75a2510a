"""Mailing lists and their members arrive with issue 3 (data) and the list screens' issue."""
