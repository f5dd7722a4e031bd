"""Step-up: approving a high-risk promotion, an admin gate override and a policy change need a
sign-in at most STEP_UP_MAX_AGE seconds old (a password confirmation here; through the provider
in tests/integration/test_oidc.py); API tokens need the step-up:sensitive scope."""

import time
from urllib.parse import urlencode

import pytest

from registry.choices import PromotionStatus, RiskTier, Stage
from registry.models import AuditEvent, PromotionPolicy
from registry.services.audit import CLI
from registry.services.promotions import promotion_request
from tests.factories import ModelVersionFactory

PASSWORD = "pass-1234-word"  # tests.factories.UserFactory's


def _open(churn_v1, owner, tier=RiskTier.HIGH):
    churn_v1.model.risk_tier = tier
    churn_v1.model.save()
    return promotion_request(
        version=churn_v1, target_stage=Stage.STAGING, requester=owner, justification="Ship it.", context=CLI
    )


def _stale(client):
    session = client.session
    session["auth_time"] = int(time.time()) - 3600
    session.save()


def test_a_stale_session_is_asked_to_confirm_before_approving_a_high_risk_promotion(
    churn_v1, owner, reviewer, client_for, last_seq
):
    req = _open(churn_v1, owner)
    client = client_for(reviewer)
    _stale(client)
    url = f"/promotions/{req.pk}/approve/"
    asked = client.post(url, {"comment": "ok"}, HTTP_REFERER=f"http://testserver/promotions/{req.pk}/")
    assert asked.status_code == 302 and asked["Location"].startswith("/login/step-up/?next=")
    assert not req.reviews.exists()
    page = client.get(asked["Location"])
    assert page.status_code == 200 and 'name="password"' in page.content.decode()
    wrong = client.post("/login/step-up/", {"password": "nope", "next": f"/promotions/{req.pk}/"})
    assert wrong.status_code == 400
    start = last_seq()
    confirmed = client.post("/login/step-up/", {"password": PASSWORD, "next": f"/promotions/{req.pk}/"})
    assert confirmed.status_code == 302 and confirmed["Location"] == f"/promotions/{req.pk}/"
    assert AuditEvent.objects.filter(seq__gt=start, action="user.stepped_up", actor_name="reviewer").exists()
    assert client.post(url, {"comment": "ok"}).status_code == 302
    assert req.reviews.filter(reviewer=reviewer).exists()


def test_an_htmx_approval_asked_to_step_up_gets_a_2xx_with_hx_redirect_back_to_the_request_page(
    churn_v1, owner, reviewer, client_for
):
    req = _open(churn_v1, owner)
    client = client_for(reviewer)
    _stale(client)
    page = f"http://testserver/promotions/{req.pk}/"
    response = client.post(
        f"/promotions/{req.pk}/approve/",
        {"comment": "Looks fine."},
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL=page,
        HTTP_REFERER=page,
    )
    assert response.status_code == 200  # htmx ignores HX-Redirect on a 3xx: the browser follows it
    assert "Location" not in response
    assert response["HX-Redirect"] == "/login/step-up/?" + urlencode({"next": page})
    assert not req.reviews.exists()


def test_a_plain_post_asked_to_step_up_is_redirected(churn_v1, owner, reviewer, client_for):
    req = _open(churn_v1, owner)
    client = client_for(reviewer)
    _stale(client)
    page = f"http://testserver/promotions/{req.pk}/"
    response = client.post(f"/promotions/{req.pk}/approve/", {"comment": "ok"}, HTTP_REFERER=page)
    assert response.status_code == 302 and "HX-Redirect" not in response
    assert response["Location"] == "/login/step-up/?" + urlencode({"next": page})


