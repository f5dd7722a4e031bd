"""Every permission rule of the product, in one place (django-rules).

Views, API endpoints and selectors all ask these predicates; rules that are about
data are also backed by database constraints (see models).
"""

import rules

from registry.choices import TokenScope

REVIEWER_GROUP = "reviewer"
AUDITOR_GROUP = "auditor"
PRIVACY_GROUP = "privacy"  # privacy officers: retention, legal holds, erasure, records of processing


@rules.predicate
def is_admin(user) -> bool:
    return bool(user and user.is_authenticated and (user.is_superuser or user.is_staff))


def in_group(name: str):
    """A predicate: the user is in group ``name`` (roles read with the user, registry.auth)."""
    from registry.auth import role_names

    return rules.predicate(lambda user: name in role_names(user), name=f"in_group:{name}")


is_reviewer = in_group(REVIEWER_GROUP)
is_auditor = in_group(AUDITOR_GROUP)
is_privacy_officer = in_group(PRIVACY_GROUP)


@rules.predicate
def is_model_owner(user, model) -> bool:
    return model is not None and user.is_authenticated and model.owner_id == user.pk


@rules.predicate
def is_team_member(user, model) -> bool:
    if model is None or not user.is_authenticated:
        return False
    return model.team.members.filter(pk=user.pk).exists()


@rules.predicate
def is_requester(user, promotion_request) -> bool:
    return promotion_request is not None and promotion_request.requested_by_id == user.pk


@rules.predicate
def is_request_model_owner(user, promotion_request) -> bool:
    return promotion_request is not None and promotion_request.version.model.owner_id == user.pk


def approver_group(promotion_request) -> str:
    """The group whose members may review the request: the one frozen in its policy snapshot."""
    return (promotion_request.policy_snapshot or {}).get("approver_group") or REVIEWER_GROUP


@rules.predicate
def is_snapshot_approver(user, promotion_request) -> bool:
    """A member of the request's approver group (read now, so a membership change counts at once)."""
    if promotion_request is None or not user.is_authenticated:
        return False
    return user.groups.filter(name=approver_group(promotion_request)).exists()


@rules.predicate
def has_reviewed(user, promotion_request) -> bool:
    """The user has already approved or rejected this request (uses prefetched reviews if any)."""
    return promotion_request is not None and any(r.reviewer_id == user.pk for r in promotion_request.reviews.all())


@rules.predicate
def has_team(user) -> bool:
    from registry.auth import in_a_team

    return in_a_team(user)  # read with the user (registry.auth), else asked once here


sees_all_models = is_admin | is_reviewer | is_auditor | is_privacy_officer
can_view_model = sees_all_models | is_model_owner | is_team_member
can_change_model = is_admin | is_model_owner
# The risk tier decides the approvals a promotion needs, the fairness gate and the retention
# floor: the owner, whom it binds, may not change it; an admin may (model_update audits it).
can_change_risk_tier = is_admin
can_register_model = is_admin | (has_team & ~is_auditor)
# The one review rule, asked by the request page, the review queue, the API and the service:
# an admin or a member of the snapshot's approver group, never the requester nor the model's
# owner (as a periodic review's validator), once per reviewer.
may_approve_under_policy = is_admin | is_snapshot_approver
can_review_promotion = may_approve_under_policy & ~is_requester & ~is_request_model_owner & ~has_reviewed
can_request_promotion = is_admin | is_model_owner
can_cancel_promotion = is_requester | is_admin
can_rollback = is_admin | is_model_owner | is_reviewer
can_view_audit = is_admin | is_auditor | is_privacy_officer  # logs prove purges and erasures
can_manage_policies = is_admin
# per-group (fairness) results: owner and team, reviewers, auditors, admins (issue "Bias and fairness evidence")
can_view_group_results = is_admin | is_reviewer | is_auditor | is_model_owner | is_team_member
can_manage_retention = is_admin | is_privacy_officer
can_view_privacy = is_admin | is_privacy_officer | is_auditor
can_request_erasure = is_admin | is_privacy_officer


@rules.predicate
def owns_a_model(user) -> bool:
    from registry.models import RegisteredModel

    return user.is_authenticated and RegisteredModel.objects.filter(owner_id=user.pk).exists()


@rules.predicate
def in_an_approver_group(user) -> bool:
    """A member of the reviewer group or of a group that a promotion policy names as approvers."""
    from registry.auth import role_names
    from registry.models import PromotionPolicy

    names = role_names(user)
    return REVIEWER_GROUP in names or PromotionPolicy.objects.filter(approver_group__in=names).exists()


# The token scopes a user's roles can use, the one answer the token form asks (it offers these
# and refuses the others); each action a token is then used for is still decided by the rules
# above. Owners and team members work on models; auditors change nothing.
works_on_models = is_admin | ((has_team | owns_a_model) & ~is_auditor)
approves_promotions = is_admin | (in_an_approver_group & ~is_auditor)
keeps_privacy = can_request_erasure | can_manage_retention
SCOPE_RULES = {
    TokenScope.MODELS_READ: rules.is_authenticated,
    TokenScope.MODELS_WRITE: works_on_models,
    TokenScope.PROMOTIONS_REQUEST: works_on_models | (is_reviewer & ~is_auditor),  # reviewers roll back
    TokenScope.PROMOTIONS_REVIEW: approves_promotions,
    TokenScope.MONITORING_READ: rules.is_authenticated,
    TokenScope.MONITORING_WRITE: works_on_models,
    TokenScope.AUDIT_READ: can_view_audit,
    TokenScope.STEP_UP: approves_promotions | can_manage_policies | keeps_privacy,  # registry/stepup.py
    TokenScope.INCIDENTS_WRITE: works_on_models,
    TokenScope.REVIEWS_WRITE: works_on_models | (is_reviewer & ~is_auditor),  # owners attest, reviewers validate
    TokenScope.PRIVACY_WRITE: keeps_privacy,
}


def usable_scopes(user) -> list[str]:
    """The scopes ``user``'s roles can use, in ``TokenScope`` order."""
    return [scope for scope in TokenScope.values if SCOPE_RULES[TokenScope(scope)](user)]


rules.add_perm("registry.view_model", can_view_model)
rules.add_perm("registry.change_model", can_change_model)
rules.add_perm("registry.add_model", can_register_model)
rules.add_perm("registry.change_risk_tier", can_change_risk_tier)
rules.add_perm("registry.add_version", can_change_model)
rules.add_perm("registry.request_promotion", can_request_promotion)
rules.add_perm("registry.review_promotion", can_review_promotion)
rules.add_perm("registry.cancel_promotion", can_cancel_promotion)
rules.add_perm("registry.rollback", can_rollback)
rules.add_perm("registry.view_audit", can_view_audit)
rules.add_perm("registry.manage_policies", can_manage_policies)
rules.add_perm("registry.view_group_results", can_view_group_results)
rules.add_perm("registry.manage_retention", can_manage_retention)
rules.add_perm("registry.view_privacy", can_view_privacy)
rules.add_perm("registry.request_erasure", can_request_erasure)
