"""The cyclic collector is paused around each ingestion batch and comes back afterwards, also
after an error, with nested and overlapping pauses, and stays off if it was off."""

from __future__ import annotations

import contextlib
import gc
import threading
import weakref

import pytest

from mlops_portal.gc_pause import gc_paused
from monitoring.services import ingestion, llm_requests
from monitoring.services.ingest_parsing import BatchError
from registry.services.audit import CLI
from tests.monitoring.helpers import as_json, prediction_records
from tests.monitoring.llm_helpers import llm_model, llm_version, request_record


@pytest.fixture
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_the_collector_is_paused_in_the_block_and_back_after_it_also_after_an_error(collector_on):
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # nested
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off(collector_on):
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


@contextlib.contextmanager
def _paused_on_another_thread():
    """Another thread's batch holds a pause for the block; the block's end lets it finish."""
    inside, release = threading.Event(), threading.Event()

    def other():
        with gc_paused():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait(5)
    try:
        yield
    finally:
        release.set()
        thread.join(5)


def test_overlapping_pauses_on_two_threads_end_with_the_last(collector_on):
    with _paused_on_another_thread():
        with gc_paused():
            pass
        assert not gc.isenabled()  # the other thread's batch is still running
    assert gc.isenabled()


def test_pauses_that_keep_overlapping_still_collect_once_the_collector_was_off_too_long(collector_on, monkeypatch):
    from mlops_portal import gc_pause

    class Cycle:
        pass

    monkeypatch.setattr(gc_pause, "MAX_PAUSE", 0.0)
    with _paused_on_another_thread():
        with gc_paused():
            cycle = Cycle()
            cycle.me = cycle
            gone = weakref.ref(cycle)
            del cycle
        assert gone() is None  # collected when this pause ended, though the other still runs
        assert not gc.isenabled()
    assert gc.isenabled()


def _parse_sees_the_collector(monkeypatch, module, name: str = "parse_body") -> list[bool]:
    """Records, at each call of ``module.<name>`` (a body reader), whether the collector runs."""
    seen = []
    reader = getattr(module, name)

    def parse(*args):
        seen.append(gc.isenabled())
        return reader(*args)

    monkeypatch.setattr(module, name, parse)
    return seen


@pytest.mark.django_db
def test_predictions_and_labels_are_ingested_with_the_collector_paused(collector_on, monkeypatch, churn_v1, owner):
    seen = _parse_sees_the_collector(monkeypatch, ingestion, "predictions_read")
    seen_labels = _parse_sees_the_collector(monkeypatch, ingestion)
    records = prediction_records(20)
    ingestion.predictions_ingest(
        version=churn_v1, body=as_json(records), content_type="application/json", actor=owner, context=CLI
    )
    labels = [{"prediction_id": r["prediction_id"], "label": 1} for r in records]
    ingestion.labels_ingest(
        model=churn_v1.model, body=as_json(labels), content_type="application/json", actor=owner, context=CLI
    )
    with pytest.raises(BatchError):
        ingestion.predictions_ingest(
            version=churn_v1, body=b"[1]", content_type="application/json", actor=owner, context=CLI
        )
    assert seen == [False, False] and seen_labels == [False] and gc.isenabled()


@pytest.mark.django_db
def test_llm_requests_are_ingested_with_the_collector_paused(collector_on, monkeypatch, owner, team):
    seen = _parse_sees_the_collector(monkeypatch, llm_requests)
    version = llm_version(llm_model(owner=owner, team=team))
    llm_requests.llm_requests_ingest(
        version=version,
        body=as_json([request_record(i) for i in range(3)]),
        content_type="application/json",
        actor=owner,
        context=CLI,
    )
    assert seen == [False] and gc.isenabled()
