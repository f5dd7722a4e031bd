"""One bound for the card's long texts (a model's description, intended use and limitations, a
version's description): the form, the API and the service refuse longer text with a field error,
and the longest card the form accepts fits in an API body (``API_MAX_BODY_BYTES``)."""

import json

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse

from registry.limits import CARD_TEXT_MAX_LENGTH
from registry.models import RegisteredModel
from registry.services.audit import CLI
from registry.services.inventory import model_create

CARD_TEXTS = ("description", "intended_use", "limitations")
TOO_LONG = "x" * (CARD_TEXT_MAX_LENGTH + 1)


def _post_json(client, url, body, method="post"):
    return getattr(client, method)(url, data=json.dumps(body), content_type="application/json")


def test_the_longest_card_fits_in_one_api_body_in_any_characters():
    # 4 bytes per character in UTF-8 at worst (6 when a client \\u-escapes a BMP character)
    assert len(CARD_TEXTS) * CARD_TEXT_MAX_LENGTH * 6 < settings.API_MAX_BODY_BYTES


@pytest.mark.parametrize("field", CARD_TEXTS)
def test_the_model_form_refuses_a_card_text_over_the_limit(owner, team, client_for, last_seq, field):
    client = client_for(owner)
    start = last_seq()
    response = client.post(
        reverse("registry:model_create"), {"name": "fraud", "team": team.slug, "risk_tier": "medium", field: TOO_LONG}
    )
    assert response.status_code == 400
    assert "at most" in " ".join(response.context["form"].errors[field])
    assert not RegisteredModel.objects.filter(name="fraud").exists() and last_seq() == start


def test_a_card_at_the_limit_registers_through_the_form_and_the_api(owner, team, client_for, api_client_for):
    at_limit = {field: "é" * CARD_TEXT_MAX_LENGTH for field in CARD_TEXTS}
    response = client_for(owner).post(
        reverse("registry:model_create"), {"name": "fraud", "team": team.slug, "risk_tier": "medium", **at_limit}
    )
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    created = _post_json(api_client_for(owner), "/api/v1/models/", {"name": "fraud2", **at_limit})
    assert created.status_code == 201, created.content[:300]


@pytest.mark.parametrize("field", CARD_TEXTS)
def test_the_api_refuses_a_card_text_over_the_limit_with_a_field_error(owner, churn, api_client_for, field):
    client = api_client_for(owner)
    for url, method in (("/api/v1/models/", "post"), ("/api/v1/models/churn/", "patch")):
        body = {"name": "fraud", field: TOO_LONG} if method == "post" else {field: TOO_LONG}
        response = _post_json(client, url, body, method=method)
        assert response.status_code == 400, response.content[:300]
        assert field in response.json()["error"]["details"]
    assert not RegisteredModel.objects.filter(name="fraud").exists()


def test_the_service_refuses_a_description_over_the_limit(owner, team):
    with pytest.raises(ValidationError) as caught:
        model_create(actor=owner, context=CLI, name="fraud", team=team, description=TOO_LONG)
    assert "description" in caught.value.message_dict


def test_a_version_description_has_the_same_bound_in_the_form_and_the_api(owner, churn_v1, client_for, api_client_for):
    form = client_for(owner).post(
        reverse("registry:version_create", args=["churn"]), {"description": TOO_LONG, "task_type": "binary"}
    )
    assert form.status_code == 400 and form.context["form"].errors["description"]
    api = _post_json(api_client_for(owner), "/api/v1/models/churn/versions/", {"description": TOO_LONG})
    assert api.status_code == 400 and "description" in api.json()["error"]["details"]
    assert churn_v1.model.versions.count() == 1
