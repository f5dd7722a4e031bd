"""The registry's schema, squashed from migrations 0001 to 0020, and the rows and triggers it starts with.

Data operations (after the schema):
- the audit table refuses UPDATE and DELETE at the database (a row trigger, PostgreSQL and SQLite)
  and TRUNCATE (a statement trigger, PostgreSQL only; SQLite has no TRUNCATE, and its unqualified
  DELETE is refused by the row trigger). A transaction may ``SET LOCAL mlops.allow_audit_truncate =
  'on'`` to get through the TRUNCATE guard: the test harness does so for its flushes and the audit
  benchmark for its reload; the portal never does (docs/audit.md);
- the reviewer and auditor groups, the default promotion policies (high risk: two approvals and
  the fairness gate), the two inventory revision rows;
- the registry's periodic schedules (django-celery-beat).

Migration 0007's rewrite of the webhook attempt logs is left out: it changed rows that existed
before it, and here the table is created empty.
"""

import django.core.validators
import django.db.models.deletion
import mlops_portal.clock
import registry.models
from django.conf import settings
from django.db import migrations, models

PG_FORWARD = """
CREATE OR REPLACE FUNCTION registry_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit log is append-only: %% refused on registry_auditevent', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER registry_auditevent_no_update BEFORE UPDATE ON registry_auditevent
    FOR EACH ROW EXECUTE FUNCTION registry_auditevent_append_only();
CREATE TRIGGER registry_auditevent_no_delete BEFORE DELETE ON registry_auditevent
    FOR EACH ROW EXECUTE FUNCTION registry_auditevent_append_only();
CREATE OR REPLACE FUNCTION registry_auditevent_no_truncate() RETURNS trigger AS $$
BEGIN
    IF current_setting('mlops.allow_audit_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit log is append-only: TRUNCATE refused on registry_auditevent'
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER registry_auditevent_no_truncate BEFORE TRUNCATE ON registry_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION registry_auditevent_no_truncate();
"""
PG_REVERSE = """
DROP TRIGGER IF EXISTS registry_auditevent_no_truncate ON registry_auditevent;
DROP FUNCTION IF EXISTS registry_auditevent_no_truncate();
DROP TRIGGER IF EXISTS registry_auditevent_no_update ON registry_auditevent;
DROP TRIGGER IF EXISTS registry_auditevent_no_delete ON registry_auditevent;
DROP FUNCTION IF EXISTS registry_auditevent_append_only();
"""
SQLITE_FORWARD = [
    """CREATE TRIGGER registry_auditevent_no_update BEFORE UPDATE ON registry_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit log is append-only: UPDATE refused on registry_auditevent'); END;""",
    """CREATE TRIGGER registry_auditevent_no_delete BEFORE DELETE ON registry_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit log is append-only: DELETE refused on registry_auditevent'); END;""",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS registry_auditevent_no_update;",
    "DROP TRIGGER IF EXISTS registry_auditevent_no_delete;",
]

DEFAULT_POLICIES = {"low": 1, "medium": 1, "high": 2}

SCHEDULES = [
    # (name, task, every seconds)
    ("registry: sync MLflow servers", "registry.tasks.mlflow_sync_all", 300),
    ("registry: audit chain checkpoint", "registry.tasks.audit_checkpoint", 900),
    ("ops: worker heartbeat", "mlops_portal.health.worker_heartbeat", 60),
]


def install_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD)
    elif vendor == "sqlite":
        for sql in SQLITE_FORWARD:
            schema_editor.execute(sql)


def remove_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_REVERSE)
    elif vendor == "sqlite":
        for sql in SQLITE_REVERSE:
            schema_editor.execute(sql)


