"""The monitoring schema, squashed from migrations 0001 to 0014, and its periodic schedules.

The schedules of the monitoring engine and of post-launch oversight (django-celery-beat) are
created after the schema. Migration 0006's backfill of packed bin counts is left out: it copied
rows that existed before it, and here the tables are created empty.
"""

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

SCHEDULES = [
    # (name, task, every seconds)
    ("monitoring: sweep dirty windows", "monitoring.tasks.monitoring_sweep_dirty_windows", 60),
    ("monitoring: evaluate health of every model", "monitoring.tasks.health_evaluate_all", 900),
    ("monitoring: queue pending reference profiles", "monitoring.tasks.profiles_sweep_pending", 60),
    ("oversight: incident deadline reminders", "monitoring.oversight.tasks.incident_reminders_send", 60),
    ("oversight: open due and triggered reviews", "monitoring.oversight.tasks.reviews_sweep", 900),
    ("oversight: escalate overdue findings", "monitoring.oversight.tasks.findings_escalate", 3600),
    ("monitoring: queue pending evaluation sets", "monitoring.tasks.evaluations_sweep_pending", 60),
]


def create_schedules(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, seconds in SCHEDULES:
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        PeriodicTask.objects.update_or_create(name=name, defaults={"task": task, "interval": interval, "enabled": True})


def remove_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[s[0] for s in SCHEDULES]).delete()


