import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from registry.rules import can_change_model, can_register_model, can_request_promotion, can_view_model
from registry.selectors.inventory import model_get, model_list, version_get, version_list
from registry.services.audit import CLI
from registry.services.inventory import model_update
from tests.factories import ModelVersionFactory, RegisteredModelFactory, TeamFactory, UserFactory

EXPECTED = {
    # role: (view, change, register, request promotion)
    "owner": (True, True, True, True),
    "reviewer": (True, False, False, False),
    "auditor": (True, False, False, False),
    "admin": (True, True, True, True),
    "outsider": (False, False, False, False),
}


@pytest.mark.parametrize("role", list(EXPECTED))
def test_inventory_rules_per_role(roles, role, churn):
    user = roles[role]
    got = (
        can_view_model(user, churn),
        can_change_model(user, churn),
        can_register_model(user),
        can_request_promotion(user, churn),
    )
    assert got == EXPECTED[role]
    assert user.has_perm("registry.view_model", churn) == EXPECTED[role][0]
    assert user.has_perm("registry.change_model", churn) == EXPECTED[role][1]


def test_a_team_mate_sees_the_model_but_cannot_change_it(churn, team, last_seq):
    mate = UserFactory(username="mate")
    team.members.add(mate)
    assert can_view_model(mate, churn) and not can_change_model(mate, churn)
    assert [m.name for m in model_list(user=mate)] == ["churn"]
    start = last_seq()
    with pytest.raises(PermissionDenied):
        model_update(model=churn, actor=mate, context=CLI, changes={"description": "x"})
    assert last_seq() == start


def test_model_list_has_no_duplicates_when_owner_and_team_mates_overlap(owner, team, churn):
    for i in range(3):
        team.members.add(UserFactory(username=f"mate{i}"))
    RegisteredModelFactory(name="solo", owner=owner, team=TeamFactory(slug="solo"))
    names = [m.name for m in model_list(user=owner)]
    assert names == ["churn", "solo"]
    assert model_list(user=owner).count() == 2


def test_outsider_gets_404_from_every_inventory_selector(outsider, churn_v1):
    assert list(model_list(user=outsider)) == []
    with pytest.raises(Http404):
        model_get(user=outsider, name="churn")
    with pytest.raises(Http404):
        version_get(user=outsider, name="churn", version=1)
    assert list(version_list(user=outsider, model=churn_v1.model)) == []


def test_model_list_summarises_versions(owner, churn):
    ModelVersionFactory(model=churn, stage="archived")
    ModelVersionFactory(model=churn, stage="production")
    ModelVersionFactory(model=churn, stage="staging")
    row = model_list(user=owner).get(name="churn")
    assert (row.production_version, row.latest_version, row.version_count) == (2, 3, 3)


def test_model_list_filters_through_the_shared_filterset(owner, churn):
    from django.core.exceptions import ValidationError

    assert [m.name for m in model_list(user=owner, filters={"q": "chu"})] == ["churn"]
    assert list(model_list(user=owner, filters={"q": "zzz"})) == []
    with pytest.raises(ValidationError):
        model_list(user=owner, filters={"risk_tier": "extreme"})
