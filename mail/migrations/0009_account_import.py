# The import job of a domain's POP accounts and forwards (mail.transfer).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('hosting', '0007_domain_verified_by_parent'),
        ('mail', '0008_mailbox_search_trigram'),
    ]

    operations = [
        migrations.CreateModel(
            name='AccountImport',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('mailboxes', 'POP accounts'), ('forwards', 'forwards')], max_length=10, verbose_name='kind')),
                ('state', models.CharField(choices=[('running', 'running'), ('done', 'done'), ('failed', 'failed')], default='running', max_length=8, verbose_name='state')),
                ('total', models.PositiveIntegerField(default=0, verbose_name='lines')),
                ('done', models.PositiveIntegerField(default=0, verbose_name='lines read')),
                ('created', models.PositiveIntegerField(default=0, verbose_name='created')),
                ('present', models.PositiveIntegerField(default=0, verbose_name='already there')),
                ('refused', models.JSONField(blank=True, default=list, verbose_name='refused lines')),
                ('refused_count', models.PositiveIntegerField(default=0, verbose_name='refused')),
                ('windows_1252', models.BooleanField(default=False, verbose_name='read as Windows-1252')),
                ('error', models.TextField(blank=True, verbose_name='error')),
                ('created_by', models.CharField(blank=True, max_length=320, verbose_name='by')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created')),
                ('domain', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='account_imports', to='hosting.domain', verbose_name='domain')),
            ],
            options={
                'verbose_name': 'account import',
                'verbose_name_plural': 'account imports',
                'ordering': ['-created_at'],
            },
        ),
    ]
