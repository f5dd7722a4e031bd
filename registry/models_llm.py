"""LLM applications: the parts a version of an ``llm_app`` model is made of, and their content hash.

A version of an LLM application is immutable and identified by the SHA-256 of its parts in a
canonical JSON form (``llm_content_hash``): the same parts always give the same hash, and an edit
is a new version. The parts never hold request text or user data.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import models

LLM_PART_NAMES = ("prompts", "llm", "retrieval", "tools", "safety")


def llm_content_hash(parts: dict[str, Any]) -> str:
    """SHA-256 (hex) of the parts in canonical JSON: sorted keys, no whitespace, UTF-8.

    Parts absent and parts sent as ``null`` hash alike; the order of keys never matters, the
    order of list items (prompts, tools, rules) does."""
    canonical = {name: parts.get(name) for name in LLM_PART_NAMES}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class LLMAppVersion(models.Model):
    """The parts of one version of an LLM application (one-to-one with its ``ModelVersion``).

    ``provider`` and ``model_id`` repeat ``llm["provider"]`` and ``llm["model"]`` so that prices
    (per provider model) can be joined without reading JSON."""

    version = models.OneToOneField("registry.ModelVersion", on_delete=models.CASCADE, related_name="llm")
    prompts = models.JSONField(default=list, help_text='[{"name", "template", "variables": [...]}]')
    llm = models.JSONField(default=dict, help_text='{"provider", "model", "parameters": {...}}')
    retrieval = models.JSONField(
        null=True, blank=True, help_text='{"name", "version" or "content_hash", "embedding_model"}'
    )
    tools = models.JSONField(default=list, help_text='[{"name", "schema": {...JSON schema}}]')
    safety = models.JSONField(default=dict, help_text='{"rules": [...], "blocked_topics": [...]}')
    provider = models.CharField(max_length=100)
    model_id = models.CharField(max_length=200)
    content_hash = models.CharField(max_length=64, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["provider", "model_id"], name="llm_version_provider_model")]

    def __str__(self) -> str:
        return f"{self.version_id}: {self.provider}/{self.model_id} ({self.content_hash[:12]})"

    @property
    def parts(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in LLM_PART_NAMES}
