"""Parts of LLM-application versions shared by the tests (copies: tests mutate them)."""

from __future__ import annotations

import copy
from typing import Any

PARTS_V1: dict[str, Any] = {
    "prompts": [
        {
            "name": "system",
            "template": "You are a helpful support assistant for {{product}}.\nAnswer politely and briefly.",
        },
        {"name": "answer", "template": "Question: {{question}}\nContext: {{context}}"},
    ],
    "llm": {"provider": "openai", "model": "gpt-4.1-mini", "parameters": {"temperature": 0.2, "max_tokens": 512}},
    "retrieval": {"name": "help-center", "version": "2026-10", "embedding_model": "text-embedding-3-small"},
    "tools": [
        {
            "name": "lookup_order",
            "schema": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
        }
    ],
    "safety": {"rules": ["no-pii-in-answers", "refuse-legal-advice"], "blocked_topics": ["medical", "legal"]},
}


def parts(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(PARTS_V1)
    out.update(copy.deepcopy(changes))
    return out
