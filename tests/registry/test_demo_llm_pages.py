"""The demo's LLM application on the portal's pages: the model, each version (its parts and
its diff against production), the timeline, the history and the compliance report render."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client


@pytest.mark.django_db
def test_the_support_assistant_pages_render_with_the_diff_against_production():
    call_command("load_demo", "--no-progress", "--no-monitoring")
    client = Client()
    client.force_login(get_user_model().objects.get(username="auditor"))
    base = "/models/support-assistant/"
    for url in [base, f"{base}timeline/", f"{base}history/", f"{base}report/", "/monitoring/models/support-assistant/"]:
        assert client.get(url).status_code == 200, url
    page = client.get(base).content.decode()
    assert "openai/gpt-4.1</code>" in page and "openai/gpt-4.1-mini</code>" in page
    assert "lineage incomplete" not in page
    v3 = client.get(f"{base}versions/3/").content.decode()
    assert "Changes against v2 (production)" in v3
    assert "issue_refund</code>: added" in v3 and "Rules removed: no-account-actions" in v3
    v2 = client.get(f"{base}versions/2/").content.decode()
    assert "openai/gpt-4.1-mini</code> → <code>openai/gpt-4.1</code>" in v2
    v1 = client.get(f"{base}versions/1/").content.decode()
    assert "Archived" in v1 and "Changes against v2 (production)" in v1
