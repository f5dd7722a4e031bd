"""Monitoring migrations 0016 to 0024 squashed: retention and erasure, raw digests, paired counts,
cost records, LLM requests and prices, budgets, and the clock's ``created_at`` defaults.

After the schema: the digests of the predictions already stored (a database migrated up to 0015
may hold some), then the periodic schedules (django-celery-beat): the nightly purge, partitions
created ahead every hour, and the daily budget evaluation.
"""

import django.core.validators
import django.db.models.deletion
import hashlib
import mlops_portal.clock
from datetime import UTC
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models

MOD = 1 << 256
PURGE = ("monitoring: purge expired raw data", "monitoring.tasks.retention_purge")
AHEAD = ("monitoring: create partitions ahead", "monitoring.tasks.partitions_create_ahead")
BUDGETS = ("monitoring: evaluate cost budgets", "monitoring.tasks.budgets_evaluate_all")


def backfill_digests(apps, schema_editor):
    """Digests of the predictions already stored (one pass over the table)."""
    Prediction = apps.get_model("monitoring", "Prediction")
    RawDigest = apps.get_model("monitoring", "RawDigest")
    sums: dict = {}
    rows = Prediction.objects.values_list("version_id", "timestamp", "prediction_id").iterator(chunk_size=20000)
    for version_id, timestamp, pid in rows:
        key = (version_id, timestamp.astimezone(UTC).date())
        n, total = sums.get(key, (0, 0))
        sums[key] = (n + 1, (total + int.from_bytes(hashlib.sha256(pid.encode()).digest(), "big")) % MOD)
    RawDigest.objects.bulk_create(
        [RawDigest(version_id=v, day=d, rows=n, digest=f"{total:064x}") for (v, d), (n, total) in sums.items()],
        batch_size=2000,
    )


def create_schedules(apps, schema_editor):
    """Nightly purge at 02:30 UTC; partitions created ahead every hour; budgets daily at 06:15 UTC."""
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_day = {"day_of_week": "*", "day_of_month": "*", "month_of_year": "*", "timezone": "UTC"}
    nightly, _ = CrontabSchedule.objects.get_or_create(minute="30", hour="2", **every_day)
    hourly, _ = IntervalSchedule.objects.get_or_create(every=3600, period="seconds")
    daily, _ = CrontabSchedule.objects.get_or_create(minute="15", hour="6", **every_day)
    for (name, task), crontab, interval in ((PURGE, nightly, None), (AHEAD, None, hourly), (BUDGETS, daily, None)):
        PeriodicTask.objects.update_or_create(
            name=name, defaults={"task": task, "crontab": crontab, "interval": interval, "enabled": True}
        )


def remove_schedules(apps, schema_editor):
    names = [PURGE[0], AHEAD[0], BUDGETS[0]]
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=names).delete()