class Migration(migrations.Migration):

    replaces = [('monitoring', '0001_initial'), ('monitoring', '0002_beat_schedules'), ('monitoring', '0003_dirty_enqueued_retrain_pending'), ('monitoring', '0004_dashboard_indexes'), ('monitoring', '0005_governance_alerts'), ('monitoring', '0006_packed_bin_counts'), ('monitoring', '0007_window_lease_and_failures'), ('monitoring', '0008_pending_profile_sweep_schedule'), ('monitoring', '0009_retrain_trigger_error_class'), ('monitoring', '0010_ingest_batch_digest'), ('monitoring', '0011_oversight_incidents_reviews_findings'), ('monitoring', '0012_oversight_beat_schedules'), ('monitoring', '0013_fairness_monitoring'), ('monitoring', '0014_pending_evaluation_sweep_schedule')]

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('django_celery_beat', '0019_alter_periodictasks_options'),
        ('registry', '0001_squashed_0020_evaluation_created_at_from_the_clock'),
    ]

    operations = [
        migrations.CreateModel(
            name='HealthStatus',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('ok', 'OK'), ('warning', 'Warning'), ('critical', 'Critical'), ('no_data', 'No data')], default='no_data', max_length=10)),
                ('reasons', models.JSONField(blank=True, default=list, help_text='[{"kind", "severity", "message", …}]')),
                ('window_start', models.DateTimeField(blank=True, null=True)),
                ('window_end', models.DateTimeField(blank=True, null=True)),
                ('computed_at', models.DateTimeField()),
                ('model', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='health', to='registry.registeredmodel')),
            ],
            options={
                'verbose_name_plural': 'health statuses',
                'ordering': ['model__name'],
            },
        ),
        migrations.CreateModel(
            name='MonitoringConfig',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('granularity', models.CharField(choices=[('hourly', 'Hourly'), ('daily', 'Daily')], default='daily', max_length=10)),
                ('n_bins', models.PositiveSmallIntegerField(default=10, help_text='Quantile bins (10–20).', validators=[django.core.validators.MinValueValidator(10), django.core.validators.MaxValueValidator(20)])),
                ('drift_rule', models.CharField(choices=[('psi', 'Population stability index ≥ threshold'), ('stat_test', 'KS (numeric) / chi-square (categorical) p-value < threshold'), ('jensen_shannon', 'Jensen–Shannon distance ≥ threshold'), ('wasserstein', 'Normalised Wasserstein distance ≥ threshold')], default='psi', max_length=20)),
                ('psi_warning', models.FloatField(default=0.1, validators=[django.core.validators.MinValueValidator(0)])),
                ('psi_critical', models.FloatField(default=0.25, validators=[django.core.validators.MinValueValidator(0)])),
                ('p_value_threshold', models.FloatField(default=0.05, validators=[django.core.validators.MinValueValidator(0), django.core.validators.MaxValueValidator(1)])),
                ('js_threshold', models.FloatField(default=0.1, validators=[django.core.validators.MinValueValidator(0), django.core.validators.MaxValueValidator(1)])),
                ('wasserstein_threshold', models.FloatField(default=0.1, validators=[django.core.validators.MinValueValidator(0)])),
                ('drift_share_warning', models.FloatField(default=0.2, help_text='Share of drifted features.', validators=[django.core.validators.MinValueValidator(0), django.core.validators.MaxValueValidator(1)])),
                ('drift_share_critical', models.FloatField(default=0.5, validators=[django.core.validators.MinValueValidator(0), django.core.validators.MaxValueValidator(1)])),
                ('missing_share_warning', models.FloatField(default=0.1, validators=[django.core.validators.MinValueValidator(0), django.core.validators.MaxValueValidator(1)])),
                ('out_of_range_share_warning', models.FloatField(default=0.1, validators=[django.core.validators.MinValueValidator(0), django.core.validators.MaxValueValidator(1)])),
                ('performance_drop_warning', models.FloatField(default=0.05, help_text="Absolute drop of the primary metric versus the version's offline value that raises a warning.", validators=[django.core.validators.MinValueValidator(0)])),
                ('performance_drop_critical', models.FloatField(default=0.1, validators=[django.core.validators.MinValueValidator(0)])),
                ('label_coverage_threshold', models.FloatField(default=0.8, help_text='Performance windows stay provisional until this share of predictions has labels.', validators=[django.core.validators.MinValueValidator(0), django.core.validators.MaxValueValidator(1)])),
                ('min_window_rows', models.PositiveIntegerField(default=100, help_text='Windows with fewer rows are computed but do not decide health.')),
                ('retrain_url', models.URLField(blank=True, help_text='Training pipeline webhook URL.', max_length=500)),
                ('retrain_cooldown_hours', models.PositiveIntegerField(default=24, validators=[django.core.validators.MinValueValidator(1)])),
                ('alert_recipients', models.JSONField(blank=True, default=list, help_text='E-mail addresses.')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('model', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='monitoring_config', to='registry.registeredmodel')),
                ('updated_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['model__name'],
            },
        ),
        migrations.CreateModel(
            name='GroundTruth',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('prediction_id', models.CharField(max_length=100)),
                ('label', models.JSONField()),
                ('received_at', models.DateTimeField()),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='ground_truth', to='registry.registeredmodel')),
            ],
            options={
                'ordering': ['-received_at'],
                'constraints': [models.UniqueConstraint(fields=('model', 'prediction_id'), name='unique_label_per_prediction_id')],
            },
        ),
        migrations.CreateModel(
            name='Prediction',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('prediction_id', models.CharField(max_length=100)),
                ('timestamp', models.DateTimeField()),
                ('features', models.JSONField(default=dict)),
                ('prediction', models.JSONField(blank=True, help_text='Class label or regression value.', null=True)),
                ('score', models.FloatField(blank=True, help_text='Positive-class probability (binary) or confidence.', null=True)),
                ('received_at', models.DateTimeField()),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='predictions', to='registry.modelversion')),
            ],
            options={
                'ordering': ['-timestamp'],
                'indexes': [models.Index(fields=['version', 'timestamp'], name='prediction_version_ts')],
                'constraints': [models.UniqueConstraint(fields=('version', 'prediction_id'), name='unique_prediction_id_per_version')],
            },
        ),
        migrations.CreateModel(
            name='Alert',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('drift', 'Data drift'), ('prediction_drift', 'Prediction drift'), ('data_quality', 'Data quality'), ('performance', 'Performance'), ('cadence', 'Retrain cadence overdue'), ('governance', 'Unapproved production change'), ('fairness', 'Fairness')], max_length=20)),
                ('severity', models.CharField(choices=[('warning', 'Warning'), ('critical', 'Critical')], max_length=10)),
                ('status', models.CharField(choices=[('open', 'Open'), ('acknowledged', 'Acknowledged'), ('resolved', 'Resolved')], default='open', max_length=15)),
                ('title', models.CharField(max_length=300)),
                ('reasons', models.JSONField(blank=True, default=list)),
                ('opened_at', models.DateTimeField()),
                ('updated_at', models.DateTimeField()),
                ('acknowledged_at', models.DateTimeField(blank=True, null=True)),
                ('acknowledge_comment', models.TextField(blank=True)),
                ('resolved_at', models.DateTimeField(blank=True, null=True)),
                ('acknowledged_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='alerts', to='registry.registeredmodel')),
            ],
            options={
                'ordering': ['-opened_at', '-id'],
                'indexes': [models.Index(fields=['status', 'opened_at'], name='alert_status_opened')],
                'constraints': [models.UniqueConstraint(condition=models.Q(('status', 'resolved'), _negated=True), fields=('model', 'kind'), name='one_unresolved_alert_per_kind')],
            },
        ),
        migrations.CreateModel(
            name='PackedBinCounts',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('window_start', models.DateTimeField()),
                ('granularity', models.CharField(choices=[('hourly', 'Hourly'), ('daily', 'Daily')], default='hourly', max_length=10)),
                ('layout', models.JSONField(default=dict)),
                ('dtype', models.CharField(default='<u4', help_text='numpy dtype of counts', max_length=8)),
                ('counts', models.BinaryField()),
                ('quality', models.BinaryField()),
                ('computed_at', models.DateTimeField(auto_now=True)),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='packed_bin_counts', to='registry.modelversion')),
            ],
            options={
                'verbose_name_plural': 'packed bin counts',
                'ordering': ['version', 'window_start'],
                'constraints': [models.UniqueConstraint(fields=('version', 'granularity', 'window_start'), name='unique_packed_bin_counts_per_window')],
            },
        ),
        migrations.CreateModel(
            name='DirtyWindow',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('window_start', models.DateTimeField()),
                ('granularity', models.CharField(choices=[('hourly', 'Hourly'), ('daily', 'Daily')], max_length=10)),
                ('marked_at', models.DateTimeField()),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='dirty_windows', to='registry.modelversion')),
                ('enqueued_at', models.DateTimeField(blank=True, help_text='When the sweep last queued its computation (null: not queued).', null=True)),
                ('claimed_at', models.DateTimeField(blank=True, help_text='When a computation last started on it.', null=True)),
                ('lease_until', models.DateTimeField(blank=True, help_text='A claimed window whose computation has not stored its results by then is queued again.', null=True)),
            ],
            options={
                'ordering': ['marked_at'],
                'constraints': [models.UniqueConstraint(fields=('version', 'window_start', 'granularity'), name='unique_dirty_window')],
            },
        ),
        migrations.CreateModel(
            name='ReferenceProfile',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('ready', 'Ready'), ('failed', 'Failed')], default='pending', max_length=10)),
                ('error', models.TextField(blank=True)),
                ('source_format', models.CharField(help_text='csv or parquet', max_length=10)),
                ('n_rows', models.PositiveIntegerField(default=0)),
                ('n_bins', models.PositiveSmallIntegerField(default=10)),
                ('data', models.BinaryField()),
                ('data_sha256', models.CharField(max_length=64)),
                ('profile', models.JSONField(blank=True, default=dict)),
                ('uploaded_at', models.DateTimeField(auto_now_add=True)),
                ('computed_at', models.DateTimeField(blank=True, null=True)),
                ('uploaded_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('version', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='reference_profile', to='registry.modelversion')),
                ('enqueued_at', models.DateTimeField(blank=True, help_text='When the pending-profile sweep last queued its computation.', null=True)),
            ],
            options={
                'ordering': ['-uploaded_at'],
            },
        ),
        migrations.CreateModel(
            name='WindowFailure',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('window_start', models.DateTimeField()),
                ('granularity', models.CharField(choices=[('hourly', 'Hourly'), ('daily', 'Daily')], max_length=10)),
                ('reason', models.TextField()),
                ('attempts', models.PositiveIntegerField(default=1)),
                ('failed_at', models.DateTimeField()),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='window_failures', to='registry.modelversion')),
            ],
            options={
                'ordering': ['-failed_at', '-id'],
                'constraints': [models.UniqueConstraint(fields=('version', 'window_start', 'granularity'), name='unique_window_failure')],
            },
        ),
        migrations.CreateModel(
            name='RetrainTrigger',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('reason', models.CharField(max_length=300)),
                ('details', models.JSONField(blank=True, default=dict)),
                ('url', models.URLField(blank=True, max_length=500)),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('sent', 'Sent'), ('failed', 'Failed'), ('no_url', 'No pipeline URL configured')], max_length=10)),
                ('response_code', models.PositiveIntegerField(blank=True, null=True)),
                ('delivery_ref', models.CharField(blank=True, help_text='Webhook delivery id(s), if any.', max_length=100)),
                ('fired_at', models.DateTimeField()),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='retrain_triggers', to='registry.registeredmodel')),
                ('version', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='registry.modelversion')),
                ('error_class', models.CharField(blank=True, help_text="Short error class (e.g. http_500, refused); never the answer's body.", max_length=40)),
            ],
            options={
                'ordering': ['-fired_at', '-id'],
                'indexes': [models.Index(fields=['model', 'fired_at'], name='retrain_model_fired')],
            },
        ),
        migrations.CreateModel(
            name='IngestBatch',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('digest', models.CharField(help_text='SHA-256 of the request body (hex).', max_length=64)),
                ('rows', models.PositiveIntegerField()),
                ('summary', models.JSONField(blank=True, default=dict, help_text='The answer given when the batch was stored.')),
                ('received_at', models.DateTimeField()),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='ingest_batches', to='registry.modelversion')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('version', 'digest'), name='unique_ingest_batch_digest_per_version')],
            },
        ),
        migrations.CreateModel(
            name='Incident',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('approved_by', models.JSONField(blank=True, default=list, help_text='Usernames who approved `version`.')),
                ('severity', models.CharField(choices=[('serious', 'Serious incident (Art. 73(2): 15 days)'), ('widespread', 'Widespread infringement or critical infrastructure (Art. 73(3): 2 days)'), ('death', 'Death of a person (Art. 73(4): 10 days)'), ('malfunction', 'Malfunction, not serious (no legal deadline)')], max_length=12)),
                ('status', models.CharField(choices=[('open', 'Open'), ('reported', 'Initial report filed'), ('resolved', 'Root cause found'), ('closed', 'Closed')], default='open', max_length=10)),
                ('summary', models.TextField(help_text='What happened.')),
                ('began_at', models.DateTimeField(help_text='When the problem began (first alert, or when aware).')),
                ('aware_at', models.DateTimeField(help_text='When the provider or deployer became aware of it.')),
                ('time_zone', models.CharField(help_text='Zone the deadline was computed in.', max_length=64)),
                ('deadline', models.DateTimeField(blank=True, null=True)),
                ('windows', models.JSONField(blank=True, default=list, help_text='Metric windows involved.')),
                ('affected', models.TextField(blank=True, help_text='Affected persons, groups or fundamental rights.')),
                ('corrective_actions', models.TextField(blank=True)),
                ('root_cause', models.TextField(blank=True)),
                ('initial_report_at', models.DateTimeField(blank=True, null=True)),
                ('final_report_at', models.DateTimeField(blank=True, null=True)),
                ('suspended_at', models.DateTimeField(blank=True, null=True)),
                ('resolved_at', models.DateTimeField(blank=True, null=True)),
                ('closed_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('alerts', models.ManyToManyField(blank=True, related_name='incidents', to='monitoring.alert')),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='incidents', to='registry.registeredmodel')),
                ('opened_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('promotion_request', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='registry.promotionrequest')),
                ('version', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='registry.modelversion')),
            ],
            options={
                'ordering': ['-aware_at', '-id'],
                'indexes': [models.Index(fields=['status', 'deadline'], name='incident_status_deadline')],
                'constraints': [models.CheckConstraint(condition=models.Q(('aware_at__gte', models.F('began_at'))), name='incident_aware_after_began')],
            },
        ),
        migrations.CreateModel(
            name='IncidentEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('opened', 'Opened'), ('note', 'Investigation note'), ('suspended', 'Use suspended'), ('report_initial', 'Initial report'), ('report_final', 'Final report'), ('resolved', 'Root cause'), ('closed', 'Closed'), ('reminder', 'Deadline reminder')], max_length=16)),
                ('text', models.TextField(blank=True)),
                ('data', models.JSONField(blank=True, default=dict)),
                ('audit_seq', models.PositiveBigIntegerField(blank=True, null=True)),
                ('created_at', models.DateTimeField()),
                ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('incident', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='events', to='monitoring.incident')),
            ],
            options={
                'ordering': ['created_at', 'id'],
            },
        ),
        migrations.CreateModel(
            name='IncidentReminder',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('percent', models.PositiveSmallIntegerField()),
                ('sent_at', models.DateTimeField()),
                ('incident', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='reminders', to='monitoring.incident')),
            ],
            options={
                'ordering': ['incident', 'percent'],
                'constraints': [models.UniqueConstraint(fields=('incident', 'percent'), name='one_reminder_per_threshold')],
            },
        ),
        migrations.CreateModel(
            name='MonitoringPlan',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('version', models.PositiveIntegerField()),
                ('generated', models.JSONField(blank=True, default=dict)),
                ('narrative', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='monitoring_plans', to='registry.registeredmodel')),
            ],
            options={
                'ordering': ['model', '-version'],
                'constraints': [models.UniqueConstraint(fields=('model', 'version'), name='unique_plan_version')],
            },
        ),
        migrations.CreateModel(
            name='PeriodicReview',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('trigger', models.CharField(choices=[('scheduled', 'Scheduled (cadence by risk tier)'), ('drift_alert', 'Critical drift alert'), ('fairness', 'Fairness breach'), ('incident', 'New incident'), ('manual', 'Requested')], max_length=12)),
                ('reason', models.TextField(blank=True)),
                ('status', models.CharField(choices=[('open', "Awaiting the owner's attestation"), ('attested', 'Awaiting the validator'), ('completed', 'Completed')], default='open', max_length=10)),
                ('needs_validator', models.BooleanField(default=False)),
                ('due_at', models.DateTimeField()),
                ('opened_at', models.DateTimeField()),
                ('attested_at', models.DateTimeField(blank=True, null=True)),
                ('attestation', models.TextField(blank=True)),
                ('validated_at', models.DateTimeField(blank=True, null=True)),
                ('validation_comment', models.TextField(blank=True)),
                ('completed_at', models.DateTimeField(blank=True, null=True)),
                ('attested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='periodic_reviews', to='registry.registeredmodel')),
                ('owner', models.ForeignKey(help_text='Owner when opened.', on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('validated_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-opened_at', '-id'],
                'constraints': [models.UniqueConstraint(condition=models.Q(('status', 'completed'), _negated=True), fields=('model',), name='one_open_review_per_model'), models.CheckConstraint(condition=models.Q(('validated_by', models.F('owner')), _negated=True), name='validator_is_not_owner')],
            },
        ),
        migrations.CreateModel(
            name='Finding',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('severity', models.CharField(choices=[('low', 'Low severity'), ('medium', 'Medium severity'), ('high', 'High severity')], max_length=8)),
                ('description', models.TextField()),
                ('due_at', models.DateTimeField()),
                ('status', models.CharField(choices=[('open', 'Open'), ('remediated', 'Remediation submitted'), ('closed', 'Closed on retest')], default='open', max_length=12)),
                ('created_at', models.DateTimeField()),
                ('remediation', models.TextField(blank=True)),
                ('remediated_at', models.DateTimeField(blank=True, null=True)),
                ('retest_comment', models.TextField(blank=True)),
                ('closed_at', models.DateTimeField(blank=True, null=True)),
                ('escalated_at', models.DateTimeField(blank=True, null=True)),
                ('closed_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('created_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='findings', to='registry.registeredmodel')),
                ('owner', models.ForeignKey(help_text='Who must fix it.', on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('remediated_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('review', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='findings', to='monitoring.periodicreview')),
            ],
            options={
                'ordering': ['status', 'due_at', 'id'],
                'indexes': [models.Index(fields=['status', 'due_at'], name='finding_status_due')],
            },
        ),
        migrations.CreateModel(
            name='ReviewTrigger',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('scheduled', 'Scheduled (cadence by risk tier)'), ('drift_alert', 'Critical drift alert'), ('fairness', 'Fairness breach'), ('incident', 'New incident'), ('manual', 'Requested')], max_length=12)),
                ('created_at', models.DateTimeField()),
                ('alert', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='monitoring.alert')),
                ('incident', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='monitoring.incident')),
                ('review', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='triggers', to='monitoring.periodicreview')),
            ],
            options={
                'ordering': ['created_at', 'id'],
            },
        ),
        migrations.CreateModel(
            name='PredictionSensitive',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('prediction_id', models.CharField(max_length=100)),
                ('timestamp', models.DateTimeField()),
                ('values', models.JSONField(default=dict, help_text='Attribute → group (text or null).')),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='registry.modelversion')),
            ],
            options={
                'indexes': [models.Index(fields=['version', 'timestamp'], name='sensitive_version_ts')],
                'constraints': [models.UniqueConstraint(fields=('version', 'prediction_id'), name='unique_sensitive_per_prediction')],
            },
        ),
        migrations.CreateModel(
            name='WindowGroupCounts',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('granularity', models.CharField(choices=[('hourly', 'Hourly'), ('daily', 'Daily')], max_length=8)),
                ('window_start', models.DateTimeField()),
                ('attribute', models.CharField(max_length=200)),
                ('groups', models.JSONField(default=list)),
                ('counts', models.JSONField(default=list)),
                ('computed_at', models.DateTimeField()),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='registry.modelversion')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('version', 'granularity', 'window_start', 'attribute'), name='unique_group_counts_window')],
            },
        ),
        migrations.CreateModel(
            name='MetricValue',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('granularity', models.CharField(choices=[('hourly', 'Hourly'), ('daily', 'Daily')], max_length=10)),
                ('window_start', models.DateTimeField()),
                ('window_end', models.DateTimeField()),
                ('feature', models.CharField(blank=True, default='', max_length=200)),
                ('metric', models.CharField(max_length=40)),
                ('value', models.FloatField(blank=True, help_text='Null when undefined (e.g. one class only).', null=True)),
                ('provisional', models.BooleanField(default=False, help_text='Performance before label coverage passed threshold.')),
                ('computed_at', models.DateTimeField()),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='metric_values', to='registry.registeredmodel')),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='metric_values', to='registry.modelversion')),
            ],
            options={
                'ordering': ['window_start', 'feature', 'metric'],
                'indexes': [models.Index(fields=['model', 'metric', 'window_start'], name='metric_model_metric_ts'), models.Index(fields=['version', 'granularity', 'window_start'], name='metric_version_gran_ts'), models.Index(fields=['model', 'granularity', 'metric', 'window_start'], name='metric_model_gran_metric_ts')],
                'constraints': [models.UniqueConstraint(fields=('version', 'window_start', 'window_end', 'feature', 'metric'), name='unique_metric_per_window')],
            },
        ),
        migrations.CreateModel(
            name='WindowBinCounts',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('window_start', models.DateTimeField()),
                ('granularity', models.CharField(choices=[('hourly', 'Hourly'), ('daily', 'Daily')], default='hourly', max_length=10)),
                ('feature', models.CharField(max_length=200)),
                ('counts', models.JSONField(default=list)),
                ('n', models.PositiveIntegerField(default=0)),
                ('missing', models.PositiveIntegerField(default=0)),
                ('out_of_range', models.PositiveIntegerField(default=0)),
                ('unseen', models.PositiveIntegerField(default=0)),
                ('computed_at', models.DateTimeField(auto_now=True)),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='window_bin_counts', to='registry.modelversion')),
            ],
            options={
                'verbose_name_plural': 'window bin counts',
                'ordering': ['version', 'window_start', 'feature'],
                'constraints': [models.UniqueConstraint(fields=('version', 'window_start', 'granularity', 'feature'), name='unique_bin_counts_per_window')],
                'indexes': [models.Index(fields=['version', 'feature', 'window_start'], name='bincounts_version_feature_ts')],
            },
        ),
        migrations.RunPython(create_schedules, remove_schedules),
    ]
