"""CSV predictions: what is stored for the spellings clients send, and which bodies are refused
(naming the row and field). Runs on PostgreSQL (COPY) and SQLite (ORM): both store the same."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from monitoring.models import Prediction
from monitoring.services.ingest_parsing import BatchError
from monitoring.services.ingestion import predictions_ingest
from registry.choices import TaskType
from registry.services.audit import CLI
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


def _csv(header: str, *lines: str, newline: str = "\n") -> bytes:
    return (newline.join([header, *lines]) + newline).encode()


def ingest(version, body: bytes, owner) -> dict:
    return predictions_ingest(version=version, body=body, content_type="text/csv", actor=owner, context=CLI)


def stored(version) -> dict[str, Prediction]:
    return {p.prediction_id: p for p in Prediction.objects.filter(version=version)}


def test_plain_csv_is_stored(churn_v1, owner):
    body = _csv(
        "prediction_id,timestamp,age,income,plan,prediction,score",
        "p1,2026-03-02T00:00:00+00:00,40.5,52000.25,basic,1,0.75",
        "p2,2026-03-02T01:30:00.5+00:00,33,1e5,pro,0,0.125",
    )
    summary = ingest(churn_v1, body, owner)
    assert summary["rows"] == 2 and summary["format"] == "csv" and summary["hourly_windows"] == 2
    rows = stored(churn_v1)
    assert rows["p1"].features == {"age": 40.5, "income": 52000.25, "plan": "basic"}
    assert set(rows["p2"].features) == {"age", "income", "plan"}  # PostgreSQL's JSONB orders keys its own way
    assert rows["p2"].features["income"] == 100000.0
    assert rows["p2"].timestamp == datetime(2026, 3, 2, 1, 30, 0, 500000, tzinfo=UTC)
    assert (rows["p1"].prediction, rows["p1"].score) == ("1", 0.75)


def test_missing_cells_and_columns_in_any_order_are_nulls(churn_v1, owner):
    body = _csv(
        "score,plan,timestamp,prediction_id,age,prediction",
        ",,2026-03-02T00:00:00Z,a,,",
        "0.5,plus,2026-03-02T00:59:59.999999Z,b,41,1",
    )
    ingest(churn_v1, body, owner)
    rows = stored(churn_v1)
    assert rows["a"].features == {"age": None, "income": None, "plan": None}
    assert (rows["a"].prediction, rows["a"].score) == (None, None)
    assert rows["b"].features == {"age": 41.0, "income": None, "plan": "plus"}


@pytest.mark.parametrize(
    "text,value",
    [("1", 1.0), (".5", 0.5), ("5.", 5.0), ("-0", -0.0), ("+1", 1.0), ("1E+16", 1e16), (" 2.5 ", 2.5), ("0001", 1.0)],
)
def test_number_spellings(churn_v1, owner, text, value):
    ingest(churn_v1, _csv("prediction_id,timestamp,age", f"a,2026-03-02T00:00:00Z,{text}"), owner)
    assert Prediction.objects.get().features["age"] == value


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2026-03-02T01:00:00+05:30", datetime(2026, 3, 1, 19, 30, tzinfo=UTC)),
        ("2026-03-01T23:00:00-05:00", datetime(2026, 3, 2, 4, 0, tzinfo=UTC)),
        ("2026-03-02 00:00:00.000001", datetime(2026, 3, 2, 0, 0, 0, 1, tzinfo=UTC)),
        (" 2026-03-02T00:00:00 ", datetime(2026, 3, 2, tzinfo=UTC)),
        ("20260302T000000", datetime(2026, 3, 2, tzinfo=UTC)),
        ("2026-03-02", datetime(2026, 3, 2, tzinfo=UTC)),
    ],
)
def test_timestamp_spellings_are_stored_in_utc(churn_v1, owner, text, expected):
    summary = ingest(churn_v1, _csv("prediction_id,timestamp,age", f"a,{text},1"), owner)
    assert Prediction.objects.get().timestamp == expected
    assert summary["first_timestamp"] == expected.isoformat()


def test_crlf_blank_lines_quoting_and_no_final_newline(churn_v1, owner):
    body = (
        b"prediction_id,timestamp,age,plan\r\n\r\n"
        b'a,2026-03-02T00:00:00Z,1,"x, y"\r\n\r\n'
        b'b,2026-03-02T00:00:00Z,2,"two\nlines"'
    )
    ingest(churn_v1, body, owner)
    rows = stored(churn_v1)
    assert rows["a"].features["plan"] == "x, y"
    assert rows["b"].features["plan"] == "two\nlines"


def test_a_quote_inside_an_unquoted_cell_is_kept_as_sent(churn_v1, owner):
    body = _csv("prediction_id,timestamp,plan", 'a,2026-03-02T00:00:00Z,15" screen', 'b,2026-03-02T00:00:00Z,"x ""y"""')
    ingest(churn_v1, body, owner)
    rows = stored(churn_v1)
    assert (rows["a"].features["plan"], rows["b"].features["plan"]) == ('15" screen', 'x "y"')


