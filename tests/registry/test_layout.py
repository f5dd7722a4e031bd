"""The layout around every page (base.html): its links are computed once per process and
script prefix (mlops_portal.context_processors.layout), and must still be the right ones."""

import re

import pytest
from django.db import connection
from django.templatetags.static import static
from django.test import override_settings
from django.urls import clear_script_prefix, reverse, set_script_prefix

from mlops_portal.context_processors import LAYOUT_STATIC, LAYOUT_URLS


def _links(html: str) -> set[str]:
    return set(re.findall(r'(?:href|src|action)="([^"]+)"', html))


@pytest.mark.parametrize("role", ["owner", "reviewer", "auditor", "privacy", "admin", "outsider"])
def test_every_layout_link_is_the_reversed_url_or_static_file(roles, role, client_for):
    html = client_for(roles[role]).get(reverse("registry:model_list")).content.decode()
    links = _links(html)
    gated = {"audit", "privacy"}  # shown only to those who may read them
    for key, name in LAYOUT_URLS.items():
        assert (reverse(name) in links) is (key not in gated or role in ("auditor", "privacy", "admin")), key
    for path in LAYOUT_STATIC.values():
        assert static(path) in links


def test_the_login_page_has_the_static_links_and_no_navigation(db, client):
    html = client.get(reverse("login")).content.decode()
    assert {static(path) for path in LAYOUT_STATIC.values()} <= _links(html)
    assert reverse("monitoring:fleet") not in _links(html)


def test_layout_links_follow_the_script_prefix_of_each_request(reviewer, client_for):
    client = client_for(reviewer)
    set_script_prefix("/portal/")  # what WSGIHandler does for SCRIPT_NAME=/portal; the test client does not
    try:
        prefixed = _links(client.get("/models/").content.decode())
        prefixed_css = static("css/app.css")
    finally:
        clear_script_prefix()
    assert "/portal/models/" in prefixed and "/portal/tokens/" in prefixed
    assert prefixed_css in prefixed
    plain = _links(client.get("/models/").content.decode())
    assert "/models/" in plain and "/portal/models/" not in plain
    assert "/static/css/app.css" in plain


def test_layout_links_follow_changed_settings(reviewer, client_for):
    client = client_for(reviewer)
    assert "/static/js/app.js" in _links(client.get("/models/").content.decode())
    with override_settings(STATIC_URL="/assets/"):
        assert "/assets/js/app.js" in _links(client.get("/models/").content.decode())
    assert "/static/js/app.js" in _links(client.get("/models/").content.decode())


@pytest.mark.postgres  # transactional: the flush after it needs PostgreSQL (audit log triggers)
@pytest.mark.django_db(transaction=True)
def test_the_inventory_page_reads_outside_a_transaction_and_writes_still_run_in_one(client):
    """The inventory page writes nothing and skips ATOMIC_REQUESTS' BEGIN/COMMIT; a form that
    writes keeps its one transaction per request."""
    from tests.factories import RegisteredModelFactory, TeamFactory, UserFactory

    team = TeamFactory(slug="layout-team")
    owner = UserFactory(username="layout-owner")
    owner.teams.add(team)
    model = RegisteredModelFactory(name="layout-model", owner=owner, team=team)
    client.force_login(owner)
    seen = []

    def record(execute, sql, params, many, context):
        seen.append((sql, connection.in_atomic_block))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        assert client.get("/models/").status_code == 200
    assert seen and not any(atomic for _, atomic in seen)

    seen.clear()
    with connection.execute_wrapper(record):
        response = client.post(
            reverse("registry:model_edit", args=[model.name]),
            {
                "description": "edited",
                "name": model.name,
                "team": team.slug,
                "risk_tier": model.risk_tier,
                "intended_use": "x",
                "limitations": "y",
                "retrain_cadence_days": 30,
                "primary_metric": "roc_auc",
                "tags": "",
            },
        )
    assert response.status_code == 302, response.content[:500]
    writes = {sql: atomic for sql, atomic in seen if sql.split()[0] in ("INSERT", "UPDATE", "DELETE")}
    # The inventory revision is bumped after the commit, by design (registry/cache.py).
    after_commit = {sql for sql in writes if "registry_inventoryrevision" in sql}
    assert len(after_commit) == 1 and not any(writes[sql] for sql in after_commit)
    assert any("registry_registeredmodel" in sql for sql in writes)
    assert all(atomic for sql, atomic in writes.items() if sql not in after_commit), writes
    model.refresh_from_db()
    assert model.description == "edited"


def test_a_refused_page_keeps_the_layout_and_says_why(roles, client_for):
    """Django's bare 403 page has no favicon link (the browser then asks for /favicon.ico,
    gets a 404 and logs a console error) and no navigation back into the portal."""
    response = client_for(roles["owner"]).get(reverse("registry:audit_log"))
    assert response.status_code == 403
    html = response.content.decode()
    links = _links(html)
    assert static(LAYOUT_STATIC["favicon"]) in links
    assert reverse("monitoring:fleet") in links
    assert "You may not see this page" in html


@pytest.mark.parametrize("role", ["owner", "reviewer", "auditor", "privacy", "admin", "outsider"])
def test_only_admins_get_a_link_to_the_admin_site(roles, role, client_for):
    """An admin had no way to the admin site (users, teams, roles, policies) from the pages."""
    html = client_for(roles[role]).get(reverse("registry:model_list")).content.decode()
    assert (reverse("admin:index") in _links(html)) is (role == "admin")


def test_the_inventory_names_owners_as_the_fleet_does_and_says_no_data_in_words(owner, client_for, churn):
    """The inventory showed "owner" where the fleet showed "Olivia Owens", and the raw "no_data"."""
    owner.first_name, owner.last_name = "Olivia", "Owens"
    owner.save()
    html = client_for(owner).get(reverse("registry:model_list")).content.decode()
    row = re.search(r"<tr>\s*<td><a href=\"/models/churn/\">.*?</tr>", html, re.S).group(0)
    assert '<td title="owner">Olivia Owens</td>' in row
    assert '<span class="badge badge-no_data">no data</span>' in row, row


def test_the_address_browsers_ask_for_an_icon_leads_to_the_portals_icon(client, db):
    """The admin site names no icon, so the browser asked for /favicon.ico: a 404 in its console."""
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == static("favicon.svg")
