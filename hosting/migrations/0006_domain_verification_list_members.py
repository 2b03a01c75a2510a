"""Domain ownership (a domain is served once proven the customer's) and a plan's members per list.

Domains hosted before this migration keep being served (verified_how "existing": their mail must
not stop); each gets its own token. Plans that existed keep lists unlimited; new plans get 10,000.
"""

import hosting.models
from django.db import migrations, models
from django.utils import timezone


def existing_domains_verified(apps, schema_editor):
    Domain = apps.get_model("hosting", "Domain")
    now = timezone.now()
    for domain in Domain.objects.only("pk").iterator():
        Domain.objects.filter(pk=domain.pk).update(
            verification_token=hosting.models.new_verification_token(), verified_at=now, verified_how="existing"
        )


def existing_plans_unlimited(apps, schema_editor):
    apps.get_model("hosting", "Plan").objects.update(max_list_members=-1)


class Migration(migrations.Migration):

    dependencies = [
        ('hosting', '0005_auditevent_domain_scope'),
    ]

    operations = [
        migrations.AddField(
            model_name='domain',
            name='verification_checked_at',
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name='last DNS check'),
        ),
        migrations.AddField(
            model_name='domain',
            name='verification_error',
            field=models.CharField(blank=True, editable=False, max_length=300, verbose_name="last DNS check's result"),
        ),
        migrations.AddField(
            model_name='domain',
            name='verification_token',
            field=models.CharField(default=hosting.models.new_verification_token, editable=False, max_length=64, verbose_name='verification token'),
        ),
        migrations.AddField(
            model_name='domain',
            name='verified_at',
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name='verified'),
        ),
        migrations.AddField(
            model_name='domain',
            name='verified_how',
            field=models.CharField(blank=True, choices=[('txt', 'TXT record'), ('mx', 'MX record'), ('hand', 'by hand'), ('existing', 'hosted before verification existed')], editable=False, max_length=10, verbose_name='verified by'),
        ),
        migrations.AddField(
            model_name='plan',
            name='max_list_members',
            field=models.IntegerField(default=10000, help_text='−1 means unlimited.', verbose_name='members per mailing list'),
        ),
        migrations.AddConstraint(
            model_name='plan',
            constraint=models.CheckConstraint(condition=models.Q(('max_list_members__gte', -1)), name='plan_max_list_members_valid'),
        ),
        migrations.RunPython(existing_domains_verified, migrations.RunPython.noop),
        migrations.RunPython(existing_plans_unlimited, migrations.RunPython.noop),
    ]
