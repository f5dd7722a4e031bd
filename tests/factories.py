"""factory-boy factories for the whole suite."""

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from monitoring.choices import AlertKind, AlertSeverity, AlertStatus
from monitoring.models import Alert
from registry.choices import RiskTier, Stage, TaskType
from registry.models import ModelVersion, RegisteredModel, Team


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pass-1234-word")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")


class RegisteredModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RegisteredModel

    name = factory.Sequence(lambda n: f"model-{n}")
    description = "Predicts things."
    owner = factory.SubFactory(UserFactory)
    team = factory.SubFactory(TeamFactory)
    risk_tier = RiskTier.MEDIUM
    intended_use = "Internal decision support."
    limitations = "Not for use on minors."
    primary_metric = "roc_auc"


FEATURE_SCHEMA = [
    {"name": "age", "type": "numeric"},
    {"name": "income", "type": "numeric"},
    {"name": "plan", "type": "categorical"},
]


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion

    model = factory.SubFactory(RegisteredModelFactory)
    version = factory.LazyAttribute(
        lambda o: (
            (
                ModelVersion.objects.filter(model=o.model)
                .order_by("-version")
                .values_list("version", flat=True)
                .first()
                or 0
            )
            + 1
        )
    )
    stage = Stage.NONE
    artifact_uri = factory.LazyAttribute(lambda o: f"s3://models/{o.model.name}/{o.version}")
    source_commit = "0123456789abcdef0123456789abcdef01234567"
    training_run_id = factory.Sequence(lambda n: f"run-{n}")
    training_data_ref = "s3://data/train.parquet"
    training_data_hash = "sha256:" + "ab" * 32
    metrics = factory.LazyFunction(lambda: {"roc_auc": 0.85, "accuracy": 0.8})
    feature_schema = factory.LazyFunction(lambda: [dict(f) for f in FEATURE_SCHEMA])
    task_type = TaskType.BINARY


class AlertFactory(factory.django.DjangoModelFactory):
    """An open warning drift alert, opened now; pass the times and states a test is about."""

    class Meta:
        model = Alert

    model = factory.SubFactory(RegisteredModelFactory)
    kind = AlertKind.DRIFT
    severity = AlertSeverity.WARNING
    status = AlertStatus.OPEN
    title = "Data drift"
    updated_at = factory.LazyFunction(timezone.now)
    opened_at = factory.LazyAttribute(lambda a: a.updated_at)
