"""A small typed client for the MLOps Portal REST API (v1). No Django dependency.

    from mlops_portal_client import PortalClient
    portal = PortalClient("http://127.0.0.1:8000", token="mlp_…")
    portal.register_version("churn", source_commit="abc123", training_run_id="run-7", metrics={"roc_auc": 0.91})

Every non-2xx answer raises :class:`PortalError` carrying the API's
``{"error": {"code", "message", "details"}}`` body.

Retries are urllib3's (``urllib3.util.Retry`` on the ``requests`` adapter): connection errors,
lost answers and 429/502/503/504, with exponential backoff (``retries``, ``backoff``) and the
server's ``Retry-After`` respected. Reads are retried; a POST is resent only where the portal
acknowledges an identical resend as already stored (prediction and label batches, which are
idempotent by their digest), never a promotion request or a registration.
"""

from __future__ import annotations

import io
import json
import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

DEFAULT_TIMEOUT = 30.0
RETRY_STATUSES = frozenset({429, 502, 503, 504})
RESENDABLE_METHODS = Retry.DEFAULT_ALLOWED_METHODS | {"POST"}


class PortalError(Exception):
    """The portal answered with an error (4xx/5xx) or could not be reached."""

    def __init__(self, status: int | None, code: str, message: str, details: Any = None):
        super().__init__(f"{status or 'no response'} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}

    @property
    def is_connection_error(self) -> bool:
        return self.status is None


@dataclass(frozen=True)
class Promotion:
    """A promotion request as the API returns it."""

    id: int
    status: str
    target_stage: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Promotion:
        return cls(id=int(data["id"]), status=data["status"], target_stage=data.get("target_stage", ""), raw=data)

    @property
    def is_final(self) -> bool:
        return self.status in ("applied", "rejected", "cancelled")


@dataclass(frozen=True)
class Health:
    """A model's health: ok, warning, critical or no_data, with the reasons."""

    status: str
    reasons: list[Any]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Health:
        return cls(status=data.get("status", "no_data"), reasons=list(data.get("reasons") or []), raw=data)


def _chunks(rows: Sequence[dict] | Iterable[dict], size: int) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def csv_batches(data: bytes, size: int) -> Iterator[tuple[bytes, int]]:
    """A CSV file's bytes as it is, cut into bodies of at most ``size`` records, each with the
    header line; yields (body, records). Records end at a line break outside quotes, so a
    quoted cell may hold line breaks; blank lines are left out."""
    lines = iter(data.splitlines(keepends=True))
    header = next(lines, b"")
    if not header.endswith((b"\n", b"\r")):
        header += b"\n"
    body, records, record = [header], 0, b""
    for line in lines:
        record += line
        if record.count(b'"') % 2:  # inside a quoted cell: the record goes on
            continue
        if record.strip():
            body.append(record if record.endswith((b"\n", b"\r")) else record + b"\n")
            records += 1
        record = b""
        if records >= size:
            yield b"".join(body), records
            body, records = [header], 0
    if record.strip():  # an unterminated quote: the portal names the row
        body.append(record)
        records += 1
    if records:
        yield b"".join(body), records


MISSING_TYPES = frozenset({"NAType", "NaTType"})  # pandas' pd.NA and pd.NaT, without importing pandas


def _json_ready(value: Any, field: str = "") -> Any:
    """``value`` with plain JSON types only: NaN, pd.NA, pd.NaT and None become None (a missing
    value); numpy scalars become Python numbers, timestamps ISO strings. ±infinity has no JSON
    form and the portal refuses it: a ValueError naming ``field``."""
    if isinstance(value, dict):
        return {key: _json_ready(item, f"{field}.{key}" if field else str(key)) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item, f"{field}[{i}]") for i, item in enumerate(value)]
    if value is None or type(value).__name__ in MISSING_TYPES:
        return None
    if isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise ValueError(f"field '{field}': infinity cannot be sent (use None for a missing value).")
        return float(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # a numpy scalar (np.int64, np.float32, np.bool_, np.datetime64)
        return _json_ready(value.item(), field)
    return value


def _json_rows(rows: list[dict], first: int) -> list[dict]:
    """A batch ready for JSON; an error names the row's index in what the caller passed."""
    ready = []
    for index, row in enumerate(rows, start=first):
        try:
            ready.append(_json_ready(row))
        except ValueError as exc:
            raise ValueError(f"rows[{index}], {exc}") from None
    return ready


def _retry(retries: int, backoff: float, methods: frozenset[str]) -> Retry:
    return Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=methods,
        respect_retry_after_header=True,
        raise_on_status=False,  # the last answer becomes a PortalError with the API's message
    )


