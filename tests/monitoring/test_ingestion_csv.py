"""CSV predictions validated column by column (pyarrow + numpy) give exactly what the row-by-row
validator gives: the same rows, the same COPY text, the same windows, and for every batch it is
not sure about, the row-by-row path's answer (rows or the error naming the row and field)."""

from __future__ import annotations

import codecs
from datetime import UTC, datetime

import numpy as np
import orjson
import pytest

from monitoring.models import Prediction
from monitoring.services import ingestion
from monitoring.services.ingestion import BatchError, predictions_ingest
from registry.choices import TaskType
from registry.models import ModelVersion
from registry.services.audit import CLI

CHURN_SCHEMA = [
    {"name": "age", "type": "numeric"},
    {"name": "income", "type": "numeric"},
    {"name": "plan", "type": "categorical"},
]
PREFIX, SUFFIX = "7\t", "\t2026-03-02T10:00:00.123456+00:00\n"


def _version(schema=None, task_type=TaskType.BINARY) -> ModelVersion:
    return ModelVersion(feature_schema=schema if schema is not None else CHURN_SCHEMA, task_type=task_type)


def _row_by_row(body: bytes, version: ModelVersion) -> ingestion._RowBatch:
    records, fmt = ingestion.parse_records(body, "text/csv")
    return ingestion._RowBatch(ingestion.validate_predictions(records, version=version, fmt=fmt))


def _csv(header: str, *lines: str, newline: str = "\n") -> bytes:
    return (newline.join([header, *lines]) + newline).encode()


def assert_same_batch(body: bytes, version: ModelVersion) -> ingestion._CsvBatch:
    fast = ingestion._csv_fast(body, ingestion._schema(version), version.task_type)
    assert fast is not None, "expected the column-wise path to accept this batch"
    slow = _row_by_row(body, version)
    assert fast.rows == slow.rows
    # same key order in every features object, same value types (float vs int, None)
    assert [[(k, type(v)) for k, v in r[2].items()] for r in fast.rows] == [
        [(k, type(v)) for k, v in r[2].items()] for r in slow.rows
    ]
    assert [type(r[3]) for r in fast.rows] == [type(r[3]) for r in slow.rows]
    assert "".join(fast.copy_chunks(PREFIX, SUFFIX)) == "".join(slow.copy_chunks(PREFIX, SUFFIX))
    assert fast.ids == slow.ids
    assert fast.hours() == slow.hours()
    assert fast.bounds() == slow.bounds()
    return fast


