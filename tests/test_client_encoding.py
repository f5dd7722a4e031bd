"""The Python client's encoding of what it sends: CSV files cut into batches as they are, and
rows of pandas/numpy values (missing values, infinities) turned into JSON before sending."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlops_portal_client import PortalClient
from mlops_portal_client.cli import EXIT_REFUSED, main
from mlops_portal_client.client import csv_batches
from tests.test_client_retry import FlakyPortal


def test_a_csv_file_is_cut_into_batches_with_its_header_and_quoted_line_breaks_kept():
    data = b'id,note\r\n1,"two\nlines"\r\n2,plain\r\n\r\n3,"a ""quoted"" cell"'
    batches = list(csv_batches(data, 2))
    assert batches == [
        (b'id,note\r\n1,"two\nlines"\r\n2,plain\r\n', 2),
        (b'id,note\r\n3,"a ""quoted"" cell"\n', 1),
    ]
    assert list(csv_batches(b"id,note\n", 10)) == []


@pytest.fixture
def recorder():
    server = FlakyPortal([])
    yield server
    server.close()


def test_missing_values_of_pandas_and_numpy_are_sent_as_null_and_numpy_scalars_as_numbers(recorder):
    rows = [
        {
            "prediction_id": "p-0",
            "timestamp": pd.Timestamp("2026-11-20T10:00:00Z"),
            "features": {
                "nan": float("nan"),
                "np_nan": np.float64("nan"),
                "np32_nan": np.float32("nan"),
                "na": pd.NA,
                "nat": pd.NaT,
                "none": None,
                "count": np.int64(3),
                "flag": np.bool_(True),
                "ratio": np.float32(0.5),
            },
            "prediction": np.int64(1),
            "score": np.float64(0.25),
        }
    ]
    assert PortalClient(recorder.url, "t").log_predictions("churn", 1, rows) == 1
    sent = json.loads(recorder.requests[0][2])
    assert sent == [
        {
            "prediction_id": "p-0",
            "timestamp": "2026-11-20T10:00:00+00:00",
            "features": {
                "nan": None,
                "np_nan": None,
                "np32_nan": None,
                "na": None,
                "nat": None,
                "none": None,
                "count": 3,
                "flag": True,
                "ratio": 0.5,
            },
            "prediction": 1,
            "score": 0.25,
        }
    ]


@pytest.mark.parametrize("infinity", [float("inf"), np.float64("-inf"), np.float32("inf")])
def test_an_infinity_is_refused_before_sending_naming_the_row_index_and_field(recorder, infinity):
    rows = [{"prediction_id": f"p-{i}", "features": {"x": 1.0}} for i in range(3)]
    rows[2]["features"]["x"] = infinity
    portal = PortalClient(recorder.url, "t")
    with pytest.raises(ValueError, match=r"rows\[2\], field 'features\.x': infinity"):
        portal.log_predictions("churn", 1, rows, batch_size=2)
    assert len(recorder.requests) == 1  # the first batch (rows 0 and 1) went; the bad one did not
    with pytest.raises(ValueError, match=r"rows\[0\], field 'label'"):
        portal.log_labels("churn", [{"prediction_id": "p-0", "label": infinity}])


def test_the_cli_answers_a_missing_input_file_with_one_line_and_the_bad_input_exit_code(capsys, tmp_path):
    for command in (["predictions", "churn", "1"], ["labels", "churn"]):
        for name in ("missing.csv", "missing.jsonl"):
            code = main(["--url", "http://127.0.0.1:9", "--token", "t", *command, str(tmp_path / name)])
            err = capsys.readouterr().err
            assert code == EXIT_REFUSED and err.count("\n") == 1 and "missing" in err and "Traceback" not in err


def test_the_cli_registers_a_version_with_its_declared_classes(recorder):
    args = ["register", "churn", "--run-id", "r1", "--classes", "stayed, churned", "--positive-class", "churned"]
    assert main(["--url", recorder.url, "--token", "t", *args]) == 0
    method, path, body = recorder.requests[-1]
    assert (method, path) == ("POST", "/api/v1/models/churn/versions/")
    sent = json.loads(body)
    assert sent["classes"] == ["stayed", "churned"] and sent["positive_class"] == "churned"