def test_after_a_step_up_the_request_page_says_the_approval_was_not_recorded_and_keeps_the_comment(
    churn_v1, owner, reviewer, client_for
):
    req = _open(churn_v1, owner)
    client = client_for(reviewer)
    _stale(client)
    page = f"http://testserver/promotions/{req.pk}/"
    comment = "Holdout gain is real <b>ok</b>."
    client.post(
        f"/promotions/{req.pk}/approve/", {"comment": comment}, HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL=page
    )
    confirmed = client.post("/login/step-up/", {"password": PASSWORD, "next": page}, follow=True)
    html = confirmed.content.decode()
    assert confirmed.redirect_chain[-1][0] == page
    assert "The action you started was not recorded" in html
    assert "Holdout gain is real &lt;b&gt;ok&lt;/b&gt;.</textarea>" in html
    assert not req.reviews.exists()
    again = client.get(f"/promotions/{req.pk}/").content.decode()  # given back once only
    assert comment not in again and "not recorded" not in again


def test_a_routine_approval_needs_no_step_up(churn_v1, owner, reviewer, client_for):
    req = _open(churn_v1, owner, tier=RiskTier.LOW)
    client = client_for(reviewer)
    _stale(client)
    response = client.post(f"/promotions/{req.pk}/approve/", {"comment": ""})
    assert response["Location"] == f"/promotions/{req.pk}/"
    assert req.reviews.filter(reviewer=reviewer).exists()


def test_an_admin_override_needs_step_up_whatever_the_tier(churn, owner, admin_user, client_for):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, metrics={"roc_auc": 0.9})
    req = promotion_request(
        version=ModelVersionFactory(model=churn, metrics={"roc_auc": 0.5}),
        target_stage=Stage.PRODUCTION,
        requester=owner,
        justification="x",
        context=CLI,
    )
    client = client_for(admin_user)
    _stale(client)
    response = client.post(f"/promotions/{req.pk}/approve/", {"comment": "", "override_reason": "Incident 42."})
    assert response.status_code == 302 and response["Location"].startswith("/login/step-up/")
    req.refresh_from_db()
    assert req.status == PromotionStatus.PENDING and not req.override_reason


def test_a_fresh_sign_in_is_enough(churn_v1, owner, reviewer, client_for):
    req = _open(churn_v1, owner)
    response = client_for(reviewer).post(f"/promotions/{req.pk}/approve/", {"comment": ""})  # just logged in
    assert not response["Location"].startswith("/login/step-up/")
    assert req.reviews.filter(reviewer=reviewer).exists()


@pytest.mark.parametrize(
    "scopes, status", [(["promotions:review"], 403), (["promotions:review", "step-up:sensitive"], 200)]
)
def test_api_tokens_need_the_step_up_scope_for_high_risk_approvals(
    churn_v1, owner, reviewer, api_client_for, scopes, status
):
    req = _open(churn_v1, owner)
    response = api_client_for(reviewer, scopes).post(
        f"/api/v1/promotions/{req.pk}/approve/", {"comment": "ok"}, format="json"
    )
    assert response.status_code == status
    if status == 403:
        assert response.json()["error"]["code"] == "step_up_required"
        assert not req.reviews.exists()


def test_changing_a_policy_in_the_admin_needs_step_up(admin_user, client_for):
    policy = PromotionPolicy.objects.get(risk_tier=RiskTier.LOW)
    client = client_for(admin_user)
    _stale(client)
    url = f"/admin/registry/promotionpolicy/{policy.pk}/change/"
    data = {"approvals_required": 3, "approver_group": policy.approver_group, "metric_tolerance": "0.01"}
    response = client.post(url, data)
    assert response.status_code == 302 and response["Location"].startswith("/login/step-up/")
    policy.refresh_from_db()
    assert policy.approvals_required != 3
    assert client.get(url).status_code == 200  # reading needs no step-up


@pytest.mark.parametrize(
    "body, content_type",
    [('{"password": "pass-1234-word"}', "application/json"), ("", "application/x-www-form-urlencoded")],
)
def test_a_step_up_without_a_password_field_is_a_400_asking_for_it(reviewer, client_for, body, content_type):
    """A POST whose body holds no form field (a JSON body, an empty form) answered 500: the view
    added its error to a form it had left unbound."""
    client = client_for(reviewer)
    _stale(client)
    answer = client.post("/login/step-up/", body, content_type=content_type)
    assert answer.status_code == 400
    assert "This field is required." in answer.content.decode()
    assert not AuditEvent.objects.filter(action="user.stepped_up").exists()
    assert client.session["auth_time"] < time.time() - 3000


