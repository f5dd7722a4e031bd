"""Bad values on a monitoring page: a browser gets the page again with the form's error beside
the field and a 400; an htmx fragment keeps the JSON error (htmx leaves the page as it is)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from monitoring.models import Alert, RetentionPolicy
from tests.factories import AlertFactory

pytestmark = pytest.mark.django_db


def field_error(response, name: str) -> str:
    """The error shown beside the input ``name`` (its label holds both)."""
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    match = re.search(rf'<label[^>]*>(?:(?!</label>).)*name="{name}"(?:(?!</label>).)*</label>', html, re.S)
    assert match, f"no label around the input {name}"
    error = re.search(r'<span class="error">([^<]+)</span>', match.group(0))
    assert error, f"no error beside {name}: {match.group(0)}"
    return error.group(1)


def test_a_custom_range_ending_before_it_starts_is_shown_beside_the_end(churn_v1, owner, client_for):
    params = {"range": "custom", "start": "2026-11-20T00:00", "end": "2026-11-10T00:00"}
    response = client_for(owner).get(reverse("monitoring:model_dashboard", args=["churn"]), params)
    assert field_error(response, "end") == "The start must be before the end."
    assert 'id="range-picker"' in response.content.decode(), "the dashboard itself, drawn for its default range"


def test_a_fleet_search_longer_than_100_characters_is_a_form_error(owner, client_for, churn):
    response = client_for(owner).get(reverse("monitoring:fleet"), {"q": "x" * 101})
    assert "at most 100 characters" in field_error(response, "q")
    assert 'name="q" maxlength="100"' in client_for(owner).get(reverse("monitoring:fleet")).content.decode()


def test_the_fleet_fragment_polled_by_htmx_keeps_the_json_error(owner, client_for):
    response = client_for(owner).get(reverse("monitoring:fleet_live"), {"q": "x" * 101}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and response.json()["error"]["details"]["q"]


def test_alert_days_out_of_range_is_a_form_error(owner, client_for):
    response = client_for(owner).get(reverse("monitoring:alert_list"), {"days": "9999"})
    assert "less than or equal to 365" in field_error(response, "days")


def test_scorecard_ack_hours_out_of_range_is_a_form_error(owner, client_for):
    response = client_for(owner).get(reverse("monitoring:scorecard"), {"ack_hours": "0"})
    assert "greater than or equal to 1" in field_error(response, "ack_hours")


def test_an_acknowledgement_without_a_comment_is_shown_beside_that_alerts_comment(owner, client_for, churn):
    alert = AlertFactory(model=churn)
    response = client_for(owner).post(reverse("monitoring:alert_acknowledge", args=[alert.pk]), {"comment": " "})
    assert field_error(response, "comment") == "This field is required."
    assert Alert.objects.get().status == "open"
    htmx = client_for(owner).post(
        reverse("monitoring:alert_acknowledge", args=[alert.pk]), {"comment": ""}, HTTP_HX_REQUEST="true"
    )
    assert htmx.status_code == 400 and htmx.json()["error"]["message"] != "Invalid filter values."


def test_a_malformed_retention_is_shown_beside_the_field_on_the_privacy_page(privacy, client_for, churn):
    response = client_for(privacy).post(reverse("monitoring:retention_update", args=["churn"]), {"raw_days": "0"})
    assert "greater than or equal to 1" in field_error(response, "raw_days")
    assert "Invalid filter values." not in response.content.decode()
    assert not RetentionPolicy.objects.exists()


def test_a_bad_since_in_the_browser_is_a_form_error(churn_v1, owner, client_for):
    response = client_for(owner).get(reverse("monitoring:batches_since", args=["churn"]), {"since": "yesterday"})
    assert response.status_code == 400 and response["Content-Type"].startswith("text/html")
    assert '<p class="error"' in response.content.decode() and "hx-get" not in response.content.decode()
