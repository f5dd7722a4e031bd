"""Reference profiles: parsing CSV/Parquet, per-column validation, and what the profile holds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from django.core.exceptions import ValidationError

from monitoring.choices import PREDICTION_FEATURE, SCORE_FEATURE, ProfileStatus
from monitoring.models import ReferenceProfile
from monitoring.services import profiles
from monitoring.services.ingestion import reference_upload
from monitoring.services.reference_data import reference_read
from monitoring.services.reference_profiles import reference_profile_compute
from registry.services.audit import CLI
from tests.factories import FEATURE_SCHEMA
from tests.monitoring.helpers import csv_bytes, parquet_bytes, profile_of, reference_frame


def build(df, task_type="binary", n_bins=10):
    return profile_of(df, FEATURE_SCHEMA, task_type, n_bins)


@pytest.mark.django_db
def test_csv_and_parquet_of_the_same_table_give_the_same_profile(churn_v1):
    df = reference_frame(1500)
    from_csv, fmt_csv = reference_read(body=csv_bytes(df), content_type="text/csv", version=churn_v1)
    from_parquet, fmt_parquet = reference_read(
        body=parquet_bytes(df), content_type="application/octet-stream", version=churn_v1
    )
    assert (fmt_csv, fmt_parquet) == ("csv", "parquet")
    a = profiles.profile_build(from_csv, FEATURE_SCHEMA, "binary", 10)
    b = profiles.profile_build(from_parquet, FEATURE_SCHEMA, "binary", 10)
    assert a["features"]["plan"] == b["features"]["plan"]
    assert np.allclose(a["features"]["age"]["edges"], b["features"]["age"]["edges"])
    assert a["features"]["age"]["counts"] == b["features"]["age"]["counts"]


def test_numeric_profile_has_bins_summary_statistics_and_a_bounded_sample():
    df = reference_frame(5000)
    df.loc[:9, "age"] = np.nan
    age = build(df, n_bins=20)["features"]["age"]
    assert age["n"] == 4990 and age["missing"] == 10
    assert len(age["coarse_edges"]) == 19 and len(age["edges"]) == 99
    assert max(age["coarse_map"]) == 19
    assert age["min"] == pytest.approx(df["age"].min()) and age["max"] == pytest.approx(df["age"].max())
    assert age["mean"] == pytest.approx(df["age"].mean()) and age["std"] == pytest.approx(df["age"].std(ddof=0))
    assert age["quantiles"]["p50"] == pytest.approx(df["age"].median())
    assert len(age["sample"]) == profiles.SAMPLE_SIZE
    assert set(age["sample"]) <= set(df["age"].dropna())


def test_categorical_profile_keeps_the_top_categories_plus_other_and_missing():
    n = 3000
    values = [f"c{i % 80}" for i in range(n)]
    values[:5] = [None] * 5
    df = reference_frame(n).assign(plan=values)
    plan = build(df)["features"]["plan"]
    assert len(plan["categories"]) == profiles.TOP_CATEGORIES
    assert len(plan["counts"]) == profiles.TOP_CATEGORIES + 1
    assert sum(plan["counts"]) == n - 5 and plan["missing"] == 5
    assert len(plan["known_other"]) == 80 - profiles.TOP_CATEGORIES and plan["known_complete"]


def test_prediction_and_score_columns_are_profiled_with_per_class_summaries():
    prof = build(reference_frame(2000))
    assert prof["features"][PREDICTION_FEATURE]["type"] == "categorical"
    assert set(prof["features"][PREDICTION_FEATURE]["categories"]) == {"0", "1"}
    assert prof["features"][SCORE_FEATURE]["type"] == "numeric"
    assert set(prof["per_class"]) == {"0", "1"}
    assert prof["per_class"]["1"]["score"]["mean"] > prof["per_class"]["0"]["score"]["mean"]
    assert sum(c["share"] for c in prof["per_class"].values()) == pytest.approx(1.0)


def test_regression_prediction_column_is_numeric():
    df = reference_frame(500).assign(prediction=np.linspace(0, 1, 500))
    prof = build(df, task_type="regression")
    assert prof["features"][PREDICTION_FEATURE]["type"] == "numeric"
    assert prof["per_class"] == {}


@pytest.mark.django_db
def test_unreadable_files_are_rejected(churn_v1):
    for body, content_type in [(b"", "text/csv"), (b"PAR1garbage", ""), (b"\x00\x01\x02", "application/parquet")]:
        with pytest.raises(ValidationError):
            reference_read(body=body, content_type=content_type, version=churn_v1)


@pytest.mark.django_db
def test_a_rejected_upload_stores_nothing_and_records_no_event(churn_v1, owner, last_seq):
    seq = last_seq()
    with pytest.raises(ValidationError):
        reference_upload(
            version=churn_v1,
            body=csv_bytes(reference_frame(20).drop(columns=["plan"])),
            content_type="text/csv",
            actor=owner,
            context=CLI,
        )
    assert ReferenceProfile.objects.count() == 0 and last_seq() == seq


@pytest.mark.django_db
def test_a_new_upload_replaces_the_previous_reference_and_its_profile(churn_v1, owner):
    reference_upload(
        version=churn_v1, body=csv_bytes(reference_frame(300)), content_type="text/csv", actor=owner, context=CLI
    )
    first = ReferenceProfile.objects.get()
    reference_profile_compute(profile_id=first.pk)
    reference_upload(
        version=churn_v1, body=parquet_bytes(reference_frame(600, seed=9)), content_type="", actor=owner, context=CLI
    )
    ref = ReferenceProfile.objects.get()
    assert ref.status == ProfileStatus.PENDING and ref.n_rows == 600 and ref.source_format == "parquet"
    reference_profile_compute(profile_id=ref.pk)
    ref.refresh_from_db()
    assert ref.status == ProfileStatus.READY and ref.profile["n_rows"] == 600


def test_profile_of_a_constant_column_has_one_edge_and_does_not_divide_by_zero():
    df = pd.DataFrame({"age": [5.0] * 100, "income": np.arange(100.0), "plan": ["a"] * 100})
    prof = build(df)
    assert prof["features"]["age"]["edges"] == [5.0]
    from monitoring.stats import compute_window_drift

    rows = compute_window_drift(
        prof, {"age": np.array([5.0, 6.0]), "income": np.array([1.0, 2.0]), "plan": np.array(["a", "b"], dtype=object)}
    )
    assert all(r["value"] is None or np.isfinite(r["value"]) for r in rows)


# --------------------------------------------------------------------------- pending and failed profiles


def upload_with_broker_down(version, owner, monkeypatch, django_capture_on_commit_callbacks):
    """A reference upload whose profile task cannot be queued (the broker is unreachable)."""
    from monitoring import tasks

    def broker_down(*args, **kwargs):
        raise OSError("Connection refused (broker)")

    with monkeypatch.context() as patch:
        patch.setattr(tasks.profile_compute, "delay", broker_down)
        with django_capture_on_commit_callbacks(execute=True):
            reference_upload(
                version=version, body=csv_bytes(reference_frame(300)), content_type="text/csv", actor=owner, context=CLI
            )
    ref = ReferenceProfile.objects.get(version=version)
    assert ref.status == ProfileStatus.PENDING
    return ref


@pytest.mark.django_db
def test_a_profile_uploaded_while_the_broker_is_down_is_computed_by_the_pending_sweep(
    churn_v1, owner, monkeypatch, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from monitoring import tasks
    from monitoring.services.reference_profiles import PENDING_GRACE, PROFILE_REQUEUE_AFTER, profiles_sweep_pending

    ref = upload_with_broker_down(churn_v1, owner, monkeypatch, django_capture_on_commit_callbacks)
    now = timezone.now()
    assert profiles_sweep_pending(now=now) == [], "a fresh upload's own message gets a grace period"
    later = now + PENDING_GRACE + timedelta(seconds=1)
    assert profiles_sweep_pending(now=later) == [ref.pk]
    assert profiles_sweep_pending(now=later) == [], "queued once per requeue period"
    assert profiles_sweep_pending(now=later + PROFILE_REQUEUE_AFTER + timedelta(seconds=1)) == [ref.pk]

    ReferenceProfile.objects.filter(pk=ref.pk).update(enqueued_at=None, uploaded_at=now - 2 * PENDING_GRACE)
    assert tasks.profiles_sweep_pending.apply().get() == 1  # the beat task queues (here: runs) it
    ref.refresh_from_db()
    assert ref.status == ProfileStatus.READY and ref.profile["n_rows"] == 300


@pytest.mark.django_db
def test_a_profile_that_cannot_be_built_is_failed_with_its_reason_and_not_retried(
    churn_v1, owner, monkeypatch, django_capture_on_commit_callbacks, audit_actions
):
    from monitoring.services import reference_profiles

    ref = upload_with_broker_down(churn_v1, owner, monkeypatch, django_capture_on_commit_callbacks)

    def unusable(*args, **kwargs):
        raise ValueError("a column holds a NUL character")

    monkeypatch.setattr(reference_profiles, "windows_mark_dirty", unusable)  # fails while storing
    reference_profile_compute(profile_id=ref.pk)
    ref.refresh_from_db()
    assert ref.status == ProfileStatus.FAILED
    assert ref.error == "ValueError: a column holds a NUL character"
    assert ref.profile == {}, "the failed store left nothing half-written"
    assert "reference.failed" in audit_actions()
    assert reference_profiles.profiles_sweep_pending(now=ref.uploaded_at.replace(year=2100)) == []


@pytest.mark.django_db
def test_a_transient_error_leaves_the_profile_pending_for_the_task_to_retry(
    churn_v1, owner, monkeypatch, django_capture_on_commit_callbacks
):
    from django.db import OperationalError

    from monitoring.services import reference_profiles

    ref = upload_with_broker_down(churn_v1, owner, monkeypatch, django_capture_on_commit_callbacks)

    def connection_lost(*args, **kwargs):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(reference_profiles, "windows_mark_dirty", connection_lost)
    with pytest.raises(OperationalError):
        reference_profile_compute(profile_id=ref.pk)
    ref.refresh_from_db()
    assert ref.status == ProfileStatus.PENDING and ref.error == ""


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_reference_whose_profile_postgresql_refuses_is_failed_not_left_pending(churn_v1):
    """A category holding a NUL character: JSONB refuses it when the profile is stored."""
    import hashlib

    df = reference_frame(200)
    df.loc[0, "plan"] = "bas\x00ic"
    data = parquet_bytes(df)
    ref = ReferenceProfile.objects.create(
        version=churn_v1, source_format="parquet", n_rows=200, data=data, data_sha256=hashlib.sha256(data).hexdigest()
    )
    reference_profile_compute(profile_id=ref.pk)
    ref.refresh_from_db()
    assert ref.status == ProfileStatus.FAILED
    assert ref.error.startswith("DataError") or ref.error.startswith("ValueError"), ref.error