def test_a_wrong_password_is_a_400_saying_so(reviewer, client_for):
    client = client_for(reviewer)
    _stale(client)
    answer = client.post("/login/step-up/", {"password": "not-the-password"})
    assert answer.status_code == 400
    assert "That password is not right." in answer.content.decode()
    assert not AuditEvent.objects.filter(action="user.stepped_up").exists()


@pytest.mark.parametrize(
    "path, data",
    [
        # granting the admin flags: the account can then do everything, a policy change included
        ("/admin/auth/user/{outsider}/change/", {"is_staff": "on", "is_superuser": "on"}),
        # a role decides who approves promotions and who reads the audit log
        ("/admin/auth/user/{outsider}/change/", {"groups": ["{auditor_group}"]}),
        # whoever sets a password can sign in as the account
        (
            "/admin/auth/user/{outsider}/password/",
            {"usable_password": "true", "password1": "Qv7!x-91-aa", "password2": "Qv7!x-91-aa"},
        ),
    ],
)
def test_granting_admin_a_role_or_a_password_in_the_admin_needs_step_up(
    admin_user, outsider, auditor, client_for, last_seq, path, data
):
    from django.contrib.auth.models import Group

    group = Group.objects.get(name="auditor")
    fields = {"username": outsider.username, "is_active": "on", "date_joined_0": "2026-01-01", "date_joined_1": "10:00"}
    data = {
        k: [v.format(auditor_group=group.pk) for v in value] if isinstance(value, list) else value
        for k, value in data.items()
    }
    client = client_for(admin_user)
    _stale(client)
    since = last_seq()
    url = path.format(outsider=outsider.pk)
    response = client.post(url, {**fields, **data})
    assert response.status_code == 302 and response["Location"].startswith("/login/step-up/")
    outsider.refresh_from_db()
    assert not outsider.is_superuser and not outsider.groups.exists() and not outsider.check_password("Qv7!x-91-aa")
    assert not AuditEvent.objects.filter(seq__gt=since).exists()
    assert client.get(url).status_code == 200  # reading needs no step-up


def test_renaming_a_group_into_a_role_in_the_admin_needs_step_up(admin_user, outsider, client_for, last_seq):
    # roles are groups found by name: a group renamed 'auditor' makes its members auditors
    from django.contrib.auth.models import Group

    Group.objects.filter(name="auditor").delete()
    ops = Group.objects.create(name="ops")
    outsider.groups.add(ops)
    client = client_for(admin_user)
    _stale(client)
    since = last_seq()
    response = client.post(f"/admin/auth/group/{ops.pk}/change/", {"name": "auditor"})
    assert response.status_code == 302 and response["Location"].startswith("/login/step-up/")
    ops.refresh_from_db()
    assert ops.name == "ops" and not AuditEvent.objects.filter(seq__gt=since).exists()


def test_after_a_step_up_an_admin_save_it_stopped_is_said_not_recorded(admin_user, client_for):
    """The admin was sent back to the form after the sign-in without being told that the save
    which sent them away was not recorded (the request page's approvals say so)."""
    policy = PromotionPolicy.objects.get(risk_tier=RiskTier.LOW)
    client = client_for(admin_user)
    _stale(client)
    url = f"/admin/registry/promotionpolicy/{policy.pk}/change/"
    stopped = client.post(url, {"approvals_required": 3, "approver_group": policy.approver_group})
    assert stopped.status_code == 302 and stopped["Location"].startswith("/login/step-up/")
    confirmed = client.post(stopped["Location"], {"password": PASSWORD}, follow=True)
    assert confirmed.redirect_chain[-1][0].endswith(url)
    assert "The action you started was not recorded" in confirmed.content.decode()
    policy.refresh_from_db()
    assert policy.approvals_required != 3
