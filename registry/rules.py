"""Every permission rule of the product, in one place (django-rules).

Views, API endpoints and selectors all ask these predicates; rules that are about
data are also backed by database constraints (see models).
"""

import rules

REVIEWER_GROUP = "reviewer"
AUDITOR_GROUP = "auditor"
PRIVACY_GROUP = "privacy"  # privacy officers: retention, legal holds, erasure, records of processing


@rules.predicate
def is_admin(user) -> bool:
    return bool(user and user.is_authenticated and (user.is_superuser or user.is_staff))


is_reviewer = rules.is_group_member(REVIEWER_GROUP)
is_auditor = rules.is_group_member(AUDITOR_GROUP)
is_privacy_officer = rules.is_group_member(PRIVACY_GROUP)


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


@rules.predicate
def has_team(user) -> bool:
    if not user.is_authenticated:
        return False
    cached = getattr(user, "_has_team_cache", None)  # read with the user (registry.auth), else asked here
    return cached if cached is not None else user.teams.exists()


sees_all_models = is_admin | is_reviewer | is_auditor | is_privacy_officer
can_view_model = sees_all_models | is_model_owner | is_team_member
can_change_model = is_admin | is_model_owner
can_register_model = is_admin | (has_team & ~is_auditor)
can_review_promotion = (is_reviewer | is_admin) & ~is_requester
can_request_promotion = is_admin | is_model_owner
can_cancel_promotion = is_requester | is_admin
can_rollback = is_admin | is_model_owner | is_reviewer
can_view_audit = is_admin | is_auditor
can_manage_policies = is_admin
can_manage_retention = is_admin | is_privacy_officer
can_view_privacy = is_admin | is_privacy_officer | is_auditor
can_request_erasure = is_admin | is_privacy_officer

rules.add_perm("registry.view_model", can_view_model)
rules.add_perm("registry.change_model", can_change_model)
rules.add_perm("registry.add_model", can_register_model)
rules.add_perm("registry.add_version", can_change_model)
rules.add_perm("registry.request_promotion", can_request_promotion)
rules.add_perm("registry.review_promotion", can_review_promotion)
rules.add_perm("registry.cancel_promotion", can_cancel_promotion)
rules.add_perm("registry.rollback", can_rollback)
rules.add_perm("registry.view_audit", can_view_audit)
rules.add_perm("registry.manage_policies", can_manage_policies)
rules.add_perm("registry.manage_retention", can_manage_retention)
rules.add_perm("registry.view_privacy", can_view_privacy)
rules.add_perm("registry.request_erasure", can_request_erasure)