def _mounted(session: requests.Session, retry: Retry) -> requests.Session:
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class PortalClient:
    """Talks to one portal with one API token (scopes decide what it may do)."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 4,
        backoff: float = 0.5,
        session: requests.Session | None = None,
    ):
        self.url = (url or os.environ.get("MLOPS_PORTAL_URL") or "http://127.0.0.1:8000").rstrip("/")
        token = token or os.environ.get("MLOPS_PORTAL_TOKEN")
        if not token:
            raise ValueError("An API token is required (argument or MLOPS_PORTAL_TOKEN).")
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.session = _mounted(session or requests.Session(), _retry(retries, backoff, Retry.DEFAULT_ALLOWED_METHODS))
        self.session.headers.update(headers)
        # Only for requests the portal acknowledges when resent identically (ingestion batches).
        self.resend_session = _mounted(requests.Session(), _retry(retries, backoff, RESENDABLE_METHODS))
        self.resend_session.headers.update(headers)

    # -- transport -------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
        params: dict | None = None,
        resend_safe: bool = False,
    ) -> Any:
        """One API call; ``resend_safe`` lets a POST be resent after a lost answer (only for
        endpoints that acknowledge an identical resend as already stored)."""
        url = f"{self.url}/api/v1/{path.lstrip('/')}"
        headers = {}
        body = data
        if json_body is not None:
            body = json.dumps(_json_ready(json_body), allow_nan=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        elif content_type:
            headers["Content-Type"] = content_type
        session = self.resend_session if resend_safe else self.session
        try:
            response = session.request(method, url, data=body, headers=headers, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise PortalError(None, "connection_error", f"{method} {url}: {exc}") from exc
        if response.status_code < 400:
            return response.json() if response.content else None
        raise self._error(response)

    @staticmethod
    def _error(response: requests.Response) -> PortalError:
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        return PortalError(
            response.status_code,
            error.get("code", "http_error"),
            error.get("message") or response.text[:300] or response.reason,
            error.get("details"),
        )

    # -- inventory -------------------------------------------------------
    def get_model(self, name: str) -> dict[str, Any]:
        return self.request("GET", f"models/{name}/")

    def register_model(self, name: str, **fields: Any) -> dict[str, Any]:
        """Register a model (fields: team, description, risk_tier, intended_use, limitations, …)."""
        return self.request("POST", "models/", json_body={"name": name, **fields})

    def ensure_model(self, name: str, **fields: Any) -> dict[str, Any]:
        """The model, registering it first if it does not exist."""
        try:
            return self.get_model(name)
        except PortalError as exc:
            if exc.status != 404:
                raise
        return self.register_model(name, **fields)

    def register_version(self, model: str, **fields: Any) -> dict[str, Any]:
        """Register a version with its lineage (source_commit, training_run_id, training_data_ref,
        training_data_hash), metrics, feature_schema, task_type, classes and positive_class
        (classification, optional), artifact_uri; for an LLM
        application its parts instead (prompts, llm, retrieval, tools, safety): the answer
        carries their ``content_hash``."""
        return self.request("POST", f"models/{model}/versions/", json_body=fields)

    def get_version(self, model: str, version: int) -> dict[str, Any]:
        return self.request("GET", f"models/{model}/versions/{version}/")

    def version_diff(self, model: str, version: int, against: int | None = None) -> dict[str, Any]:
        """An LLM application's version compared with ``against`` (default: production)."""
        params = {"against": against} if against is not None else None
        return self.request("GET", f"models/{model}/versions/{version}/diff/", params=params)

    # -- monitoring ------------------------------------------------------
    def upload_reference(self, model: str, version: int, frame: Any, *, fmt: str = "parquet") -> Any:
        """Upload reference data from a pandas DataFrame as Parquet (default) or CSV."""
        if fmt == "parquet":
            buffer = io.BytesIO()
            frame.to_parquet(buffer, index=False)
            return self.request(
                "POST",
                f"models/{model}/versions/{version}/reference/",
                data=buffer.getvalue(),
                content_type="application/vnd.apache.parquet",
            )
        if fmt == "csv":
            return self.request(
                "POST",
                f"models/{model}/versions/{version}/reference/",
                data=frame.to_csv(index=False).encode("utf-8"),
                content_type="text/csv",
            )
        raise ValueError("fmt must be 'parquet' or 'csv'")

    def log_predictions(self, model: str, version: int, rows: Iterable[dict], *, batch_size: int = 5000) -> int:
        """Send predictions ({prediction_id, timestamp, features, prediction, score}) in batches; returns rows sent.

        Missing values (None, NaN, pd.NA, pd.NaT) are sent as null; an infinity is a ValueError
        naming the row's index and field, raised before its batch is sent."""
        return self._send_rows(f"models/{model}/versions/{version}/predictions/", rows, batch_size)

    def log_predictions_csv(self, model: str, version: int, data: bytes, *, batch_size: int = 5000) -> int:
        """Send a CSV file's bytes as ``text/csv`` (features as flat columns, read with the
        version's feature schema by the portal) in batches of ``batch_size`` records; returns rows sent."""
        return self._send_csv(f"models/{model}/versions/{version}/predictions/", data, batch_size)

    def log_labels_csv(self, model: str, data: bytes, *, batch_size: int = 5000) -> int:
        """Send a CSV file of labels (prediction_id,label) as ``text/csv``; returns rows sent."""
        return self._send_csv(f"models/{model}/ground-truth/", data, batch_size)

    def _send_csv(self, path: str, data: bytes, batch_size: int) -> int:
        sent = 0
        for body, records in csv_batches(data, batch_size):
            self.request("POST", path, data=body, content_type="text/csv", resend_safe=True)
            sent += records
        return sent

    def log_labels(self, model: str, rows: Iterable[dict], *, batch_size: int = 5000) -> int:
        """Send ground-truth labels ({prediction_id, label}) in batches; returns rows sent."""
        return self._send_rows(f"models/{model}/ground-truth/", rows, batch_size)

    def _send_rows(self, path: str, rows: Iterable[dict], batch_size: int) -> int:
        sent = 0
        for batch in _chunks(rows, batch_size):
            self.request("POST", path, json_body=_json_rows(batch, sent), resend_safe=True)
            sent += len(batch)
        return sent

    def health(self, model: str) -> Health:
        return Health.from_json(self.request("GET", f"models/{model}/health/"))

    # -- promotions ------------------------------------------------------
    def request_promotion(self, model: str, version: int, *, to: str = "production", reason: str) -> Promotion:
        body = {"model": model, "version": version, "target_stage": to, "justification": reason}
        return Promotion.from_json(self.request("POST", "promotions/", json_body=body))

    def get_promotion(self, promotion_id: int) -> Promotion:
        return Promotion.from_json(self.request("GET", f"promotions/{promotion_id}/"))

    def wait_for_promotion(self, promotion_id: int, *, timeout: float = 600, poll: float = 5) -> Promotion:
        """Poll until the request is applied, rejected or cancelled, or the timeout passes."""
        deadline = time.monotonic() + timeout
        promotion = self.get_promotion(promotion_id)
        while not promotion.is_final and time.monotonic() < deadline:
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
            promotion = self.get_promotion(promotion_id)
        return promotion

    def rollback(self, model: str, *, reason: str) -> dict[str, Any]:
        return self.request("POST", f"models/{model}/rollback/", json_body={"reason": reason})
