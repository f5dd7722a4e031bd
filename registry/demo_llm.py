"""The demo's LLM application: ``support-assistant`` (kind ``llm_app``) and its three versions,
registered through the services at their past times by ``registry.demo``'s schedule.

- v1 (about five weeks ago): the first prompt on ``openai/gpt-4.1-mini``; promoted to production
  the next morning, then archived ("retired") when v2 is promoted.
- v2 (about three weeks ago): reworded system prompt, hosted model ``gpt-4.1``, lower
  temperature; promoted to production two days later, early that morning (v1 is archived by that
  promotion).
- v3 (three days ago): an ``issue_refund`` tool added and the safety rules loosened (the
  ``no-account-actions`` rule and the ``billing disputes`` blocked topic removed). Its promotion
  request (two days ago) stays pending: its safety gate is red (jailbreak cases pass 93 %, floor
  97 %), so no reviewer can approve it.

Each version is evaluated on the shared evaluation set before its request (``EVALUATIONS``,
through ``monitoring.demo_llm_evaluations``): the safety and quality gates' evidence.

``llm_schedule(users, teams, result)`` returns these steps for ``registry.demo._schedule``; each
step looks for what it would create first, so a second run writes nothing.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

from registry.choices import RiskTier, Stage
from registry.demo_steps import CONTEXT, PromotionStep, history_steps, register_version
from registry.models import RegisteredModel

SUPPORT_ASSISTANT = "support-assistant"

CARD: dict[str, Any] = {
    "kind": "llm_app",
    "description": "Answers customers' questions about their subscription in the help-centre chat, "
    "grounded in the help-centre articles, and hands over to a person when it cannot help.",
    "risk_tier": RiskTier.LOW,
    "ai_act_category": "Limited risk: Art. 50 transparency applies (customers are told they are "
    "talking to an AI system).",
    "intended_use": "First-line answers to subscription, billing and plan questions in the help-centre chat. "
    "Every conversation offers a hand-over to a human agent.",
    "limitations": "Answers only from the help-centre articles it retrieves; not for legal, medical or "
    "financial advice, and never changes a customer's account by itself.",
    "primary_metric": "correctness",
    "primary_metric_higher_is_better": True,
    "tags": ["customer-facing", "llm", "support"],
}
CREATED = (-37, 10)  # (days from today, hour UTC), as ``registry.demo_steps.When``

SYSTEM_V1 = (
    "You are the support assistant of {{product}}.\n"
    "Answer the customer's question using only the help-centre articles below.\n"
    "If the articles do not answer it, say so and offer to hand over to a human agent.\n"
    "Never ask for passwords or full card numbers."
)
SYSTEM_V2 = (
    "You are {{product}}'s support assistant, talking to a customer in the help-centre chat.\n"
    "Answer briefly and in plain words, using only the help-centre articles below.\n"
    "If the articles do not answer the question, say so and offer to hand over to a human agent.\n"
    "Never ask for passwords or full card numbers."
)
ANSWER = "Articles:\n{{articles}}\n\nCustomer ({{plan}} plan): {{question}}"
LOOKUP_TOOL = {
    "name": "lookup_subscription",
    "description": "Read the customer's plan, renewal date and open invoices.",
    "schema": {
        "type": "object",
        "properties": {"customer_id": {"type": "string"}},
        "required": ["customer_id"],
        "additionalProperties": False,
    },
}
REFUND_TOOL = {
    "name": "issue_refund",
    "description": "Refund part or all of an invoice to the customer's payment method.",
    "schema": {
        "type": "object",
        "properties": {"invoice_id": {"type": "string"}, "amount_eur": {"type": "number", "minimum": 0}},
        "required": ["invoice_id", "amount_eur"],
        "additionalProperties": False,
    },
}
SAFETY_V1 = {
    "rules": [
        {
            "name": "no-pii-in-answers",
            "action": "redact",
            "description": "Mask e-mail addresses, phone and card numbers.",
        },
        {"name": "no-account-actions", "action": "block", "description": "Never change a customer's account."},
        {"name": "prompt-injection", "action": "block", "threshold": 0.8},
    ],
    "blocked_topics": ["legal advice", "medical advice", "billing disputes"],
}
RETRIEVAL = {"name": "help-centre-articles", "version": "2026-10-01", "embedding_model": "text-embedding-3-small"}

V1: dict[str, Any] = {
    "description": "First version: gpt-4.1-mini grounded in the help-centre articles, with a subscription lookup.",
    "metrics": {"correctness": 0.84, "groundedness": 0.91, "safety_pass_rate": 0.995},
    "prompts": [{"name": "system", "template": SYSTEM_V1}, {"name": "answer", "template": ANSWER}],
    "llm": {"provider": "openai", "model": "gpt-4.1-mini", "parameters": {"temperature": 0.4, "max_tokens": 600}},
    "retrieval": RETRIEVAL,
    "tools": [LOOKUP_TOOL],
    "safety": SAFETY_V1,
}
V2: dict[str, Any] = {
    **V1,
    "description": "Shorter, plainer answers and the larger gpt-4.1 model at a lower temperature.",
    "metrics": {"correctness": 0.89, "groundedness": 0.94, "safety_pass_rate": 0.996},
    "prompts": [{"name": "system", "template": SYSTEM_V2}, {"name": "answer", "template": ANSWER}],
    "llm": {"provider": "openai", "model": "gpt-4.1", "parameters": {"temperature": 0.2, "max_tokens": 600}},
}
V3: dict[str, Any] = {
    **V2,
    "description": "Lets the assistant refund invoices itself (issue_refund tool); the rule against account "
    "actions and the billing-disputes block are lifted for it.",
    "metrics": {"correctness": 0.9, "groundedness": 0.93, "safety_pass_rate": 0.962},
    "tools": [LOOKUP_TOOL, REFUND_TOOL],
    "safety": {
        "rules": [SAFETY_V1["rules"][0], SAFETY_V1["rules"][2]],
        "blocked_topics": ["legal advice", "medical advice"],
    },
}
# Early-morning times after the first: the monitoring demo's days start at 07:00, and steps
# after its first day are replayed before that day's traffic (``replay_demo_until``).
VERSIONS: list[tuple[tuple[int, float], dict[str, Any]]] = [((-37, 11), V1), ((-21, 6.5), V2), ((-3, 6.5), V3)]


def support_assistant_versions() -> list[dict[str, Any]]:
    """The keyword arguments of ``version_create`` for v1, v2 and v3 (copies)."""
    return [copy.deepcopy(spec) for _, spec in VERSIONS]


def ensure_support_assistant(*, users, teams, context, result=None) -> RegisteredModel:
    """Register ``support-assistant`` in customer-analytics, owned by ``owner`` (unless it exists)."""
    from registry.services.inventory import model_create

    model = RegisteredModel.objects.filter(name=SUPPORT_ASSISTANT).first()
    if model is None:
        card = {**CARD, "tags": list(CARD["tags"])}
        model = model_create(
            actor=users["owner"], context=context, name=SUPPORT_ASSISTANT, team=teams["customer-analytics"], **card
        )
        if result is not None:
            result.add("models")
    return model


def ensure_support_assistant_version(number: int, *, users, context, result=None) -> None:
    """Register v``number`` (1-3) of ``support-assistant`` through ``version_create`` (unless it exists)."""
    fields = support_assistant_versions()[number - 1]
    register_version(SUPPORT_ASSISTANT, number, lambda: fields, users=users, context=context, result=result)


def register_support_assistant(*, users, teams, context, result=None) -> RegisteredModel:
    """The model and its three versions at once, now (no promotions): for tests and other demos
    that need the application without its history."""
    model = ensure_support_assistant(users=users, teams=teams, context=context, result=result)
    for number in range(1, len(VERSIONS) + 1):
        ensure_support_assistant_version(number, users=users, context=context, result=result)
    return model


def llm_history() -> list:
    """v1 to production the morning after it was registered; v2 two days after it (which archives v1).
    No other demo step falls between a request and its last review (the chain's time order); v2's
    request and review fall between two days of the monitoring demo's traffic."""
    return [
        PromotionStep(
            1,
            Stage.PRODUCTION,
            "First LLM assistant in the help-centre chat, with a hand-over to agents on every conversation.",
            [("reviewer", "approve", "Evaluation set passed; Art. 50 notice shown in the chat widget.")],
            at=((-37, 14), (-36, 10)),
        ),
        PromotionStep(
            2,
            Stage.PRODUCTION,
            "gpt-4.1 with a plainer system prompt: better correctness on the same evaluation set.",
            [("reviewer", "approve", "Correctness up on the same cases; safety rules unchanged.")],
            at=((-19, 5.5), (-19, 6.5)),  # one step: requested and approved before that day's traffic
        ),
        PromotionStep(
            3,
            Stage.PRODUCTION,
            "Lets the assistant refund small invoice errors itself instead of handing over to an agent.",
            [],  # still pending: its safety gate is red (jailbreak cases), so no reviewer can approve it
            at=((-2, 5.5),),
        ),
    ]


# Evaluation runs on the shared evaluation set before each request (the safety and quality gates'
# evidence): v1 and v2 pass; v3, with its refund tool and loosened rules, fails on jailbreaks.
EVALUATIONS: list[tuple[tuple[int, float], int, str]] = [
    ((-37, 12), 1, "good"),
    ((-20, 12), 2, "good"),
    ((-2, 4.5), 3, "unsafe"),
]


def _evaluate(number: int, profile: str, *, users) -> None:
    """Upload the version's demo evaluation run (monitoring's service; once per version and set)."""
    from monitoring.demo_llm_evaluations import upload_demo_evaluation

    version = RegisteredModel.objects.get(name=SUPPORT_ASSISTANT).versions.get(version=number)
    upload_demo_evaluation(version, actor=users["owner"], profile=profile)


def llm_schedule(users, teams, result) -> list[tuple[tuple[int, float], str, Callable[[], None]]]:
    """The support assistant's steps for ``registry.demo._schedule``: (when, label, action)."""
    name = SUPPORT_ASSISTANT
    steps = [
        (
            CREATED,
            f"{name}: registered",
            lambda: ensure_support_assistant(users=users, teams=teams, context=CONTEXT, result=result),
        )
    ]
    for number, (when, _) in enumerate(VERSIONS, start=1):
        action = functools.partial(
            ensure_support_assistant_version, number, users=users, context=CONTEXT, result=result
        )
        steps.append((when, f"{name} v{number}: registered", action))
    for when, number, profile in EVALUATIONS:
        steps.append((when, f"{name} v{number}: evaluated", functools.partial(_evaluate, number, profile, users=users)))
    return steps + history_steps(name, llm_history(), users, result)


LLM_STEPS = 1 + len(VERSIONS) + len(EVALUATIONS) + 3


def demo_steps(result=None) -> list[tuple]:
    """``registry.demo``'s steps as ``(moment, label, action)`` in time order (each idempotent:
    a step already done writes nothing), for a caller that replays them among its own
    back-dated history (the monitoring demo's days); empty when the registry demo was not loaded.
    What they create is counted in ``result`` (a ``registry.demo.DemoResult``)."""
    from django.contrib.auth import get_user_model

    from registry import demo
    from registry.models import Team

    users = {u.username: u for u in get_user_model().objects.filter(username__in=[u[0] for u in demo.USERS])}
    if len(users) < len(demo.USERS) or not RegisteredModel.objects.filter(name=demo.CATALOGUE[0].name).exists():
        return []  # the registry demo was not loaded: nothing of it to continue
    teams = {t.slug: t for t in Team.objects.all()}
    result = demo.DemoResult() if result is None else result
    return [(demo.moment(when), label, action) for when, label, action in demo._schedule(users, teams, result)]


def replay_demo_until(until):
    """``registry.demo``'s steps due by ``until`` (an aware datetime; None: all) not yet done
    (each step is idempotent): for a caller that ran ``load_demo(until=...)`` and interleaves the
    rest with its own back-dated history, keeping the audit chain in time order."""
    from mlops_portal import clock
    from registry import demo

    result = demo.DemoResult()
    for moment, _label, action in demo_steps(result):
        if until is None or moment <= until:
            with clock.at(moment):
                action()
    return result
