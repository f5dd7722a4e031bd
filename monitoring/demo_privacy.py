"""The privacy part of ``manage.py load_demo``: data subjects, retention, a legal hold and an
erasure request, on their days, through the services (audit source ``cli``).

The churn and credit-approval pipelines send each row's customer number as its ``subject_id``
(the portal stores only its keyed hash): ``customers`` draws each day's customers from one
customer base, so the same person appears in several batches and in both models.

* Before the first scoring run, Priya Patel, the privacy officer, sets customer-churn's raw
  retention to 400 days (a year of scoring history to retrain on, and a month for the labels)
  and support-assistant's to 21 days: what customers type in the chat is kept three weeks, its
  aggregates (latency, tokens, cost, feedback) as long as the model (``RAW_DAYS``). Every other
  model keeps its risk tier's default. With it she records, for every model, what the records
  of processing need from her (GDPR Art. 30(1)(c)-(e), ``ART30``): whose data it processes,
  who receives it, and the one transfer outside the EEA: support-assistant's chat messages go to
  its hosted model's provider, OpenAI, in the United States.
* Every night at 02:30 the purge runs (beat's schedule; inline with ``sync``, on the nights
  before the load): from a week before the end, each night removes support-assistant's
  requests of the day that turned 21 days old, and writes its receipt in the audit chain.
* Ten days before the end, a declined applicant's complaint reaches the financial ombudsman:
  she puts credit-approval under a legal hold, citing the legal-claims exemption
  (``HOLD``); it blocks both the nightly purge and erasure for that model.
* Yesterday morning customer ``REQUESTER`` asked to be forgotten. Their rows are in two churn
  batches and one credit-approval batch, with the labels that followed each: the request erases
  churn's and answers "held" for credit-approval, with the hold's reason and article.

Idempotent: each step is skipped when what it makes exists (the model's records of processing,
the hold, a request for the subject).
"""

from __future__ import annotations

import functools
from datetime import datetime, time, timedelta

import numpy as np
from django.contrib.auth import get_user_model
from django.utils import timezone

from monitoring.models import ErasureRequest, RetentionPolicy
from monitoring.services.erasure import erasure_request_create
from monitoring.services.retention import retention_policy_update, retention_purge
from monitoring.services.subjects import subject_hash
from registry import demo as registry_demo
from registry.demo_llm import SUPPORT_ASSISTANT
from registry.models import RegisteredModel

PRIVACY_OFFICER = "privacy"
CUSTOMERS = 6000  # the customer base both pipelines score: CUST-00000 … CUST-05999
SEEDS = {"churn": 60_000, "credit": 61_000}
REQUESTER = "CUST-07342"  # a customer outside the base drawn from, so found only on its days
REQUESTER_DAYS = {"churn": (3, 17), "credit": (20,)}  # row 1 of these days' batches
RAW_DAYS = {registry_demo.CHURN: 400, SUPPORT_ASSISTANT: 21}
PURGE_AT = time(2, 30)  # UTC, as beat's nightly schedule (monitoring migration 0016)
CREDIT = "credit-approval"
HOLD = {
    "legal_hold": True,
    "legal_hold_reason": (
        "A declined applicant's complaint is before the financial ombudsman (case FO-2026-0412): "
        "the scoring and decision logs are kept as evidence until the case closes."
    ),
    "legal_hold_article": "GDPR Art. 17(3)(e)",
}
NONE = "none"
# Art. 30(1)(c)-(e) per demo model, in the order she records them
ART30 = {
    registry_demo.CHURN: {
        "data_subject_categories": "Consumer customers of the subscription service (active subscribers).",
        "recipients": "The customer-care team, which makes the retention offers; the customer-analytics team "
        "that owns the model. No one outside the company.",
        "third_country_transfers": NONE,
    },
    SUPPORT_ASSISTANT: {
        "data_subject_categories": "Customers of the subscription service who use the help-centre chat.",
        "recipients": "OpenAI, as processor: the hosted model that drafts the answers; the customer-care agents "
        "a conversation is handed over to.",
        "third_country_transfers": "United States: each chat message is sent to OpenAI's hosted model (gpt-4.1), "
        "under the standard contractual clauses (GDPR Art. 46(2)(c)) of the provider's data processing addendum.",
    },
    CREDIT: {
        "data_subject_categories": "Applicants for consumer loans up to 25,000 EUR.",
        "recipients": "The underwriters who review referrals and refusals; the applicant, for their own decision; "
        "the financial ombudsman, for a complaint before it.",
        "third_country_transfers": NONE,
    },
    registry_demo.DIABETES: {
        "data_subject_categories": "Patients with diabetes in follow-up care.",
        "recipients": "The clinicians treating the patients scored.",
        "third_country_transfers": NONE,
    },
    "breast-cancer-screening": {
        "data_subject_categories": "Patients whose fine-needle aspirate samples the pathology lab reads.",
        "recipients": "The pathologists of the reading queue.",
        "third_country_transfers": NONE,
    },
    "wine-cultivar": {
        "data_subject_categories": "None: chemical analyses of wine lots hold no personal data.",
        "recipients": "The quality lab.",
        "third_country_transfers": NONE,
    },
}
HOLD_DAY = 10  # days before the end
ERASURE_DAY = 1


