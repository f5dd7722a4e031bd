"""``credit-approval``'s registry history for ``registry.demo``'s schedule, at its past times.

- registered ten weeks ago; v1 (on past decisions, ``sex`` an input) registered and evaluated
  the same week, its production request blocked by the fairness gate (cancelled when v2 goes
  live);
- v2 (on repayment outcomes, ``sex`` only monitored) seven weeks ago, approved by two
  reviewers and live six and a half weeks ago, before its five weeks of traffic
  (``monitoring.demo_fairness``, day by day with the monitoring demo);
- v3, the challenger that puts ``sex`` back, registered and requested five and a half weeks ago:
  still pending, blocked by the fairness gate.

The versions are trained and evaluated by ``monitoring.demo_fairness`` (imported when a step
runs, as ``demo_llm``'s evaluations); each step looks for what it would create first, so a
second run writes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from registry.choices import Stage
from registry.demo_steps import PromotionStep, history_steps

MODEL = "credit-approval"
CREATED = (-70, 10)  # (days from today, hour UTC), as ``registry.demo_steps.When``
VERSIONS = {1: (-66, 10), 2: (-50, 10), 3: (-38, 14)}  # registered, then evaluated an hour later
APPROVALS = [("reviewer", "approve", "Fairness gate green; AUC fine."), ("reviewer2", "approve", "Agreed.")]


def credit_history() -> list:
    """v1 and v3 blocked by the fairness gate (pending); v2 approved by two reviewers. No other
    demo step falls between a request and its last review (the chain's time order)."""
    from monitoring.demo_fairness import JUSTIFICATIONS

    return [
        PromotionStep(1, Stage.PRODUCTION, JUSTIFICATIONS[1], [], at=((-65, 10),)),
        PromotionStep(2, Stage.PRODUCTION, JUSTIFICATIONS[2], APPROVALS, at=((-48, 10), (-47, 11), (-46, 9))),
        PromotionStep(3, Stage.PRODUCTION, JUSTIFICATIONS[3], [], at=((-38, 16),)),
    ]


def _model(users, teams, result) -> None:
    from monitoring import demo_fairness

    if demo_fairness.ensure_model(owner=users["owner"], team=teams["customer-analytics"]):
        result.add("models")


def _version(number: int, users, result) -> None:
    from monitoring import demo_fairness

    if demo_fairness.ensure_version(number, owner=users["owner"]):
        result.add("versions")


def _evaluation(number: int, users) -> None:
    from monitoring import demo_fairness

    demo_fairness.ensure_evaluation(number, owner=users["owner"])


def credit_schedule(users, teams, result) -> list[tuple[tuple[int, float], str, Callable[[], None]]]:
    """credit-approval's steps for ``registry.demo._schedule``: (when, label, action)."""
    steps = [(CREATED, f"{MODEL}: registered", functools.partial(_model, users, teams, result))]
    for number, (days, hour) in VERSIONS.items():
        steps.append(((days, hour), f"{MODEL} v{number}: trained", functools.partial(_version, number, users, result)))
        steps.append(((days, hour + 1), f"{MODEL} v{number}: evaluated", functools.partial(_evaluation, number, users)))
    return steps + history_steps(MODEL, credit_history(), users, result)


CREDIT_STEPS = 1 + 2 * len(VERSIONS) + 3
