"""Who may act on incidents, plans, reviews and findings (django-rules predicates built from
``registry.rules``). Reading follows the model: ``registry.rules.can_view_model`` and
``RegisteredModel.objects.visible_to``. Auditors read everything and change nothing."""

import rules

from registry.rules import can_view_model, is_admin, is_auditor, is_model_owner, is_reviewer


@rules.predicate
def is_finding_owner(user, finding) -> bool:
    return finding is not None and user.is_authenticated and finding.owner_id == user.pk


@rules.predicate
def owns_finding_model(user, finding) -> bool:
    return finding is not None and user.is_authenticated and finding.model.owner_id == user.pk


@rules.predicate
def remediated_finding(user, finding) -> bool:
    return finding is not None and user.is_authenticated and finding.remediated_by_id == user.pk


@rules.predicate
def validates_finding_model(user, finding) -> bool:
    return finding is not None and can_validate(user, finding.model)


@rules.predicate
def attested_review(user, review) -> bool:
    return review is not None and user.is_authenticated and review.attested_by_id == user.pk


@rules.predicate
def validates_review_model(user, review) -> bool:
    return review is not None and review.owner_id != user.pk and can_validate(user, review.model)


# (user, model): run an incident's response, attest a review, edit the plan's narrative
can_manage_incident = (is_admin | is_model_owner) & ~is_auditor
can_attest_review = (is_admin | is_model_owner) & ~is_auditor
can_edit_plan = (is_admin | is_model_owner) & ~is_auditor
# (user, model): sign a revalidation, record findings, close them on retest: never on one's own model
can_validate = (is_reviewer | is_admin) & ~is_model_owner & ~is_auditor
# (user, review): sign the revalidation: a validator who neither owns the model (then or now,
# backed by the constraint validator_is_not_owner) nor attested this review
can_validate_review = validates_review_model & ~attested_review
# (user, finding): answer a finding with remediation evidence
can_remediate_finding = (is_admin | is_finding_owner | owns_finding_model) & ~is_auditor
# (user, finding): close or reopen it on retest: a validator, never the one who remediated it
can_retest_finding = validates_finding_model & ~remediated_finding
# (user, model): be given a finding to fix: someone who sees the model and may answer (no auditor)
can_own_finding = can_view_model & ~is_auditor

rules.add_perm("monitoring.manage_incident", can_manage_incident)
rules.add_perm("monitoring.attest_review", can_attest_review)
rules.add_perm("monitoring.edit_plan", can_edit_plan)
rules.add_perm("monitoring.validate_model", can_validate)
rules.add_perm("monitoring.remediate_finding", can_remediate_finding)
rules.add_perm("monitoring.retest_finding", can_retest_finding)
rules.add_perm("monitoring.validate_review", can_validate_review)