def test_ids_and_categories_needing_copy_escapes_are_stored_verbatim(churn_v1, owner):
    churn_v1.task_type = TaskType.MULTICLASS  # any class: a binary version takes only its two
    churn_v1.save(update_fields=["task_type"])
    body = _csv(
        "prediction_id,timestamp,plan,prediction",
        "a\\b,2026-03-02T00:00:00Z,back\\slash,c\\d",
        "a\tb,2026-03-02T00:00:00Z,tab\there,1",
        "100%,2026-03-02T00:00:00Z,50% off %s,%d",
        "ünï,2026-03-02T00:00:00Z,café ☕,🙂",
        "x'y,2026-03-02T00:00:00Z,{},[]",
        "ws,2026-03-02T00:00:00Z, ,2",
    )
    ingest(churn_v1, body, owner)
    rows = stored(churn_v1)
    assert rows["a\\b"].features["plan"] == "back\\slash" and rows["a\\b"].prediction == "c\\d"
    assert rows["a\tb"].features["plan"] == "tab\there"
    assert rows["100%"].features["plan"] == "50% off %s" and rows["100%"].prediction == "%d"
    assert rows["ünï"].features["plan"] == "café ☕" and rows["ünï"].prediction == "🙂"
    assert rows["x'y"].features["plan"] == "{}" and rows["x'y"].prediction == "[]"
    assert rows["ws"].features["plan"] == " "


def test_regression_predictions_and_unusual_feature_names(churn, owner):
    schema = [
        {"name": "x%s", "type": "numeric"},
        {"name": 'q"uote\\', "type": "numeric"},
        {"name": "kind", "type": "categorical"},
        {"name": "n"},  # no type: numeric
    ]
    version = ModelVersionFactory(model=churn, feature_schema=schema, task_type=TaskType.REGRESSION)
    body = (
        b"prediction_id,timestamp,x%s,kind,n,prediction,score\n"
        b"a,2026-03-02T00:00:00Z,1.5,k,3,2.25,\n"
        b"b,2026-03-02T00:00:00Z,,,4,,0.5\n"
        b"c,2026-03-02T00:00:00Z,1e300,z,5,-1e-300,1\n"
    )
    ingest(version, body, owner)
    rows = stored(version)
    assert rows["a"].features == {"x%s": 1.5, 'q"uote\\': None, "n": 3.0, "kind": "k"}
    assert rows["a"].prediction == 2.25 and rows["b"].prediction is None
    assert (
        rows["c"].prediction == -1e-300 and float(rows["c"].features["x%s"]) == 1e300
    )  # JSONB reads back 1e300 as an integer


