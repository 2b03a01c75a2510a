from django.db import migrations


def create_support_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name="support")


class Migration(migrations.Migration):
    dependencies = [("hosting", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_support_group, migrations.RunPython.noop)]
