"""On PostgreSQL, a trigram index on `search_name`: the POP accounts' search ("contains", any part
of a name) reads the matching rows only, whatever the domain holds. SQLite has no such index; its
search reads the domain's rows (the newcomer's small domains)."""

from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")  # a trusted extension (PostgreSQL 13+)
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS mailbox_search_trigram ON mail_mailbox USING gin (search_name gin_trgm_ops)")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS mailbox_search_trigram")


class Migration(migrations.Migration):
    dependencies = [("mail", "0007_mailbox_rename")]
    operations = [migrations.RunPython(create, drop)]