def customers(pipeline: str, day: int, n: int) -> list[str]:
    """The customer numbers of day ``day``'s ``n`` rows of ``pipeline`` (``churn`` or
    ``credit``): distinct within the batch; ``REQUESTER`` in row 1 on its days (row 0's
    prediction id is what tells the loader a batch is in, so it is never erased)."""
    drawn = np.random.default_rng(SEEDS[pipeline] + day).choice(CUSTOMERS, size=n, replace=False)
    out = [f"CUST-{i:05d}" for i in drawn.tolist()]
    if day in REQUESTER_DAYS[pipeline] and n > 1:
        out[1] = REQUESTER
    return out


def _officer():
    return get_user_model().objects.filter(username=PRIVACY_OFFICER).first()


def _policy(name: str, changes: dict, created: dict[str, int], *, done) -> None:
    model, officer = RegisteredModel.objects.filter(name=name).first(), _officer()
    if model is None or officer is None:
        return  # not the demo's inventory
    policy = RetentionPolicy.objects.filter(model=model).first()
    if policy is not None and done(policy):
        return
    retention_policy_update(model=model, actor=officer, context=registry_demo.CONTEXT, changes=changes)
    created["retention decisions"] = created.get("retention decisions", 0) + 1


def _recorded(policy: RetentionPolicy) -> bool:
    return bool(policy.data_subject_categories)


def _raw_days(name: str) -> dict[str, int]:
    return {"raw_days": RAW_DAYS[name]} if name in RAW_DAYS else {}


def _erasure(created: dict[str, int]) -> None:
    officer = _officer()
    if officer is None or ErasureRequest.objects.filter(subject_hash=subject_hash(REQUESTER)).exists():
        return
    erasure_request_create(subject_id=REQUESTER, actor=officer, context=registry_demo.CONTEXT)
    created["erasure requests"] = created.get("erasure requests", 0) + 1


def _purge(created: dict[str, int]) -> None:
    receipts = retention_purge()  # as of the step's moment (``clock.at``)
    if receipts:
        created["purge receipts"] = created.get("purge receipts", 0) + len(receipts)


def privacy_steps(*, first_day: datetime, days: int, created: dict[str, int], nightly: bool) -> list[tuple]:
    """``(moment, action)`` for the monitoring demo's timeline (see the module docstring);
    ``first_day``: the first scoring run (06:00), ``days``: how many days the demo runs;
    ``nightly``: the nightly purges too (with ``sync``: without it the worker computes the
    windows later, and must find their rows; beat purges on its next night)."""
    last = first_day + timedelta(days=days - 1)
    steps: list[tuple] = [
        (
            first_day - timedelta(minutes=10),
            functools.partial(_policy, name, {**entries, **_raw_days(name)}, created, done=_recorded),
        )
        for name, entries in ART30.items()
    ]
    steps.append(
        (
            last - timedelta(days=HOLD_DAY - 1, hours=-4),  # 10:00
            functools.partial(_policy, CREDIT, HOLD, created, done=lambda p: p.legal_hold),
        )
    )
    steps.append((last - timedelta(days=ERASURE_DAY - 1, hours=-4), functools.partial(_erasure, created)))
    if nightly:
        nights = (
            datetime.combine(first_day.date() + timedelta(days=n), PURGE_AT, first_day.tzinfo) for n in range(days + 1)
        )
        steps += [(night, functools.partial(_purge, created)) for night in nights if night <= timezone.now()]
    return steps


__all__ = ["ART30", "PRIVACY_OFFICER", "REQUESTER", "customers", "privacy_steps"]