ACCEPTED = {
    "plain": _csv(
        "prediction_id,timestamp,age,income,plan,prediction,score",
        "p1,2026-03-02T00:00:00+00:00,40.5,52000.25,basic,1,0.75",
        "p2,2026-03-02T01:30:00.5+00:00,33,1e5,pro,0,0.125",
    ),
    "missing cells, columns in another order": _csv(
        "score,plan,timestamp,prediction_id,age,prediction",
        ",,2026-03-02T00:00:00Z,a,,",
        "0.5,plus,2026-03-02T00:59:59.999999Z,b,41,1",
    ),
    "no prediction, score or feature columns": _csv(
        "prediction_id,timestamp,age", "a,2026-03-02T00:00:00,1", "b,2026-03-02,2"
    ),
    "number spellings": _csv(
        "prediction_id,timestamp,age,income,score",
        "a,2026-03-02T00:00:00Z,1,1.0,0",
        "b,2026-03-02T00:00:00Z,.5,5.,1e-7",
        "c,2026-03-02T00:00:00Z,-0,+1,1E+16",
        "d,2026-03-02T00:00:00Z,0001,1e16,5e-324",
        "e,2026-03-02T00:00:00Z, 2.5 ,1.7976931348623157e308,0.30000000000000004",
        "f,2026-03-02T00:00:00Z,123456789012345678901234567890,1e-400,2.2250738585072011e-308",
    ),
    "timestamp spellings": _csv(
        "prediction_id,timestamp,age",
        "a,2026-03-02T01:00:00+05:30,1",
        "b,2026-03-01T23:00:00-05:00,1",
        "c,2026-03-02 00:00:00.000001,1",
        "d, 2026-03-02T00:00:00 ,1",
        "e,2026-03-02T00:00:00.1234567Z,1",
        "f,20260302T000000,1",
        "g,1999-12-31T23:59:59.999999+00:00,1",
    ),
    "CRLF, BOM, blank lines, no final newline": codecs.BOM_UTF8
    + b"prediction_id,timestamp,age,plan\r\n\r\na,2026-03-02T00:00:00Z,1,x\r\n\r\nb,2026-03-02T00:00:00Z,2,y",
    "ids and categories needing COPY escapes": _csv(
        "prediction_id,timestamp,plan,prediction",
        "a\\b,2026-03-02T00:00:00Z,back\\slash,c\\d",
        "a\tb,2026-03-02T00:00:00Z,tab\there,1",
        "100%,2026-03-02T00:00:00Z,50% off %s,%d",
        "ünï,2026-03-02T00:00:00Z,café ☕,🙂",
        "x'y,2026-03-02T00:00:00Z,{},[]",
    ),
    "whitespace categories are kept": _csv("prediction_id,timestamp,plan", "a,2026-03-02T00:00:00Z, "),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_the_column_wise_path_gives_the_row_by_row_result(case):
    assert_same_batch(ACCEPTED[case], _version())


def test_regression_predictions_and_unusual_feature_names():
    schema = [
        {"name": "x%s", "type": "numeric"},
        {"name": 'q"uote\\', "type": "numeric"},
        {"name": "kind", "type": "categorical"},
        {"name": "n"},  # no type: numeric
    ]
    version = _version(schema, TaskType.REGRESSION)
    body = (
        b"prediction_id,timestamp,x%s,kind,n,prediction,score\n"
        b"a,2026-03-02T00:00:00Z,1.5,k,3,2.25,\n"
        b"b,2026-03-02T00:00:00Z,,,4,,0.5\n"
        b"c,2026-03-02T00:00:00Z,1e300,z,5,-1e-300,1\n"
    )
    fast = assert_same_batch(body, version)
    assert fast.rows[0][2] == {"x%s": 1.5, 'q"uote\\': None, "n": 3.0, "kind": "k"}
    assert fast.rows[1][3] is None


def test_a_schema_of_categories_only():
    version = _version([{"name": "plan", "type": "categorical"}], TaskType.MULTICLASS)
    body = _csv("prediction_id,timestamp,plan,prediction", "a,2026-03-02T00:00:00Z,x,cat", "b,2026-03-02,,")
    assert_same_batch(body, version)


def test_a_large_random_batch_matches_row_by_row():
    rng = np.random.default_rng(3)
    n = 12_000  # more than one COPY chunk
    values = rng.normal(size=(n, 2)) * 10.0 ** rng.integers(-12, 12, size=(n, 2))
    values[rng.random((n, 2)) < 0.05] = np.nan
    plans = rng.choice(["basic", "plus", "pro", ""], n)
    lines = ["prediction_id,timestamp,age,income,plan,prediction,score"]
    for i in range(n):
        age, income = ("" if np.isnan(v) else repr(float(v)) for v in values[i])
        stamp = datetime.fromtimestamp(1_772_400_000 + int(rng.integers(0, 86_400 * 3)) + i / 7, tz=UTC).isoformat()
        lines.append(f"id-{i},{stamp},{age},{income},{plans[i]},{i % 3},{rng.random():.17g}")
    fast = assert_same_batch(("\n".join(lines) + "\n").encode(), _version())
    assert len(fast.hours()) > 24


FALLBACK = {
    "quoted cells": _csv("prediction_id,timestamp,plan", 'a,2026-03-02T00:00:00Z,"x, y"'),
    "NaN": _csv("prediction_id,timestamp,age", "a,2026-03-02T00:00:00Z,1", "b,2026-03-02T00:00:00Z,nan"),
    "infinite score": _csv("prediction_id,timestamp,score", "a,2026-03-02T00:00:00Z,-inf"),
    "overflowing number": _csv("prediction_id,timestamp,age", "a,2026-03-02T00:00:00Z,1e400"),
    "nan with payload": _csv("prediction_id,timestamp,age", "a,2026-03-02T00:00:00Z,nan(1)"),
    "underscores": _csv("prediction_id,timestamp,age", "a,2026-03-02T00:00:00Z,1_000"),
    "non-ASCII digits and spaces": _csv("prediction_id,timestamp,age,income", "a,2026-03-02T00:00:00Z,١,\u00a01"),
    "not a number": _csv("prediction_id,timestamp,age", "a,2026-03-02T00:00:00Z,abc"),
    "blank number": _csv("prediction_id,timestamp,age", "a,2026-03-02T00:00:00Z, "),
    "short row": _csv("prediction_id,timestamp,age,plan", "a,2026-03-02T00:00:00Z,1", "b,2026-03-02T00:00:00Z,2,x"),
    "long row": _csv("prediction_id,timestamp,age", "a,2026-03-02T00:00:00Z,1,2"),
    "duplicate id": _csv("prediction_id,timestamp,age", "a,2026-03-02T00:00:00Z,1", "a,2026-03-02T00:00:00Z,2"),
    "id duplicate after stripping": _csv(
        "prediction_id,timestamp,age", "a,2026-03-02T00:00:00Z,1", " a,2026-03-02T00:00:00Z,2"
    ),
    "id with spaces": _csv("prediction_id,timestamp,age", " a ,2026-03-02T00:00:00Z,1"),
    "empty id": _csv("prediction_id,timestamp,age", ",2026-03-02T00:00:00Z,1"),
    "id too long": _csv("prediction_id,timestamp,age", "x" * 101 + ",2026-03-02T00:00:00Z,1"),
    "missing timestamp": _csv("prediction_id,timestamp,age", "a,,1"),
    "bad timestamp": _csv("prediction_id,timestamp,age", "a,yesterday,1"),
    "impossible date": _csv("prediction_id,timestamp,age", "a,2026-02-30T00:00:00,1"),
    "unknown column": _csv("prediction_id,timestamp,height", "a,2026-03-02T00:00:00Z,3"),
    "features column": _csv("prediction_id,timestamp,features,age", "a,2026-03-02T00:00:00Z,x,3"),
    "duplicate header": _csv("prediction_id,timestamp,age,age", "a,2026-03-02T00:00:00Z,1,2"),
    "missing id column": _csv("timestamp,age", "2026-03-02T00:00:00Z,3"),
    "blank first line": b"\nprediction_id,timestamp,age\na,2026-03-02T00:00:00Z,1\n",
    "header only": b"prediction_id,timestamp,age\n",
    "empty": b"",
    "lone carriage return": b"prediction_id,timestamp,age\ra,2026-03-02T00:00:00Z,1\r",
    "carriage return in a cell": b"prediction_id,timestamp,plan\na,2026-03-02T00:00:00Z,x\ry\n",
    "not UTF-8": b"prediction_id,timestamp,plan\na,2026-03-02T00:00:00Z,\xff\n",
    "NUL byte": b"prediction_id,timestamp,plan\na,2026-03-02T00:00:00Z,x\x00y\n",
    "bad prediction for a regression": None,
}


def _outcome(call):
    try:
        batch = call()
    except BatchError as exc:
        return ("error", exc.messages)
    return ("rows", batch.rows)


@pytest.mark.parametrize("case", sorted(FALLBACK))
def test_batches_the_column_wise_path_is_unsure_of_get_the_row_by_row_answer(case):
    body, version = FALLBACK[case], _version()
    if body is None:
        body = _csv("prediction_id,timestamp,prediction", "a,2026-03-02T00:00:00Z,inf")
        version = _version(task_type=TaskType.REGRESSION)
    assert ingestion._csv_fast(body, ingestion._schema(version), version.task_type) is None
    got = _outcome(lambda: ingestion.prediction_batch(body, "text/csv", version=version)[0])
    assert got == _outcome(lambda: _row_by_row(body, version))


def test_a_lone_carriage_return_is_a_400_not_a_crash():
    body = FALLBACK["lone carriage return"]
    with pytest.raises(BatchError, match="Invalid CSV"):
        ingestion.prediction_batch(body, "text/csv", version=_version())


def test_errors_still_name_the_row_and_field():
    body = _csv(
        "prediction_id,timestamp,age,income",
        "a,2026-03-02T00:00:00Z,1,2",
        "b,2026-03-02T00:00:00Z,3,inf",
    )
    with pytest.raises(BatchError) as caught:
        ingestion.prediction_batch(body, "text/csv", version=_version())
    assert caught.value.details == {
        "row": 2,
        "field": "features.income",
        "reason": "NaN and infinity are not allowed; send null for a missing value.",
    }


@pytest.mark.django_db
def test_a_csv_batch_is_stored_as_the_row_by_row_rows(churn_v1, owner):
    body = b"prediction_id,timestamp,plan,age,income,score\n" + b"".join(
        line + b"\n"
        for line in (
            b"a\\b,2026-03-02T00:00:00+01:00,back\\slash,1.0,,0.5",
            b"a\tb,2026-03-02T00:00:00.5Z,tab\there,1e16,-0,",
            b"100%,2026-03-02T23:59:59.999999Z,,1e-7,5e-324,1",
        )
    )
    expected = _row_by_row(body, churn_v1).rows
    summary = predictions_ingest(version=churn_v1, body=body, content_type="text/csv", actor=owner, context=CLI)
    assert summary["rows"] == 3
    assert summary["first_timestamp"] == "2026-03-01T23:00:00+00:00"
    assert summary["last_timestamp"] == "2026-03-02T23:59:59.999999+00:00"
    stored = {
        p.prediction_id: (p.prediction_id, p.timestamp, p.features, p.prediction, p.score)
        for p in Prediction.objects.filter(version=churn_v1)
    }
    assert [stored[r[0]] for r in expected] == expected
    features = stored["a\\b"][2]
    assert {k: type(v) for k, v in features.items()} == {"age": float, "income": type(None), "plan": str}


def test_json_batches_get_the_same_copy_text_windows_and_bounds_as_row_by_row():
    rng = np.random.default_rng(5)
    records = [
        {
            "prediction_id": f"j{i}" if i % 97 else f"j\t{i}\\x",
            "timestamp": 1_772_400_000 + i * 3.7 + (0.5 if i % 3 else 0)
            if i % 5
            else f"2026-03-02T0{i % 10}:00:00+02:00",
            "features": {
                "age": [None, 1, 1.0, -0.0, 1e16, float(rng.normal())][i % 6],
                "plan": ["a\\b", 'q"', "tab\there", "new\nline", None, "ü"][i % 6],
            },
            "prediction": [None, "yes", 0, True, 2.5][i % 5],
            "score": [None, 0.25, 1, 5e-324][i % 4],
        }
        for i in range(11_000)
    ]
    body = orjson.dumps(records)
    for fmt_records in (ingestion.parse_records(body, "application/json")[0], records):
        for rows in (
            ingestion.validate_predictions(fmt_records, version=_version(), fmt="json"),
            ingestion._validate_rows(fmt_records, version=_version(), fmt="json"),
        ):
            batch = ingestion._RowBatch(rows)
            assert "".join(batch.copy_chunks(PREFIX, SUFFIX)) == ingestion._copy_lines(rows, PREFIX, SUFFIX)
            assert batch.hours() == {ingestion.hour_floor(r[1]) for r in rows}
            assert batch.bounds() == (min(r[1] for r in rows), max(r[1] for r in rows))
