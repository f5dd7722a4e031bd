"""A thin client for MLflow's REST API (2.0), just what the registry sync needs.

We talk REST rather than importing the ``mlflow`` package so the portal does not
take on MLflow's dependency tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests


class MlflowUnavailable(Exception):
    """The server could not be reached or answered with an error."""


class MlflowRest:
    def __init__(self, tracking_url: str, token: str = "", timeout: float = 15.0):
        self.base = tracking_url.rstrip("/") + "/api/2.0/mlflow/"
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def _call(self, method: str, path: str, **kwargs) -> dict[str, Any]:
        try:
            response = self.session.request(method, self.base + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise MlflowUnavailable(f"{method} {path}: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise MlflowUnavailable(f"{method} {path}: HTTP {response.status_code}: {response.text[:300]}")
        return response.json() if response.content else {}

    def _paged(self, path: str, key: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page = self._call("GET", path, params={**params, **({"page_token": token} if token else {})})
            yield from page.get(key, [])
            token = page.get("next_page_token")
            if not token:
                return

    def registered_models(self, search_filter: str = "") -> list[dict[str, Any]]:
        params: dict[str, Any] = {"max_results": 1000}
        if search_filter:
            params["filter"] = search_filter
        return list(self._paged("registered-models/search", "registered_models", params))

    def model_versions(self, name: str) -> list[dict[str, Any]]:
        escaped = name.replace("'", "\\'")
        versions = self._paged("model-versions/search", "model_versions", {"filter": f"name='{escaped}'"})
        return sorted(versions, key=lambda v: int(v["version"]))

    def run(self, run_id: str) -> dict[str, Any]:
        return self._call("GET", "runs/get", params={"run_id": run_id}).get("run", {})

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._call("POST", "registered-models/alias", json={"name": name, "alias": alias, "version": str(version)})

    def delete_alias(self, name: str, alias: str) -> None:
        self._call("DELETE", "registered-models/alias", json={"name": name, "alias": alias})


def tags_dict(entity: dict[str, Any]) -> dict[str, str]:
    """MLflow returns tags as [{key, value}]; the portal compares them as a dict."""
    return {t["key"]: t.get("value", "") for t in entity.get("tags", []) or []}


def alias_version(entity: dict[str, Any], alias: str) -> str:
    for item in entity.get("aliases", []) or []:
        if item.get("alias") == alias:
            return str(item.get("version", ""))
    return ""
