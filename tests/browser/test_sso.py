"""Single sign-on in a real browser: Chromium goes from the portal's login page to the real
OpenID Connect provider's login page (tests/oidc_provider), signs in there, and comes back
signed in with the role its groups grant."""

import pytest
from django.contrib.auth.models import Group

from registry.models import GroupMapping
from registry.rules import REVIEWER_GROUP
from registry.services.accounts import group_mapping_save
from registry.services.audit import CLI
from tests.browser.conftest import screenshot
from tests.oidc_harness import oidc_provider, sso_settings  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


def test_a_person_signs_in_through_the_providers_login_page(page, live_server, sso_settings, oidc_provider, team):
    oidc_provider.allow_redirect(f"{live_server.url}/oidc/callback/")
    oidc_provider.user("ivy", "ivy-password-123", ["ml-reviewers", "team-risk"])
    reviewer, _ = Group.objects.get_or_create(name=REVIEWER_GROUP)
    group_mapping_save(mapping=GroupMapping(claim_value="ml-reviewers", group=reviewer), actor=None, context=CLI)
    group_mapping_save(mapping=GroupMapping(claim_value="team-risk", team=team), actor=None, context=CLI)

    sso_settings.LOCAL_LOGIN = False  # production: passwords only for the break-glass account
    page.goto(f"{live_server.url}/login/?next=/reviews/")
    assert page.locator("#sso-login").is_visible() and not page.locator("#id_password").is_visible()
    screenshot(page, "sso-login-page")
    with page.expect_navigation():
        page.click("#sso-login")
    assert page.url.startswith(oidc_provider.url + "/accounts/login/")  # the provider's own page
    page.fill("#idp-username", "ivy")
    page.fill("#idp-password", "ivy-password-123")
    screenshot(page, "sso-provider-login")
    with page.expect_navigation(url=f"{live_server.url}/reviews/"):
        page.click("#idp-submit")
    who = page.locator(".userbox .who").inner_text()
    assert "ivy" in who
    assert page.url == f"{live_server.url}/reviews/"
    screenshot(page, "sso-signed-in")
    from django.contrib.auth import get_user_model

    ivy = get_user_model().objects.get(username="ivy")
    assert list(ivy.groups.values_list("name", flat=True)) == [REVIEWER_GROUP]
    assert list(ivy.teams.values_list("slug", flat=True)) == [team.slug]
