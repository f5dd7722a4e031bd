"""Reference uploads are read as strictly as prediction batches (the same CSV reader and column
checks): short and long rows, unknown columns and NaN text are a 400 naming row or column with
nothing stored; a re-upload is dated by its own upload."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from monitoring.models import ReferenceProfile
from tests.monitoring.helpers import assert_error, csv_bytes, parquet_bytes, reference_frame

pytestmark = pytest.mark.django_db
REF_URL = "/api/v1/models/churn/versions/1/reference/"
HEADER = "age,income,plan,prediction,score"


@pytest.fixture
def client(churn_v1, owner, api_client_for):
    return api_client_for(owner)


def post(client, body: bytes, content_type="text/csv"):
    return client.generic("POST", REF_URL, body, content_type)


BAD = {
    "short row": ([HEADER, "40,1000,basic,1,0.7", "41"], ["Row 2", "Fewer cells"]),
    "long row": ([HEADER, "40,1000,basic,1,0.7,9"], ["Row 1", "More cells"]),
    "unknown column": ([HEADER + ",tenure_months", "40,1000,basic,1,0.7,3"], ["tenure_months", "Unknown column"]),
    "nan feature": ([HEADER, "40,1000,basic,1,0.7", "nan,1000,basic,1,0.7"], ["Row 2", "features.age", "NaN"]),
    "nan score": ([HEADER, "40,1000,basic,1,nan"], ["Row 1", "score", "NaN"]),
    "text in a number": ([HEADER, "40,lots,basic,1,0.7"], ["Row 1", "features.income"]),
    "missing feature": (["age,plan", "40,basic"], ["income", "missing"]),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_a_bad_reference_csv_is_a_400_naming_row_or_column(client, case):
    lines, needles = BAD[case]
    assert_error(post(client, ("\n".join(lines) + "\n").encode()), 400, *needles)
    assert ReferenceProfile.objects.count() == 0


def test_empty_cells_are_missing_values_as_in_predictions(client):
    body = "\n".join([HEADER, "40,1000,basic,1,0.7", ",,,,"]).encode() + b"\n"
    response = post(client, body)
    assert response.status_code == 202, response.content
    assert ReferenceProfile.objects.get().n_rows == 2


def test_parquet_with_a_nan_number_is_a_missing_value_and_unknown_columns_are_refused(client):
    frame = reference_frame(50)
    frame.loc[0, "age"] = np.nan  # Parquet nulls and NaN both read as missing, as JSON null is
    assert post(client, parquet_bytes(frame), "application/vnd.apache.parquet").status_code == 202
    response = post(client, parquet_bytes(frame.assign(extra=1)), "application/vnd.apache.parquet")
    assert_error(response, 400, "extra", "Unknown column")


def test_a_reupload_carries_its_own_upload_time(client):
    assert post(client, csv_bytes(reference_frame(100))).status_code == 202
    old = ReferenceProfile.objects.get().uploaded_at - timedelta(days=3)
    ReferenceProfile.objects.update(uploaded_at=old)
    assert post(client, csv_bytes(reference_frame(60))).status_code == 202
    body = client.get(REF_URL).json()
    assert body["n_rows"] == 60
    assert ReferenceProfile.objects.get().uploaded_at > old + timedelta(days=2)