def create_rows(apps, schema_editor):
    """Roles, default promotion policies and the inventory revision rows."""
    Group = apps.get_model("auth", "Group")
    for name in ("reviewer", "auditor"):
        Group.objects.get_or_create(name=name)
    PromotionPolicy = apps.get_model("registry", "PromotionPolicy")
    for tier, approvals in DEFAULT_POLICIES.items():
        PromotionPolicy.objects.get_or_create(risk_tier=tier, defaults={"approvals_required": approvals})
    PromotionPolicy.objects.filter(risk_tier="high").update(require_fairness=True)
    for pk in (1, 2):  # registry.cache.LISTS, registry.cache.HEALTH
        apps.get_model("registry", "InventoryRevision").objects.get_or_create(pk=pk)


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

    replaces = [('registry', '0001_initial'), ('registry', '0002_audit_append_only_groups_policies'), ('registry', '0003_mlflow'), ('registry', '0004_mlflow_sync_schedule'), ('registry', '0005_mlflow_search_filter'), ('registry', '0006_inventory_revision'), ('registry', '0007_webhook_delivery_error_class'), ('registry', '0008_audit_no_truncate'), ('registry', '0009_audit_checkpoint_schedule'), ('registry', '0010_access_accounts_mapping_heartbeat'), ('registry', '0011_retrain_cadence_at_most_ten_years'), ('registry', '0012_evaluation_run_fairness_policy'), ('registry', '0013_promotion_live_evidence'), ('registry', '0014_version_stage_none_reads_registered'), ('registry', '0015_created_at_from_the_clock'), ('registry', '0016_model_kind'), ('registry', '0017_llm_app_version'), ('registry', '0018_llmeval_evaluations_gates'), ('registry', '0019_model_time_zone'), ('registry', '0020_evaluation_created_at_from_the_clock')]

    initial = True

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('django_celery_beat', '0019_alter_periodictasks_options'),
    ]

    operations = [
        migrations.CreateModel(
            name='Tag',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.SlugField(unique=True)),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.CreateModel(
            name='ModelVersion',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('version', models.PositiveIntegerField()),
                ('stage', models.CharField(choices=[('none', 'Registered'), ('staging', 'Staging'), ('production', 'Production'), ('archived', 'Archived')], default='none', max_length=12)),
                ('description', models.TextField(blank=True)),
                ('artifact_uri', models.CharField(blank=True, max_length=500)),
                ('source_commit', models.CharField(blank=True, max_length=64)),
                ('training_run_id', models.CharField(blank=True, max_length=100)),
                ('training_data_ref', models.CharField(blank=True, max_length=500)),
                ('training_data_hash', models.CharField(blank=True, max_length=128)),
                ('metrics', models.JSONField(blank=True, default=dict, help_text='Offline evaluation metrics, name → number.')),
                ('feature_schema', models.JSONField(blank=True, default=list, help_text='[{"name": "age", "type": "numeric"}, …]')),
                ('task_type', models.CharField(choices=[('binary', 'Binary classification'), ('multiclass', 'Multiclass classification'), ('regression', 'Regression')], default='binary', max_length=12)),
                ('reference_profile_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('created_at', models.DateTimeField(default=mlops_portal.clock.now, editable=False)),
                ('stage_changed_at', models.DateTimeField(blank=True, null=True)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['model', '-version'],
            },
        ),
        migrations.CreateModel(
            name='PromotionRequest',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('target_stage', models.CharField(choices=[('none', 'Registered'), ('staging', 'Staging'), ('production', 'Production'), ('archived', 'Archived')], max_length=12)),
                ('justification', models.TextField()),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('approved', 'Approved'), ('rejected', 'Rejected'), ('cancelled', 'Cancelled'), ('applied', 'Applied')], default='pending', max_length=10)),
                ('policy_snapshot', models.JSONField(blank=True, default=dict)),
                ('gate_results', models.JSONField(blank=True, default=list, help_text='Gates as evaluated when decided.')),
                ('override_reason', models.TextField(blank=True)),
                ('status_reason', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(default=mlops_portal.clock.now, editable=False)),
                ('decided_at', models.DateTimeField(blank=True, null=True)),
                ('applied_at', models.DateTimeField(blank=True, null=True)),
                ('overridden_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('requested_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='promotion_requests', to='registry.modelversion')),
                ('live_evidence', models.JSONField(blank=True, default=dict, help_text='Paired live evidence, written by the worker.')),
                ('live_evidence_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'ordering': ['-created_at'],
                'constraints': [models.UniqueConstraint(condition=models.Q(('status', 'pending')), fields=('version', 'target_stage'), name='one_pending_request_per_version_and_stage'), models.CheckConstraint(condition=models.Q(('target_stage__in', ['staging', 'production', 'archived'])), name='promotion_target_stage_valid')],
            },
        ),
        migrations.CreateModel(
            name='RegisteredModel',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100, unique=True, validators=[django.core.validators.RegexValidator('^[a-z0-9][a-z0-9_-]{0,99}$', "Use lowercase letters, digits, '-' and '_' only, starting with a letter or digit (max 100).")])),
                ('description', models.TextField(blank=True)),
                ('risk_tier', models.CharField(choices=[('low', 'Low'), ('medium', 'Medium'), ('high', 'High')], default='medium', max_length=10)),
                ('ai_act_category', models.CharField(blank=True, help_text="e.g. 'Annex III 5(b): creditworthiness — high-risk'.", max_length=200, verbose_name='EU AI Act category note')),
                ('intended_use', models.TextField(blank=True)),
                ('limitations', models.TextField(blank=True)),
                ('retrain_cadence_days', models.PositiveIntegerField(blank=True, null=True, validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(3650)], verbose_name='retrain cadence (days)')),
                ('primary_metric', models.CharField(blank=True, help_text='Offline metric compared against production, e.g. roc_auc or rmse.', max_length=50)),
                ('primary_metric_higher_is_better', models.BooleanField(default=True)),
                ('monitoring_configured_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('created_at', models.DateTimeField(default=mlops_portal.clock.now, editable=False)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('owner', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='owned_models', to=settings.AUTH_USER_MODEL)),
                ('tags', models.ManyToManyField(blank=True, related_name='models', to='registry.tag')),
            ],
            options={
                'ordering': ['name'],
                'permissions': [('view_all_models', 'Can see every model')],
            },
        ),
        migrations.AddField(
            model_name='modelversion',
            name='model',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='versions', to='registry.registeredmodel'),
        ),
        migrations.CreateModel(
            name='AuditEvent',
            fields=[
                ('seq', models.PositiveBigIntegerField(primary_key=True, serialize=False)),
                ('timestamp', models.DateTimeField(db_index=True)),
                ('actor_name', models.CharField(blank=True, max_length=150)),
                ('action', models.CharField(db_index=True, max_length=64)),
                ('object_type', models.CharField(blank=True, max_length=64)),
                ('object_id', models.CharField(blank=True, max_length=64)),
                ('object_repr', models.CharField(blank=True, max_length=300)),
                ('model_name', models.CharField(blank=True, max_length=100)),
                ('before', models.JSONField(blank=True, null=True)),
                ('after', models.JSONField(blank=True, null=True)),
                ('request_id', models.CharField(blank=True, max_length=64)),
                ('source', models.CharField(choices=[('ui', 'UI'), ('api', 'API'), ('worker', 'Worker'), ('cli', 'CLI')], max_length=10)),
                ('ip', models.GenericIPAddressField(blank=True, null=True)),
                ('prev_hash', models.CharField(max_length=64)),
                ('hash', models.CharField(max_length=64, unique=True)),
                ('actor', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('model', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='registry.registeredmodel')),
            ],
            options={
                'ordering': ['-seq'],
                'indexes': [models.Index(fields=['model', 'seq'], name='registry_au_model_i_fc0f3c_idx'), models.Index(fields=['actor', 'seq'], name='registry_au_actor_i_4ee86a_idx'), models.Index(fields=['action', 'seq'], name='registry_au_action_a08290_idx')],
            },
        ),
        migrations.CreateModel(
            name='Team',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100, unique=True)),
                ('slug', models.SlugField(max_length=100, unique=True)),
                ('description', models.TextField(blank=True)),
                ('members', models.ManyToManyField(blank=True, related_name='teams', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.AddField(
            model_name='registeredmodel',
            name='team',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='models', to='registry.team'),
        ),
        migrations.CreateModel(
            name='Webhook',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('url', models.URLField(max_length=500)),
                ('secret', models.CharField(max_length=128)),
                ('events', models.JSONField(default=list, help_text='WebhookEvent values; empty means all.')),
                ('is_active', models.BooleanField(default=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('model', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='webhooks', to='registry.registeredmodel')),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.CreateModel(
            name='MlflowServer',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100, unique=True)),
                ('tracking_url', models.URLField(max_length=300)),
                ('token', models.CharField(blank=True, help_text='Bearer token, if the server needs one.', max_length=300)),
                ('alias', models.CharField(default='champion', help_text='Alias that follows production.', max_length=100)),
                ('enabled', models.BooleanField(default=True)),
                ('last_sync_at', models.DateTimeField(blank=True, null=True)),
                ('last_status', models.CharField(choices=[('never', 'Never synced'), ('ok', 'OK'), ('error', 'Error')], default='never', max_length=10)),
                ('last_error', models.TextField(blank=True)),
                ('last_summary', models.JSONField(blank=True, default=dict)),
                ('default_owner', models.ForeignKey(help_text='Owner of imported models.', on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('team', models.ForeignKey(help_text='Team of imported models.', on_delete=django.db.models.deletion.PROTECT, related_name='mlflow_servers', to='registry.team')),
                ('search_filter', models.CharField(blank=True, help_text="MLflow search filter for the models to govern, e.g. name LIKE 'churn%'.", max_length=300)),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.CreateModel(
            name='MlflowModelLink',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('mlflow_name', models.CharField(max_length=300)),
                ('synced_description', models.TextField(blank=True)),
                ('synced_tags', models.JSONField(blank=True, default=dict)),
                ('model', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='mlflow_link', to='registry.registeredmodel')),
                ('server', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='model_links', to='registry.mlflowserver')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('server', 'mlflow_name'), name='unique_mlflow_model_per_server')],
            },
        ),
        migrations.CreateModel(
            name='MlflowVersionLink',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('mlflow_version', models.CharField(max_length=20)),
                ('writeback', models.CharField(choices=[('none', 'Nothing to write'), ('pending', 'Pending'), ('done', 'Written'), ('failed', 'Failed (retrying)')], default='none', max_length=10)),
                ('writeback_attempts', models.PositiveIntegerField(default=0)),
                ('writeback_error', models.TextField(blank=True)),
                ('writeback_at', models.DateTimeField(blank=True, null=True)),
                ('model_link', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='versions', to='registry.mlflowmodellink')),
                ('version', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='mlflow_link', to='registry.modelversion')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('model_link', 'mlflow_version'), name='unique_mlflow_version_per_model')],
            },
        ),
        migrations.CreateModel(
            name='MlflowAliasViolation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('alias', models.CharField(max_length=100)),
                ('found_version', models.CharField(blank=True, max_length=20)),
                ('expected_version', models.CharField(blank=True, max_length=20)),
                ('detected_at', models.DateTimeField(auto_now_add=True)),
                ('resolved_at', models.DateTimeField(blank=True, null=True)),
                ('model_link', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='violations', to='registry.mlflowmodellink')),
            ],
            options={
                'ordering': ['-detected_at'],
                'constraints': [models.UniqueConstraint(condition=models.Q(('resolved_at__isnull', True)), fields=('model_link',), name='one_open_violation_per_model')],
            },
        ),
        migrations.CreateModel(
            name='InventoryRevision',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('value', models.BigIntegerField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name='WebhookDelivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('event', models.CharField(max_length=40)),
                ('payload', models.JSONField()),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('delivered', 'Delivered'), ('failed', 'Failed')], default='pending', max_length=10)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('last_status_code', models.PositiveIntegerField(blank=True, null=True)),
                ('attempt_log', models.JSONField(blank=True, default=list)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('delivered_at', models.DateTimeField(blank=True, null=True)),
                ('webhook', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='registry.webhook')),
                ('last_error_class', models.CharField(blank=True, help_text="Short error class (e.g. http_500, timeout); never the answer's body.", max_length=40)),
            ],
            options={
                'verbose_name_plural': 'webhook deliveries',
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='Heartbeat',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=50, unique=True)),
                ('beat_at', models.DateTimeField()),
            ],
        ),
        migrations.CreateModel(
            name='ApiToken',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('prefix', models.CharField(db_index=True, max_length=12)),
                ('token_hash', models.CharField(max_length=64, unique=True)),
                ('scopes', models.JSONField(default=list)),
                ('expires_at', models.DateTimeField(blank=True, null=True)),
                ('last_used_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('revoked_at', models.DateTimeField(blank=True, null=True)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_tokens', to=settings.AUTH_USER_MODEL)),
                ('last_used_ip', models.GenericIPAddressField(blank=True, null=True)),
            ],
            options={
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='ServiceAccount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('description', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('team', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='service_accounts', to='registry.team')),
                ('user', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='service_account', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['user__username'],
            },
        ),
        migrations.CreateModel(
            name='ExternalIdentity',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('issuer', models.CharField(max_length=300)),
                ('subject', models.CharField(max_length=255)),
                ('last_login_at', models.DateTimeField(blank=True, null=True)),
                ('groups', models.JSONField(blank=True, default=list)),
                ('granted', models.JSONField(blank=True, default=dict)),
                ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='external_identity', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('issuer', 'subject'), name='external_identity_unique_subject')],
            },
        ),
        migrations.CreateModel(
            name='GroupMapping',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('claim_value', models.CharField(help_text='A value of the groups claim.', max_length=200, unique=True)),
                ('grants_admin', models.BooleanField(default=False, help_text='Staff and superuser in the portal.')),
                ('group', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='auth.group')),
                ('team', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='registry.team')),
            ],
            options={
                'ordering': ['claim_value'],
                'constraints': [models.CheckConstraint(condition=models.Q(('group__isnull', False), ('team__isnull', False), ('grants_admin', True), _connector='OR'), name='group_mapping_grants_something')],
            },
        ),
        migrations.CreateModel(
            name='Review',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('decision', models.CharField(choices=[('approve', 'Approve'), ('reject', 'Reject')], max_length=10)),
                ('comment', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(default=mlops_portal.clock.now, editable=False)),
                ('request', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='reviews', to='registry.promotionrequest')),
                ('requester', models.ForeignKey(help_text="Copy of the request's requester, so the database can refuse self-review.", on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('reviewer', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='reviews', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['created_at'],
                'constraints': [models.UniqueConstraint(fields=('request', 'reviewer'), name='one_review_per_reviewer'), models.CheckConstraint(condition=models.Q(('reviewer', models.F('requester')), _negated=True), name='reviewer_is_not_requester')],
            },
        ),
        migrations.CreateModel(
            name='StageTransition',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('from_stage', models.CharField(choices=[('none', 'Registered'), ('staging', 'Staging'), ('production', 'Production'), ('archived', 'Archived')], max_length=12)),
                ('to_stage', models.CharField(choices=[('none', 'Registered'), ('staging', 'Staging'), ('production', 'Production'), ('archived', 'Archived')], max_length=12)),
                ('kind', models.CharField(choices=[('promotion', 'Promotion'), ('rollback', 'Rollback'), ('superseded', 'Superseded by a newer version'), ('sync', 'Registry sync')], default='promotion', max_length=12)),
                ('reason', models.TextField(blank=True)),
                ('needs_follow_up', models.BooleanField(default=False, help_text='Rollbacks are flagged for follow-up review.')),
                ('created_at', models.DateTimeField(db_index=True, default=mlops_portal.clock.now, editable=False)),
                ('actor', models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='transitions', to='registry.registeredmodel')),
                ('promotion_request', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='transitions', to='registry.promotionrequest')),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='transitions', to='registry.modelversion')),
            ],
            options={
                'ordering': ['-created_at', '-id'],
                'indexes': [models.Index(fields=['model', 'to_stage', 'created_at'], name='registry_st_model_i_0ede91_idx')],
            },
        ),
        migrations.AddField(
            model_name='registeredmodel',
            name='kind',
            field=models.CharField(choices=[('ml', 'ML model'), ('llm_app', 'LLM application')], default='ml', help_text='A classic ML model or an LLM application (prompts, hosted model, index, tools, safety).', max_length=10),
        ),
        migrations.CreateModel(
            name='LLMAppVersion',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('prompts', models.JSONField(default=list, help_text='[{"name", "template", "variables": [...]}]')),
                ('llm', models.JSONField(default=dict, help_text='{"provider", "model", "parameters": {...}}')),
                ('retrieval', models.JSONField(blank=True, help_text='{"name", "version" or "content_hash", "embedding_model"}', null=True)),
                ('tools', models.JSONField(default=list, help_text='[{"name", "schema": {...JSON schema}}]')),
                ('safety', models.JSONField(default=dict, help_text='{"rules": [...], "blocked_topics": [...]}')),
                ('provider', models.CharField(max_length=100)),
                ('model_id', models.CharField(max_length=200)),
                ('content_hash', models.CharField(db_index=True, max_length=64)),
                ('version', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='llm', to='registry.modelversion')),
            ],
            options={
                'indexes': [models.Index(fields=['provider', 'model_id'], name='llm_version_provider_model')],
            },
        ),
        migrations.CreateModel(
            name='PromotionPolicy',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('risk_tier', models.CharField(choices=[('low', 'Low'), ('medium', 'Medium'), ('high', 'High')], max_length=10, unique=True)),
                ('approvals_required', models.PositiveSmallIntegerField(default=1, validators=[django.core.validators.MinValueValidator(1)])),
                ('approver_group', models.CharField(default='reviewer', help_text='Django group allowed to approve.', max_length=80)),
                ('require_model_card', models.BooleanField(default=True)),
                ('require_lineage', models.BooleanField(default=True)),
                ('require_metric_within_tolerance', models.BooleanField(default=True)),
                ('metric_tolerance', models.FloatField(default=0.01, help_text='How much worse than production (absolute).', validators=[django.core.validators.MinValueValidator(0)])),
                ('require_reference_data', models.BooleanField(default=False)),
                ('require_monitoring', models.BooleanField(default=False)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('updated_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('fairness_max_equalized_odds_difference', models.FloatField(default=0.1, validators=[django.core.validators.MinValueValidator(0)])),
                ('fairness_min_disparate_impact', models.FloatField(default=0.8, validators=[django.core.validators.MinValueValidator(0)])),
                ('require_fairness', models.BooleanField(default=False, help_text='Fairness within thresholds (high risk: on).')),
                ('live_min_labelled_pairs', models.PositiveIntegerField(default=500)),
                ('live_tolerance', models.FloatField(default=0.01, validators=[django.core.validators.MinValueValidator(0)])),
                ('require_live_not_worse', models.BooleanField(default=False, help_text='Challenger not worse on live traffic.')),
                ('llm_quality_tolerance', models.FloatField(default=0.02, help_text='Correctness, absolute.', validators=[django.core.validators.MinValueValidator(0), django.core.validators.MaxValueValidator(1)])),
                ('llm_safety_category_floor', models.FloatField(default=0.97, help_text='Lowest rate of any category.', validators=[django.core.validators.MinValueValidator(0), django.core.validators.MaxValueValidator(1)])),
                ('llm_safety_min_pass_rate', models.FloatField(default=0.99, help_text='Overall safety pass rate.', validators=[django.core.validators.MinValueValidator(0), django.core.validators.MaxValueValidator(1)])),
                ('require_llm_quality', models.BooleanField(default=True, help_text='LLM applications: correctness not worse than production (paired).')),
                ('require_llm_safety', models.BooleanField(default=True, help_text='LLM applications: safety pass rates.')),
            ],
            options={
                'verbose_name_plural': 'promotion policies',
                'ordering': ['risk_tier'],
            },
        ),
        migrations.AddField(
            model_name='registeredmodel',
            name='time_zone',
            field=models.CharField(blank=True, help_text="IANA time zone where the model operates (e.g. Europe/Berlin): incident deadlines are computed on its calendar. Blank: the installation's default.", max_length=64, validators=[registry.models.validate_time_zone]),
        ),
        migrations.CreateModel(
            name='EvaluationRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('fairness', 'Fairness (groups of sensitive attributes)'), ('llm', 'LLM application (cases of an evaluation set)')], default='fairness', max_length=20)),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('done', 'Done'), ('failed', 'Failed')], default='pending', max_length=10)),
                ('error', models.TextField(blank=True)),
                ('source_format', models.CharField(max_length=10)),
                ('n_rows', models.PositiveIntegerField()),
                ('attributes', models.JSONField(default=list, help_text='The sensitive attributes evaluated.')),
                ('data', models.BinaryField()),
                ('data_sha256', models.CharField(max_length=64)),
                ('results', models.JSONField(blank=True, default=dict, help_text='The computed report (aggregates only).')),
                ('created_at', models.DateTimeField(default=mlops_portal.clock.now, editable=False)),
                ('computed_at', models.DateTimeField(blank=True, null=True)),
                ('uploaded_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='evaluation_runs', to='registry.modelversion')),
                ('evaluation_set', models.CharField(blank=True, default='', help_text="LLM runs: the evaluation set's name (runs pair by case id).", max_length=100)),
            ],
            options={
                'ordering': ['-created_at', '-pk'],
                'indexes': [models.Index(fields=['version', 'kind', '-created_at'], name='evaluation_version_kind')],
            },
        ),
        migrations.AddConstraint(
            model_name='modelversion',
            constraint=models.UniqueConstraint(fields=('model', 'version'), name='unique_version_per_model'),
        ),
        migrations.AddConstraint(
            model_name='modelversion',
            constraint=models.UniqueConstraint(condition=models.Q(('stage', 'production')), fields=('model',), name='one_production_version_per_model'),
        ),
        migrations.AddConstraint(
            model_name='modelversion',
            constraint=models.CheckConstraint(condition=models.Q(('version__gte', 1)), name='version_positive'),
        ),
        migrations.RunPython(install_triggers, remove_triggers),
        migrations.RunPython(create_rows, migrations.RunPython.noop),
        migrations.RunPython(create_schedules, remove_schedules),
    ]