class Migration(migrations.Migration):

    replaces = [('monitoring', '0016_retention_erasure'), ('monitoring', '0017_raw_digests'), ('monitoring', '0018_paired_counts'), ('monitoring', '0019_incident_created_at_from_the_clock'), ('monitoring', '0020_cost_records'), ('monitoring', '0021_llmreq_requests_prices'), ('monitoring', '0022_cost_budget'), ('monitoring', '0023_alert_kinds_llm_and_budget'), ('monitoring', '0024_plan_created_at_from_the_clock')]

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('django_celery_beat', '0019_alter_periodictasks_options'),
        ('monitoring', '0015_partitioned_predictions'),
        ('registry', '0001_squashed_0020_evaluation_created_at_from_the_clock'),
    ]

    operations = [
        migrations.AddField(
            model_name='groundtruth',
            name='subject_hash',
            field=models.CharField(blank=True, help_text="HMAC-SHA256 of the data subject's id under SUBJECT_KEY; never the id itself.", max_length=64, null=True),
        ),
        migrations.CreateModel(
            name='ErasureRequest',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('subject_hash', models.CharField(db_index=True, help_text='HMAC-SHA256 under SUBJECT_KEY.', max_length=64)),
                ('status', models.CharField(choices=[('completed', 'Completed'), ('held', 'Partly held')], max_length=10)),
                ('results', models.JSONField(blank=True, default=list)),
                ('requested_at', models.DateTimeField()),
                ('due_at', models.DateTimeField(help_text='The deadline to answer (ERASURE_DEADLINE_DAYS).')),
                ('completed_at', models.DateTimeField(blank=True, null=True)),
                ('requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-requested_at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='RetentionPolicy',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('raw_days', models.PositiveIntegerField(help_text='Days raw predictions and labels are kept.', validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(3650)])),
                ('legal_hold', models.BooleanField(default=False, help_text='Blocks purge and erasure while set.')),
                ('legal_hold_reason', models.TextField(blank=True, max_length=2000)),
                ('legal_hold_article', models.CharField(blank=True, help_text='The legal basis cited, e.g. "GDPR Art. 17(3)(e)".', max_length=200)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('model', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='retention_policy', to='registry.registeredmodel')),
                ('updated_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name_plural': 'retention policies',
                'ordering': ['model__name'],
            },
        ),
        migrations.CreateModel(
            name='RawDigest',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('rows', models.BigIntegerField(default=0)),
                ('digest', models.CharField(help_text='Sum mod 2^256 of SHA-256 of each id (hex).', max_length=64)),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='registry.modelversion')),
            ],
            options={
                'ordering': ['version', 'day'],
                'constraints': [models.UniqueConstraint(fields=('version', 'day'), name='unique_raw_digest_per_day')],
            },
        ),
        migrations.CreateModel(
            name='PairedCounts',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('window_start', models.DateTimeField()),
                ('pairs', models.PositiveIntegerField(default=0)),
                ('labelled', models.PositiveIntegerField(default=0)),
                ('payload', models.JSONField(default=dict)),
                ('computed_at', models.DateTimeField()),
                ('baseline', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='registry.modelversion')),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='paired_counts', to='registry.modelversion')),
            ],
            options={
                'verbose_name_plural': 'paired counts',
                'ordering': ['version', 'window_start'],
                'constraints': [models.UniqueConstraint(fields=('version', 'window_start'), name='unique_paired_counts_per_window')],
            },
        ),
        migrations.AlterField(
            model_name='incident',
            name='created_at',
            field=models.DateTimeField(default=mlops_portal.clock.now, editable=False),
        ),
        migrations.CreateModel(
            name='CostRecord',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('period_start', models.DateField()),
                ('period_end', models.DateField()),
                ('amount', models.DecimalField(decimal_places=6, max_digits=18)),
                ('currency', models.CharField(help_text='ISO 4217 code, e.g. EUR or USD.', max_length=3)),
                ('category', models.CharField(choices=[('serving', 'Serving'), ('training', 'Training'), ('storage', 'Storage'), ('inference', 'LLM inference (tokens)'), ('other', 'Other')], max_length=12)),
                ('source', models.CharField(choices=[('api', 'API'), ('csv', 'Cloud bill (CSV)'), ('requests', 'Computed from request records')], default='api', max_length=10)),
                ('external_id', models.CharField(blank=True, max_length=200)),
                ('details', models.JSONField(blank=True, default=dict, help_text='e.g. tokens and the price used.')),
                ('created_at', models.DateTimeField()),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='cost_records', to='registry.registeredmodel')),
                ('version', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='cost_records', to='registry.modelversion')),
            ],
            options={
                'ordering': ['model', '-period_start', 'pk'],
                'indexes': [models.Index(fields=['model', 'period_start'], name='cost_model_period')],
                'constraints': [models.UniqueConstraint(condition=models.Q(('external_id', ''), _negated=True), fields=('model', 'source', 'external_id'), name='cost_external_id_unique'), models.CheckConstraint(condition=models.Q(('period_end__gte', models.F('period_start'))), name='cost_period_ordered')],
            },
        ),
        migrations.AddField(
            model_name='monitoringconfig',
            name='llm_feedback_floor',
            field=models.FloatField(default=0.0, help_text='LLM apps: mean user feedback (in [-1, 1]) below this raises a warning.', validators=[django.core.validators.MinValueValidator(-1), django.core.validators.MaxValueValidator(1)]),
        ),
        migrations.AddField(
            model_name='monitoringconfig',
            name='llm_latency_p95_critical_ms',
            field=models.FloatField(default=5000, validators=[django.core.validators.MinValueValidator(0)]),
        ),
        migrations.AddField(
            model_name='monitoringconfig',
            name='llm_latency_p95_warning_ms',
            field=models.FloatField(default=2000, help_text='LLM apps: p95 latency (ms) that raises a warning.', validators=[django.core.validators.MinValueValidator(0)]),
        ),
        migrations.AddField(
            model_name='monitoringconfig',
            name='llm_safety_flag_rate_critical',
            field=models.FloatField(default=0.05, validators=[django.core.validators.MinValueValidator(0), django.core.validators.MaxValueValidator(1)]),
        ),
        migrations.AddField(
            model_name='monitoringconfig',
            name='llm_safety_flag_rate_warning',
            field=models.FloatField(default=0.02, help_text='LLM apps: share of requests with a safety flag that raises a warning.', validators=[django.core.validators.MinValueValidator(0), django.core.validators.MaxValueValidator(1)]),
        ),
        migrations.CreateModel(
            name='LLMRequest',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('request_id', models.CharField(max_length=100)),
                ('timestamp', models.DateTimeField()),
                ('tokens_in', models.PositiveIntegerField()),
                ('tokens_out', models.PositiveIntegerField()),
                ('latency_ms', models.FloatField(validators=[django.core.validators.MinValueValidator(0)])),
                ('feedback', models.FloatField(blank=True, help_text='User feedback in [-1, 1]; null when none.', null=True)),
                ('safety_flags', models.JSONField(blank=True, default=list, help_text='Short names of the guardrails that fired.')),
                ('received_at', models.DateTimeField()),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='llm_requests', to='registry.modelversion')),
            ],
            options={
                'ordering': ['-timestamp'],
                'indexes': [models.Index(fields=['version', 'timestamp'], name='llm_request_version_ts')],
                'constraints': [models.UniqueConstraint(fields=('version', 'request_id'), name='unique_llm_request_per_version')],
            },
        ),
        migrations.CreateModel(
            name='Price',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('provider', models.CharField(max_length=100)),
                ('model', models.CharField(max_length=200)),
                ('input_per_million', models.DecimalField(decimal_places=6, max_digits=18, validators=[django.core.validators.MinValueValidator(0)])),
                ('output_per_million', models.DecimalField(decimal_places=6, max_digits=18, validators=[django.core.validators.MinValueValidator(0)])),
                ('currency', models.CharField(help_text='ISO 4217 code, e.g. USD or EUR.', max_length=3)),
                ('effective_from', models.DateTimeField()),
                ('created_at', models.DateTimeField()),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['provider', 'model', '-effective_from'],
                'constraints': [models.UniqueConstraint(fields=('provider', 'model', 'effective_from'), name='unique_price_per_start')],
            },
        ),
        migrations.CreateModel(
            name='Budget',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('monthly_amount', models.DecimalField(decimal_places=2, max_digits=18)),
                ('currency', models.CharField(help_text='ISO 4217 code, e.g. EUR or USD.', max_length=3)),
                ('warning_share', models.DecimalField(decimal_places=3, default=Decimal('0.800'), max_digits=5)),
                ('critical_share', models.DecimalField(decimal_places=3, default=Decimal('1.000'), max_digits=5)),
                ('alerted_month', models.DateField(blank=True, help_text='First day of the month last alerted.', null=True)),
                ('alerted_level', models.CharField(blank=True, help_text='warning or critical (that month).', max_length=10)),
                ('updated_at', models.DateTimeField()),
                ('model', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='budget', to='registry.registeredmodel')),
                ('updated_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'constraints': [models.CheckConstraint(condition=models.Q(('monthly_amount__gt', 0)), name='budget_amount_positive'), models.CheckConstraint(condition=models.Q(('warning_share__gt', 0), ('critical_share__gte', models.F('warning_share'))), name='budget_shares_ordered')],
            },
        ),
        migrations.AlterField(
            model_name='alert',
            name='kind',
            field=models.CharField(choices=[('drift', 'Data drift'), ('prediction_drift', 'Prediction drift'), ('data_quality', 'Data quality'), ('performance', 'Performance'), ('cadence', 'Retrain cadence overdue'), ('governance', 'Unapproved production change'), ('fairness', 'Fairness'), ('llm_latency', 'LLM latency'), ('llm_safety', 'LLM safety flags'), ('llm_feedback', 'LLM user feedback'), ('budget', 'Monthly cost budget')], max_length=20),
        ),
        migrations.AlterField(
            model_name='monitoringplan',
            name='created_at',
            field=models.DateTimeField(default=mlops_portal.clock.now, editable=False),
        ),
        migrations.AddIndex(
            model_name='groundtruth',
            index=models.Index(fields=['model', 'received_at'], name='label_model_received'),
        ),
        migrations.AddIndex(
            model_name='groundtruth',
            index=models.Index(condition=models.Q(('subject_hash__isnull', False)), fields=['subject_hash'], name='label_subject'),
        ),
        migrations.RunPython(backfill_digests, migrations.RunPython.noop),
        migrations.RunPython(create_schedules, remove_schedules),
    ]
