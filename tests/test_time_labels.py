"""One way to write a moment on the pages: ``2026-11-28 04:40 UTC`` (minutes, then the zone),
from the ``utc`` filter (``registry/templatetags/display.py``), the format the version page's
registration time always had: beside it the stage's time, on the alerts list, on the as-of page
and in the request page's live evidence."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.template import Context, Template
from django.urls import reverse

from registry.choices import Stage
from tests.factories import AlertFactory, ModelVersionFactory
from tests.registry.test_as_of import T0, D, H, timeline  # noqa: F401 - the as-of page's history

pytestmark = pytest.mark.django_db

MOMENT = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.datetime(2026, 11, 28, 4, 40, 59, tzinfo=dt.UTC), "2026-11-28 04:40 UTC"),
        (dt.datetime(2026, 11, 28, 5, 40, tzinfo=dt.timezone(dt.timedelta(hours=1))), "2026-11-28 04:40 UTC"),
        ("2026-11-23T06:00:00+00:00", "2026-11-23 06:00 UTC"),
        ("2026-11-23", "2026-11-23"),
        (None, ""),
    ],
)
def test_the_utc_filter_writes_minutes_and_the_zone(value, expected):
    assert Template("{% load display %}{{ v|utc }}").render(Context({"v": value})) == expected


def test_the_version_page_writes_the_stage_time_as_the_registration_time(owner, churn, client_for):
    version = ModelVersionFactory(model=churn, stage=Stage.STAGING)
    type(version).objects.filter(pk=version.pk).update(stage_changed_at=dt.datetime(2026, 11, 28, 4, 40, tzinfo=dt.UTC))
    text = _text(client_for(owner).get(version.get_absolute_url()).content.decode())
    assert "Stage since 2026-11-28 04:40 UTC" in text
    assert re.search(rf"Registered {MOMENT}", text)


def test_the_alerts_list_writes_its_times_with_the_zone(owner, churn, client_for):
    opened = dt.datetime(2026, 11, 28, 4, 40, tzinfo=dt.UTC)
    AlertFactory(model=churn, opened_at=opened, updated_at=opened)
    html = client_for(owner).get(reverse("monitoring:alert_list"), {"model": "churn"}).content.decode()
    assert ">2026-11-28 04:40 UTC</time>" in html


def test_the_as_of_page_writes_since_like_the_approval_times(timeline, auditor, client_for):  # noqa: F811
    response = client_for(auditor).get(reverse("registry:as_of"), {"time": (T0 + 2 * D + H).isoformat()})
    row = _text(re.search(r"<tbody>.*?</tbody>", response.content.decode(), re.S).group(0))
    since = (T0 + 2 * D).strftime("%Y-%m-%d %H:%M UTC")
    assert since in row and not re.search(r"\d\d:\d\d:\d\d", row)
    assert re.search(rf"\({MOMENT}\)", row)  # an approval's time
