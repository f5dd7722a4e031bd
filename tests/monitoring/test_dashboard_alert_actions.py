"""The dashboard's active-alerts box lets whoever may act on an alert do so from where they see
it: acknowledge it (on the alerts page, at the alert) or open an incident from it. It listed
the alerts with one link to the alerts page, though the page already knew the user could act."""

from __future__ import annotations

import pytest
from django.urls import reverse

from monitoring.choices import AlertStatus
from monitoring.models import Alert

pytestmark = pytest.mark.django_db


def test_the_owner_can_acknowledge_or_open_an_incident_from_the_dashboard(client_for, owner, seeded):
    alert = Alert.objects.get(model=seeded, status=AlertStatus.OPEN)
    html = client_for(owner).get(reverse("monitoring:model_dashboard", args=[seeded.name])).content.decode()
    box = html.split('class="card open-alerts"', 1)[1].split("</div>", 1)[0]
    assert f'{reverse("monitoring:alert_list")}?model={seeded.name}#alert-{alert.pk}">Acknowledge…' in box
    assert f'{reverse("monitoring:incident_open")}?alert={alert.pk}">Open incident…' in box


def test_read_only_roles_see_the_alerts_without_actions(client_for, auditor, seeded):
    html = client_for(auditor).get(reverse("monitoring:model_dashboard", args=[seeded.name])).content.decode()
    box = html.split('class="card open-alerts"', 1)[1].split("</div>", 1)[0]
    assert "Acknowledge" not in box and "Open incident" not in box