def test_a_large_random_batch_is_stored_exactly(churn_v1, owner):
    rng = np.random.default_rng(3)
    n = 12_000  # more than one COPY chunk
    values = rng.normal(size=(n, 2)) * 10.0 ** rng.integers(-12, 12, size=(n, 2))
    values[rng.random((n, 2)) < 0.05] = np.nan
    plans = rng.choice(["basic", "plus", "pro", ""], n)
    lines = ["prediction_id,timestamp,age,income,plan,prediction,score"]
    expected = {}
    for i in range(n):
        age, income = (None if np.isnan(v) else float(v) for v in values[i])
        stamp = datetime.fromtimestamp(1_772_400_000 + int(rng.integers(0, 86_400 * 3)) + i / 7, tz=UTC)
        lines.append(
            f"id-{i},{stamp.isoformat()},{'' if age is None else repr(age)},"
            f"{'' if income is None else repr(income)},{plans[i]},{i % 2},0.5"
        )
        expected[f"id-{i}"] = (stamp, {"age": age, "income": income, "plan": plans[i] or None}, str(i % 2))
    summary = ingest(churn_v1, ("\n".join(lines) + "\n").encode(), owner)
    assert summary["rows"] == n and summary["hourly_windows"] > 24
    got = {
        p.prediction_id: (p.timestamp, p.features, p.prediction) for p in Prediction.objects.filter(version=churn_v1)
    }
    assert got == expected


