"""A thin client for MLflow's REST API (2.0), just what the registry sync needs.

We talk REST rather than importing the ``mlflow`` package so the portal does not
take on MLflow's dependency tree. Every call goes through ``mlops_portal.outbound``: the
tracking URL meets the outbound-URL policy on each request (an MLflow server on the private
network must be allow-listed in ``OUTBOUND_ALLOWED_HOSTS``), and redirects are not followed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from mlops_portal import outbound

MAX_PAGES = 10_000  # of up to 1,000 entries each


class MlflowUnavailable(Exception):
    """The server could not be reached or answered with an error."""


class MlflowRest:
    def __init__(self, tracking_url: str, token: str = "", timeout: float = 15.0):
        self.base = tracking_url.rstrip("/") + "/api/2.0/mlflow/"
        self.headers = {"Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def _call(self, method: str, path: str, *, params: dict | None = None, json_body: Any = None) -> dict[str, Any]:
        url = self.base + path + (f"?{urlencode(params)}" if params else "")
        headers = dict(self.headers)
        body = None
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            answer = outbound.request(method, url, body=body, headers=headers, timeout=self.timeout, read_body=True)
        except outbound.OutboundError as exc:
            raise MlflowUnavailable(f"{method} {path}: {exc.error_class}: {exc}") from exc
        if answer.status >= 300:
            # the status and error class only: an answer may echo what it should not
            raise MlflowUnavailable(
                f"{method} {path}: HTTP {answer.status} ({outbound.error_class_for_status(answer.status)})"
            )
        try:
            return answer.json()
        except ValueError as exc:
            raise MlflowUnavailable(f"{method} {path}: the answer is not JSON") from exc

    def _paged(self, path: str, key: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every page of a listing. A token the server already sent, or more than ``MAX_PAGES``
        pages, stops it with an error: a looping server must not keep the sync paging forever."""
        token, seen = None, set()
        for _ in range(MAX_PAGES):
            page = self._call("GET", path, params={**params, **({"page_token": token} if token else {})})
            yield from page.get(key, [])
            token = page.get("next_page_token")
            if not token:
                return
            if token in seen:
                raise MlflowUnavailable(f"GET {path}: the server sent the same next page token twice (a loop)")
            seen.add(token)
        raise MlflowUnavailable(f"GET {path}: more than {MAX_PAGES} pages")

    def registered_models(self, search_filter: str = "") -> list[dict[str, Any]]:
        params: dict[str, Any] = {"max_results": 1000}
        if search_filter:
            params["filter"] = search_filter
        return list(self._paged("registered-models/search", "registered_models", params))

    def prompts(self, search_filter: str = "") -> list[dict[str, Any]]:
        """The prompt registry's prompts (registered models tagged ``mlflow.prompt.is_prompt``;
        MLflow 3 leaves them out of a model search that does not ask for them)."""
        condition = "tags.`mlflow.prompt.is_prompt` = 'true'"
        params: dict[str, Any] = {
            "max_results": 1000,
            "filter": f"{condition} AND {search_filter}" if search_filter else condition,
        }
        return list(self._paged("registered-models/search", "registered_models", params))

    def prompt_versions(self, name: str) -> list[dict[str, Any]]:
        """A prompt's versions (MLflow 3 leaves them out of a version search that does not ask)."""
        escaped = name.replace("'", "\\'")
        condition = f"name='{escaped}' AND tags.`mlflow.prompt.is_prompt` = 'true'"
        versions = self._paged("model-versions/search", "model_versions", {"filter": condition})
        return sorted(versions, key=lambda v: int(v["version"]))

    def model_versions(self, name: str) -> list[dict[str, Any]]:
        escaped = name.replace("'", "\\'")
        versions = self._paged("model-versions/search", "model_versions", {"filter": f"name='{escaped}'"})
        return sorted(versions, key=lambda v: int(v["version"]))

    def run(self, run_id: str) -> dict[str, Any]:
        return self._call("GET", "runs/get", params={"run_id": run_id}).get("run", {})

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._call("POST", "registered-models/alias", json_body={"name": name, "alias": alias, "version": str(version)})

    def delete_alias(self, name: str, alias: str) -> None:
        self._call("DELETE", "registered-models/alias", json_body={"name": name, "alias": alias})


def tags_dict(entity: dict[str, Any]) -> dict[str, str]:
    """MLflow returns tags as [{key, value}]; the portal compares them as a dict."""
    return {t["key"]: t.get("value", "") for t in entity.get("tags", []) or []}


def alias_version(entity: dict[str, Any], alias: str) -> str:
    for item in entity.get("aliases", []) or []:
        if item.get("alias") == alias:
            return str(item.get("version", ""))
    return ""
