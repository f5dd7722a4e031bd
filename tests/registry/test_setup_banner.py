"""A model whose card or primary metric is missing asks its owner to complete it: a banner on
the model's page and on the fleet view, naming what is missing, with a link to the edit form."""

import pytest
from django.urls import reverse

from registry.selectors.promotions import _model_card_gate
from tests.factories import RegisteredModelFactory


@pytest.fixture
def imported(owner, team):
    """What an MLflow import leaves: an empty card and no primary metric."""
    return RegisteredModelFactory(
        name="imported", owner=owner, team=team, description="", intended_use="", limitations="", primary_metric=""
    )


def _banner(html: str) -> str:
    start = html.find('class="msg msg-warning setup-banner"')
    return html[start : html.find("</div>", start)] if start >= 0 else ""


def test_owner_sees_a_banner_naming_each_missing_item_on_the_model_page(imported, owner, client_for):
    html = client_for(owner).get(reverse("registry:model_detail", args=["imported"])).content.decode()
    banner = _banner(html)
    assert "is missing description, intended use, limitations, primary metric." in banner
    assert f'href="{reverse("registry:model_edit", args=["imported"])}"' in banner


def test_the_banner_names_only_what_is_missing(owner, team, client_for):
    RegisteredModelFactory(name="half", owner=owner, team=team, limitations=" ", primary_metric="")
    banner = _banner(client_for(owner).get(reverse("registry:model_detail", args=["half"])).content.decode())
    assert "is missing limitations, primary metric." in banner


def test_a_complete_model_shows_no_banner(churn, owner, client_for):
    html = client_for(owner).get(reverse("registry:model_detail", args=["churn"])).content.decode()
    assert "setup-banner" not in html


@pytest.mark.parametrize("role,shown", [("owner", True), ("admin", True), ("reviewer", False), ("auditor", False)])
def test_only_users_who_can_change_the_model_see_the_banner(roles, role, shown, imported, client_for):
    html = client_for(roles[role]).get(reverse("registry:model_detail", args=["imported"])).content.decode()
    assert ("setup-banner" in html) is shown


def test_the_owners_fleet_view_lists_their_incomplete_models(imported, churn, owner, reviewer, client_for):
    banner = _banner(client_for(owner).get(reverse("monitoring:fleet")).content.decode())
    assert 'data-setup-missing="imported"' in banner and "is missing description" in banner
    assert 'data-setup-missing="churn"' not in banner
    assert reverse("registry:model_edit", args=["imported"]) in banner
    assert "setup-banner" not in client_for(reviewer).get(reverse("monitoring:fleet")).content.decode()


def test_the_gate_and_the_banner_read_one_definition_of_a_complete_card(imported):
    imported.description = "Scores churn."
    assert imported.model_card_missing == ["intended use", "limitations"]
    assert not imported.model_card_complete
    assert _model_card_gate(imported, {})["detail"] == "Missing: intended use, limitations."
    assert imported.setup_missing == ["intended use", "limitations", "primary metric"]
