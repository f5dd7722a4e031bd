"""Promotion workflow pages: review queue, request page, actions (htmx or plain POST),
the model's stage timeline and the rollback form. Thin: the services do the work."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.timesince import timesince
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from registry import rules
from registry.choices import PromotionStatus, Stage
from registry.fairness_evidence import request_fairness
from registry.forms import form_submit
from registry.forms_promotions import (
    CancelForm,
    PromotionRequestFilterSet,
    PromotionRequestForm,
    ReviewForm,
    RollbackForm,
)
from registry.llm_evidence import llm_evidence
from registry.models import ModelVersion, PromotionRequest
from registry.selectors.inventory import model_get, model_get_changeable
from registry.selectors.llm import llm_version_parts
from registry.selectors.promotions import (
    model_timeline as model_timeline_selector,
)
from registry.selectors.promotions import (
    production_version,
    production_version_at_request,
    promotion_approvals,
    promotion_counts,
    promotion_decision,
    promotion_evidence,
    promotion_get,
    promotion_list,
    rollback_candidate,
)
from registry.services.audit import AuditContext
from registry.services.promotions import (
    PromotionConflict,
    promotion_approve,
    promotion_cancel,
    promotion_reject,
    promotion_request,
)
from registry.services.stages import model_rollback
from registry.stepup import promotion_approval_is_sensitive, step_up_draft, step_up_required_if  # access

ACTIONS_TEMPLATE = "registry/inc/promotion_actions.html"


def _submit(request, form, write):
    """``form_submit`` (the create and edit pages' one flow), plus the workflow's refusal: a
    ``PromotionConflict`` becomes a form error shown with 409."""
    try:
        return form_submit(request, form, write)
    except PromotionConflict as exc:
        form.add_error(None, exc.message)
        return None, 409


def _errors_text(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return " ".join(f"{m}" for msgs in exc.message_dict.values() for m in msgs)
    return " ".join(exc.messages)


@login_required
@require_GET
def review_queue(request):
    """Pending requests (by default) on models the user may see, with filters and counts."""
    data = request.GET.copy()
    if "status" not in data:
        data["status"] = PromotionStatus.PENDING
    base = promotion_list(user=request.user).prefetch_related("reviews").order_by("-created_at")
    filterset = PromotionRequestFilterSet(data, queryset=base)
    status = 200 if filterset.is_valid() else 400
    requests_ = list(filterset.qs[:200]) if status == 200 else []
    reviewable = {
        r.pk for r in requests_ if r.status == PromotionStatus.PENDING and rules.can_review_promotion(request.user, r)
    }
    return render(
        request,
        "registry/review_queue.html",
        {
            "filter": filterset,
            "requests": requests_,
            "reviewable": reviewable,
            "counts": promotion_counts(user=request.user),
            "nav_section": "reviews",
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def promotion_create_view(request, name, version):
    """The owner's request form, reached from the version page."""
    denied = "Only the model's owner or an admin may request a promotion."
    model = model_get_changeable(user=request.user, name=name, denied=denied, may=rules.can_request_promotion)
    version_obj = get_object_or_404(ModelVersion.objects.select_related("model"), model=model, version=version)
    form = PromotionRequestForm(request.POST or None)
    req, status = _submit(
        request,
        form,
        lambda data: promotion_request(
            version=version_obj,
            target_stage=data["target_stage"],
            requester=request.user,
            justification=data["justification"],
            context=AuditContext.from_request(request),
        ),
    )
    if req is not None:
        messages.success(request, f"Promotion requested: reviewers have been notified (request #{req.pk}).")
        return redirect(req)
    pending = version_obj.promotion_requests.filter(status=PromotionStatus.PENDING).first()
    return render(
        request,
        "registry/promotion_form.html",
        {
            "model": model,
            "version": version_obj,
            "form": form,
            "pending": pending,
            "production": production_version(model),
            "nav_section": "reviews",
        },
        status=status,
    )


def _detail_context(request, req: PromotionRequest, *, error: str = "", form=None) -> dict:
    user = request.user
    evidence = promotion_evidence(req)
    is_pending = req.status == PromotionStatus.PENDING
    reviewed = any(r.reviewer_id == user.pk for r in req.reviews.all())
    return {
        "req": req,
        "open_for": timesince(req.created_at, depth=1) if is_pending else "",
        "production_when_requested": _production_when_requested(req, evidence) if is_pending else None,
        "version": req.version,
        "model": req.version.model,
        "reviews": list(req.reviews.all()),
        "approvals": promotion_approvals(req),
        "approvals_required": int(req.policy_snapshot.get("approvals_required", 1)),
        "decision": promotion_decision(req),
        "approver_group": rules.approver_group(req),
        "may_approve": bool(rules.may_approve_under_policy(user, req)),
        "evidence": evidence,
        "fairness": request_fairness(user=user, request=req, production=evidence["production"]),
        "llm_eval": llm_evidence(request=req, production=evidence["production"]),
        "llm": llm_version_parts(req.version),
        "is_pending": is_pending,
        "is_requester": req.requested_by_id == user.pk,
        "can_review": is_pending and bool(rules.can_review_promotion(user, req)),
        "already_reviewed": reviewed,
        "can_cancel": is_pending and bool(rules.can_cancel_promotion(user, req)),
        "is_admin": bool(rules.is_admin(user)),
        "error": error,
        "form": form or ReviewForm(),
        "nav_section": "reviews",
    }


def _production_when_requested(req: PromotionRequest, evidence: dict) -> dict | None:
    """For a pending request: production then, when it is not production now (None otherwise)."""
    then = production_version_at_request(req)
    now = evidence["production"]
    if (then.pk if then else None) == (now.pk if now else None):
        return None
    return {"then": then, "now": now}


@login_required
@require_GET
def promotion_detail(request, pk):
    """The request page: evidence side by side, gates, reviews so far, actions."""
    req = promotion_get(user=request.user, pk=pk)
    draft = step_up_draft(request)  # the comment typed before a step-up stopped the approval
    form = ReviewForm(initial=draft) if draft else None
    return render(request, "registry/promotion_detail.html", _detail_context(request, req, form=form))


def _act(request, pk: int, action) -> object:
    """Run one review action; answer the htmx fragment (actions + status) or redirect."""
    req = promotion_get(user=request.user, pk=pk)
    form_class = CancelForm if action is promotion_cancel else ReviewForm
    form = form_class(request.POST)
    error = ""
    status = 200
    if not form.is_valid():
        error = _errors_text(ValidationError(form.errors))
        status = 400
    else:
        context = AuditContext.from_request(request)
        data = form.cleaned_data
        try:
            if action is promotion_approve:
                promotion_approve(
                    request=req,
                    reviewer=request.user,
                    comment=data["comment"],
                    override_reason=data.get("override_reason") or None,
                    production_seen=data.get("production_seen"),
                    context=context,
                )
                done = "Approved."
            elif action is promotion_reject:
                promotion_reject(request=req, reviewer=request.user, comment=data["comment"], context=context)
                done = "Rejected."
            else:
                promotion_cancel(request=req, actor=request.user, comment=data["comment"], context=context)
                done = "Cancelled."
        except PermissionDenied as exc:
            error, status = str(exc) or "You may not do this.", 403
        except ValidationError as exc:
            error, status = _errors_text(exc), 400
        except PromotionConflict as exc:
            error, status = exc.message, 409
    if request.htmx:
        req = promotion_get(user=request.user, pk=pk)
        ctx = _detail_context(request, req, error=error, form=form if error else None)
        ctx["flash"] = "" if error else done
        ctx["refresh_nav"] = not error  # the Reviews count in the navigation, swapped out of band
        return render(request, ACTIONS_TEMPLATE, ctx, status=status)
    if error:
        req = promotion_get(user=request.user, pk=pk)
        return render(
            request,
            "registry/promotion_detail.html",
            _detail_context(request, req, error=error, form=form),
            status=status,
        )
    messages.success(request, done)
    return redirect("registry:promotion_detail", pk=pk)


@login_required
@require_POST
@step_up_required_if(promotion_approval_is_sensitive, keep=("comment", "override_reason"))  # access: high risk/override
def promotion_approve_view(request, pk):
    return _act(request, pk, promotion_approve)


@login_required
@require_POST
def promotion_reject_view(request, pk):
    return _act(request, pk, promotion_reject)


@login_required
@require_POST
def promotion_cancel_view(request, pk):
    return _act(request, pk, promotion_cancel)


@login_required
@require_GET
def model_timeline(request, name):
    """Every stage transition of the model (an htmx fragment for the model page, or a page)."""
    model = model_get(user=request.user, name=name)
    can_rollback = bool(rules.can_rollback(request.user, model))
    ctx = {
        "model": model,
        "transitions": model_timeline_selector(model=model),
        "can_rollback": can_rollback,
        "rollback_target": rollback_candidate(model) if can_rollback else None,
        "nav_section": "inventory",
    }
    template = "registry/inc/model_timeline.html" if request.htmx else "registry/model_timeline.html"
    return render(request, template, ctx)


@login_required
@require_http_methods(["GET", "POST"])
def model_rollback_view(request, name):
    """Roll production back to the previous approved version, with a mandatory reason."""
    denied = "Only the model's owner, a reviewer or an admin may roll back."
    model = model_get_changeable(user=request.user, name=name, denied=denied, may=rules.can_rollback)
    form = RollbackForm(request.POST or None)
    restored, status = _submit(
        request,
        form,
        lambda data: model_rollback(
            model=model, actor=request.user, reason=data["reason"], context=AuditContext.from_request(request)
        ),
    )
    if restored is not None:
        messages.success(
            request,
            f"Rolled back: v{restored.version.version} is in production again; flagged for follow-up review.",
        )
        return redirect(model)
    return render(
        request,
        "registry/rollback_form.html",
        {
            "model": model,
            "form": form,
            "current": production_version(model),
            "target": rollback_candidate(model),
            "stage_production": Stage.PRODUCTION,
            "nav_section": "inventory",
        },
        status=status,
    )
