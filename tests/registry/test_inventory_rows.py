"""The inventory table's rows are built in Python (``model_rows``): the markup must be exactly
what the template row gave, with every value escaped, whatever the data."""

# The reference row below is the template itself, one long line per cell.
# ruff: noqa: E501

from datetime import UTC, datetime

import pytest
from django.template import engines
from django.urls import reverse

from monitoring.models import HealthStatus
from registry.choices import RiskTier, Stage
from registry.models import RegisteredModel
from registry.selectors.inventory import model_list
from registry.views.inventory import model_rows
from tests.factories import ModelVersionFactory, RegisteredModelFactory, TeamFactory, UserFactory

# The row as the template wrote it before it moved to Python (the reference the rows must match).
TEMPLATE_ROW = """{% for m in models %}    <tr>
      <td><a href="{{ m.get_absolute_url }}"><strong>{{ m.name }}</strong></a>{% if m.description %}<div class="muted small">{{ m.description|truncatechars:90 }}</div>{% endif %}</td>
      <td>{{ m.team.name }}</td>
      <td>{{ m.owner.get_username }}</td>
      <td><span class="badge badge-{{ m.risk_tier }}">{{ m.get_risk_tier_display }}</span></td>
      <td>{% with h=m.health.status|default:"no_data" %}<span class="badge badge-{{ h }}">{{ h }}</span>{% endwith %}</td>
      <td>{% if m.production_version %}<a href="{% url 'registry:version_detail' m.name m.production_version %}"><span class="badge badge-production">v{{ m.production_version }}</span></a>{% else %}<span class="badge badge-none">none</span>{% endif %}</td>
      <td>{{ m.version_count }}{% if m.latest_version %} <span class="muted">(latest v{{ m.latest_version }})</span>{% endif %}</td>
      <td>{% for t in m.tags.all %}<a class="tag" href="?tag={{ t.name|urlencode }}">{{ t.name }}</a> {% endfor %}</td>
      <td title="{{ m.updated_at|date:'c' }}">{{ m.updated_at|date:"Y-m-d H:i" }}</td>
    </tr>
{% endfor %}"""


@pytest.fixture
def awkward(db, owner, team):
    """Models whose fields need escaping, with and without versions, tags, production and health."""
    odd_team = TeamFactory(name='R&D <"labs">', slug="rnd")
    odd_owner = UserFactory(username="o'brien+x@corp")
    full = RegisteredModelFactory(
        name="a-full",
        owner=odd_owner,
        team=odd_team,
        risk_tier=RiskTier.HIGH,
        description='<script>alert("x")</script> & ' + "long " * 40,
    )
    for tag in ("pii", "customer-facing", "z_9"):
        full.tags.create(name=tag)
    ModelVersionFactory(model=full, stage=Stage.ARCHIVED)
    ModelVersionFactory(model=full, stage=Stage.PRODUCTION)
    ModelVersionFactory(model=full, stage=Stage.STAGING)
    HealthStatus.objects.create(model=full, status="critical", reasons=[], computed_at=datetime.now(UTC))
    RegisteredModelFactory(name="b-empty", owner=owner, team=team, description="", risk_tier=RiskTier.LOW)
    staged = RegisteredModelFactory(name="c-staged", owner=owner, team=team, description="x" * 90)
    ModelVersionFactory(model=staged, stage=Stage.STAGING)
    HealthStatus.objects.create(model=staged, status="no_data", reasons=[], computed_at=datetime.now(UTC))
    # An updated_at with no microseconds and one at the end of a day
    RegisteredModel.objects.filter(name="b-empty").update(updated_at=datetime(2026, 3, 1, 23, 59, 0, tzinfo=UTC))


@pytest.mark.parametrize("time_zone", ["UTC", "Europe/Berlin"])
def test_rows_are_the_template_rows_byte_for_byte(awkward, admin_user, settings, time_zone):
    settings.TIME_ZONE = time_zone
    models = list(model_list(user=admin_user))
    assert len(models) == 3
    expected = engines["django"].from_string(TEMPLATE_ROW).render({"models": models})
    assert "".join(f"    {row}\n" for row in model_rows(models)) == expected


def test_row_values_are_escaped(awkward, admin_user):
    html = "".join(model_rows(model_list(user=admin_user)))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "R&amp;D &lt;&quot;labs&quot;&gt;" in html
    assert "o&#x27;brien+x@corp" in html
    assert f'href="{reverse("registry:version_detail", args=["a-full", 2])}"' in html


def test_inventory_page_shows_the_rows(awkward, client_for, admin_user):
    response = client_for(admin_user).get(reverse("registry:model_list"))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<tr>\n      <td><a href="/models/') == 3
    assert '<span class="badge badge-critical">critical</span>' in html
    fragment = client_for(admin_user).get(reverse("registry:model_list") + "?q=zzz", HTTP_HX_REQUEST="true")
    assert "No models match." in fragment.content.decode()


def test_rows_from_tag_name_arrays_are_the_rows_from_prefetched_tags(awkward, admin_user):
    from registry.selectors.inventory import with_tag_names

    prefetched = list(model_list(user=admin_user))
    arrays = list(with_tag_names(model_list(user=admin_user)))
    assert model_rows(arrays) == model_rows(prefetched)
    Tag = RegisteredModel.tags.rel.model
    RegisteredModel.objects.get(name="a-full").tags.add(Tag.objects.create(name="aaa"))
    fresh = "".join(model_rows(with_tag_names(model_list(user=admin_user))))
    assert '<a class="tag" href="?tag=aaa">aaa</a> <a class="tag" href="?tag=customer-facing">' in fresh