REFUSED = {
    "quoted cell with a bad number": (
        _csv("prediction_id,timestamp,age", 'a,2026-03-02T00:00:00Z,"1,5"'),
        1,
        "features.age",
    ),
    "NaN": (
        _csv("prediction_id,timestamp,age", "a,2026-03-02T00:00:00Z,1", "b,2026-03-02T00:00:00Z,nan"),
        2,
        "features.age",
    ),
    "infinite score": (_csv("prediction_id,timestamp,score", "a,2026-03-02T00:00:00Z,-inf"), 1, "score"),
    "overflowing number": (_csv("prediction_id,timestamp,age", "a,2026-03-02T00:00:00Z,1e400"), 1, "features.age"),
    "underscores": (_csv("prediction_id,timestamp,age", "a,2026-03-02T00:00:00Z,1_000"), 1, "features.age"),
    "non-ASCII digits": (_csv("prediction_id,timestamp,age", "a,2026-03-02T00:00:00Z,١"), 1, "features.age"),
    "not a number": (_csv("prediction_id,timestamp,age", "a,2026-03-02T00:00:00Z,abc"), 1, "features.age"),
    "short row": (
        _csv("prediction_id,timestamp,age,plan", "a,2026-03-02T00:00:00Z,1,x", "b,2026-03-02T00:00:00Z,2"),
        2,
        "body",
    ),
    "long row": (_csv("prediction_id,timestamp,age", "a,2026-03-02T00:00:00Z,1,2"), 1, "body"),
    "duplicate id": (
        _csv("prediction_id,timestamp,age", "a,2026-03-02T00:00:00Z,1", "a,2026-03-02T00:00:00Z,2"),
        2,
        "prediction_id",
    ),
    "id duplicate after trimming": (
        _csv("prediction_id,timestamp,age", "a,2026-03-02T00:00:00Z,1", " a,2026-03-02T00:00:00Z,2"),
        2,
        "prediction_id",
    ),
    "empty id": (_csv("prediction_id,timestamp,age", ",2026-03-02T00:00:00Z,1"), 1, "prediction_id"),
    "id too long": (_csv("prediction_id,timestamp,age", "x" * 101 + ",2026-03-02T00:00:00Z,1"), 1, "prediction_id"),
    "missing timestamp": (_csv("prediction_id,timestamp,age", "a,,1"), 1, "timestamp"),
    "bad timestamp": (_csv("prediction_id,timestamp,age", "a,yesterday,1"), 1, "timestamp"),
    "impossible date": (_csv("prediction_id,timestamp,age", "a,2026-02-30T00:00:00,1"), 1, "timestamp"),
    "unknown column": (_csv("prediction_id,timestamp,height", "a,2026-03-02T00:00:00Z,3"), None, "height"),
    "features column": (_csv("prediction_id,timestamp,features,age", "a,2026-03-02T00:00:00Z,x,3"), None, "features"),
    "duplicate header": (_csv("prediction_id,timestamp,age,age", "a,2026-03-02T00:00:00Z,1,2"), None, "age"),
    "missing id column": (_csv("timestamp,age", "2026-03-02T00:00:00Z,3"), None, "prediction_id"),
    "blank header": (b"\nprediction_id,timestamp,age\na,2026-03-02T00:00:00Z,1\n", None, "body"),
    "header only": (b"prediction_id,timestamp,age\n", None, "body"),
    "empty": (b"", None, "body"),
    "not UTF-8": (b"prediction_id,timestamp,plan\na,2026-03-02T00:00:00Z,\xff\n", None, "body"),
    "NUL byte": (b"prediction_id,timestamp,plan\na,2026-03-02T00:00:00Z,x\x00y\n", 1, "features.plan"),
    # an unterminated quote ran to the end of the body: row b became part of row a's plan and was lost
    "unterminated quote": (
        _csv("prediction_id,timestamp,plan", 'a,2026-03-02T00:00:00Z,"basic', "b,2026-03-02T00:00:00Z,pro"),
        1,
        "body",
    ),
    "unterminated quote, last row": (
        _csv("prediction_id,timestamp,plan", "a,2026-03-02T00:00:00Z,pro", 'b,2026-03-02T00:00:00Z,"basic'),
        2,
        "body",
    ),
    # a bare quote kept as sent before it makes the count of quotes even: rows c and d were lost
    "unterminated quote after a bare one": (
        _csv(
            "prediction_id,timestamp,plan",
            'a,2026-03-02T00:00:00Z,15" screen',
            'b,2026-03-02T00:00:00Z,"basic',
            "c,2026-03-02T00:00:00Z,pro",
            "d,2026-03-02T00:00:00Z,plus",
        ),
        2,
        "body",
    ),
    "unterminated quote after a bare one, no final newline": (
        b'prediction_id,timestamp,plan\na,2026-03-02T00:00:00Z,15"\nb,2026-03-02T00:00:00Z,"basic\n'
        b"c,2026-03-02T00:00:00Z,pro",
        2,
        "body",
    ),
    "unterminated quote after a bare one, CRLF": (
        _csv(
            "prediction_id,timestamp,plan",
            'a,2026-03-02T00:00:00Z,15"',
            'b,2026-03-02T00:00:00Z,"basic',
            "c,2026-03-02T00:00:00Z,pro",
            newline="\r\n",
        ),
        2,
        "body",
    ),
    # a later bare quote ends the runaway cell: row b was read as part of row a's plan
    "unterminated quote ended by a bare one inside a cell": (
        _csv(
            "prediction_id,timestamp,plan",
            'a,2026-03-02T00:00:00Z,"basic',
            'b,2026-03-02T00:00:00Z,15" screen',
            "c,2026-03-02T00:00:00Z,pro",
        ),
        1,
        "body",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_batches_name_the_row_and_field_and_store_nothing(churn_v1, owner, case):
    body, row, field = REFUSED[case]
    with pytest.raises(BatchError) as caught:
        ingest(churn_v1, body, owner)
    assert (caught.value.row, caught.value.field) == (row, field), caught.value.messages
    assert Prediction.objects.count() == 0


def test_an_infinite_regression_prediction_is_refused(churn, owner):
    version = ModelVersionFactory(model=churn, task_type=TaskType.REGRESSION)
    with pytest.raises(BatchError) as caught:
        ingest(version, _csv("prediction_id,timestamp,prediction", "a,2026-03-02T00:00:00Z,inf"), owner)
    assert caught.value.details == {
        "row": 1,
        "field": "prediction",
        "reason": "NaN and infinity are not allowed; send null for a missing value.",
    }


def test_errors_name_the_row_and_field():
    from monitoring.services.ingest_parsing import parse_body
    from monitoring.services.ingest_validation import predictions_validate
    from registry.models import ModelVersion

    version = ModelVersion(feature_schema=[{"name": "age"}, {"name": "income"}], task_type=TaskType.BINARY)
    body = _csv("prediction_id,timestamp,age,income", "a,2026-03-02T00:00:00Z,1,2", "b,2026-03-02T00:00:00Z,3,inf")
    with pytest.raises(BatchError) as caught:
        predictions_validate(parse_body(body, "text/csv"), version=version)
    assert caught.value.details == {
        "row": 2,
        "field": "features.income",
        "reason": "NaN and infinity are not allowed; send null for a missing value.",
    }


def test_well_formed_quoted_cells_with_quotes_and_line_breaks_are_stored_row_for_row(churn_v1, owner):
    body = _csv(
        "prediction_id,timestamp,plan",
        'a,2026-03-02T00:00:00Z,"two\nlines"',
        'b,2026-03-02T00:00:00Z,"say ""hi""\r\nthen, ""bye"""',
        'c,2026-03-02T00:00:00Z,15" screen',
        '"d",2026-03-02T00:00:00Z,"""quoted"""',
        'e,2026-03-02T00:00:00Z,"ends with a break\n"',
        "f,2026-03-02T00:00:00Z,plain",
    )
    ingest(churn_v1, body, owner)
    rows = stored(churn_v1)
    assert {pid: row.features["plan"] for pid, row in rows.items()} == {
        "a": "two\nlines",
        "b": 'say "hi"\r\nthen, "bye"',
        "c": '15" screen',
        "d": '"quoted"',
        "e": "ends with a break\n",
        "f": "plain",
    }


def test_a_bill_line_lost_to_an_unterminated_quote_refuses_the_cost_csv(churn, owner):
    from monitoring.services.costs import cost_records_read

    body = (
        b"date,amount,currency,category,line_id\n"
        b'2026-11-01,1,EUR,serving,x"\n'
        b'2026-11-02,2,EUR,serving,"y\n'
        b"2026-11-03,3,EUR,serving,z\n"
    )
    with pytest.raises(BatchError) as caught:
        cost_records_read(body=body, content_type="text/csv")
    assert (caught.value.row, caught.value.field) == (2, "body")


def test_a_quoted_cell_longer_than_the_csv_modules_field_limit_is_no_error(churn_v1, owner):
    """A bare quote makes the count of quotes odd, so the strict reader checks the body: its
    default field limit (131,072 characters) is no reason to refuse a well-formed cell."""
    long = "x" * 150_000
    body = _csv(
        "prediction_id,timestamp,plan", f'a,2026-03-02T00:00:00Z,"{long}\n{long}"', 'b,2026-03-02T00:00:00Z,15"'
    )
    ingest(churn_v1, body, owner)
    rows = stored(churn_v1)
    assert (len(rows["a"].features["plan"]), rows["b"].features["plan"]) == (300_001, '15"')


@pytest.mark.parametrize(
    "other", [[], ['z,2026-03-02T00:00:00Z,"two\nlines"']], ids=["alone", "beside-a-multiline-cell"]
)
def test_a_quoted_cell_followed_by_other_text_is_refused_whatever_else_the_body_holds(churn_v1, owner, other):
    # alone it was stored as "ab"; beside a multi-line cell the same row was refused as "never closed"
    body = _csv("prediction_id,timestamp,plan", 'a,2026-03-02T00:00:00Z,"a"b', *other)
    with pytest.raises(BatchError) as caught:
        ingest(churn_v1, body, owner)
    assert (caught.value.row, caught.value.field) == (1, "body")
    assert "followed by other text" in str(caught.value.details["reason"])
    assert Prediction.objects.count() == 0
