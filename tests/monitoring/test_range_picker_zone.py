"""The dashboard's custom range is read in UTC (monitoring.forms.UTCDateTimeField): the picker's
From and To say so, as the line under it does, instead of looking like the browser's local time."""

from __future__ import annotations

import re

import pytest

from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


def test_the_custom_range_fields_say_they_are_utc(churn, owner, client_for):
    ModelVersionFactory(model=churn)
    html = client_for(owner).get(
        f"/monitoring/models/{churn.name}/?range=custom&start=2026-03-01T09:00&end=2026-03-02T09:00"
    )
    page = html.content.decode()
    labels = re.findall(r'<label class="custom-range">(.*?)<input', page)
    assert labels == ["From (UTC)", "To (UTC)"]
    assert 'value="2026-03-01T09:00"' in page and "from 2026-03-01 09:00 UTC" in page
