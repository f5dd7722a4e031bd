"""Saving an edit form without changing anything says so: no "updated" message for an edit that
wrote nothing (the service writes no row and no audit event then)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from registry.models import AuditEvent
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


class _Fields(HTMLParser):
    """The values a browser would post for the page's main form (inputs, selects, textareas)."""

    def __init__(self):
        super().__init__()
        self.data: dict[str, str] = {}
        self._select = self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "checkbox"):
            self.data[name] = a.get("value") or ""
        elif tag == "input" and name and "checked" in a:
            self.data[name] = a.get("value") or "on"
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select] = a.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data.removeprefix("\n") if not self.data[self._textarea] else data


def _unchanged_post(client, url):
    parser = _Fields()
    parser.feed(client.get(url).content.decode())
    return client.post(url, parser.data, follow=True)


def test_saving_the_model_card_unchanged_says_nothing_changed(churn, owner, client_for):
    client = client_for(owner)  # its login is audited
    events = AuditEvent.objects.count()
    page = _unchanged_post(client, f"/models/{churn.name}/edit/").content.decode()
    assert AuditEvent.objects.count() == events
    assert "Nothing to save: no field was changed." in page and "updated." not in page


def test_saving_a_version_unchanged_says_nothing_changed(churn, owner, client_for):
    version = ModelVersionFactory(model=churn)
    client = client_for(owner)
    events = AuditEvent.objects.count()
    page = _unchanged_post(client, f"/models/{churn.name}/versions/{version.version}/edit/").content.decode()
    assert AuditEvent.objects.count() == events
    assert "Nothing to save: no field was changed." in page and "updated." not in page
