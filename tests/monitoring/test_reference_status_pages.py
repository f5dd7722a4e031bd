"""Where an owner sees what became of a version's reference data: the version page says whether
it was uploaded, is being profiled, is ready or failed (and why), and the dashboard's notice
about a version without a profile says which of these it is."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from mlops_portal import clock
from monitoring.choices import ProfileStatus
from monitoring.models import ReferenceProfile
from registry.choices import Stage
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


def _profile(version, status: str, error: str = "") -> ReferenceProfile:
    return ReferenceProfile.objects.create(
        version=version,
        status=status,
        error=error,
        source_format="csv",
        n_rows=20_000,
        data=b"",
        data_sha256="0" * 64,
        computed_at=clock.now() if status == ProfileStatus.READY else None,
    )


def _reference_row(page: str) -> str:
    found = re.search(r'<dd id="reference-data">(.*?)</dd>', page, re.S)
    assert found, "the version page has no reference data row"
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))))


@pytest.mark.parametrize(
    ("status", "error", "says"),
    [
        (None, "", "Not uploaded"),
        (ProfileStatus.PENDING, "", "20,000 rows uploaded"),
        (ProfileStatus.READY, "", "20,000 rows, profiled"),
        (ProfileStatus.FAILED, "ValueError: column 'plan' is empty", "column 'plan' is empty"),
    ],
)
def test_the_version_page_says_what_became_of_its_reference_data(churn, owner, client_for, status, error, says):
    # the page said nothing: an owner who had uploaded reference data could not see it
    # was pending, ready or failed, nor why it failed
    version = ModelVersionFactory(model=churn)
    if status:
        _profile(version, status, error)
    page = client_for(owner).get(reverse("registry:version_detail", args=["churn", version.version])).content
    row = _reference_row(page.decode())
    assert says in row, row
    if status in (None, ProfileStatus.FAILED):
        assert f"/api/v1/models/churn/versions/{version.version}/reference/" in row


def test_the_dashboard_says_a_reference_being_profiled_is_on_its_way(churn, owner, client_for):
    # it said "has no reference profile … upload its reference data" while the upload was profiled
    version = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    _profile(version, ProfileStatus.PENDING)
    page = client_for(owner).get(reverse("monitoring:model_dashboard", args=["churn"])).content.decode()
    notice = re.search(r'<p id="reference-missing"[^>]*>(.*?)</p>', page, re.S).group(1)
    assert "being profiled" in notice and "upload its reference data" not in notice, notice


def test_the_dashboard_names_why_a_reference_profile_failed(churn, owner, client_for):
    version = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    _profile(version, ProfileStatus.FAILED, "ValueError: column 'plan' is empty")
    page = client_for(owner).get(reverse("monitoring:model_dashboard", args=["churn"])).content.decode()
    notice = re.search(r'<p id="reference-missing"[^>]*>(.*?)</p>', page, re.S).group(1)
    assert "failed" in notice and "column &#x27;plan&#x27; is empty" in notice, notice
