"""History, recycle bin and security log through the API, under the access rules."""

import pytest

from crm_core.org.models import FieldRule
from crm_core.org.services import role_by_key, set_roles
from crm_core.recycle import services as recycle
from crm_core.records import create_record, update_record
from crm_core.testing import api_client, make_user
from crm_fx.models import FxAccount

pytestmark = pytest.mark.crm_plugins("fx")


@pytest.fixture
def reps(app):
    ann, bob = make_user("ann@example.com"), make_user("bob@example.com")
    set_roles(ann, ["sales_rep"])
    set_roles(bob, ["sales_rep"])
    return ann, bob


def test_history_follows_access_and_field_security(app, reps):
    ann, bob = reps
    account = create_record(FxAccount, name="A", owner_id=ann.id, industry="retail")
    update_record(account, {"name": "B", "industry": "mining"}, actor_id=ann.id)
    url = f"/api/v1/history/fx_account/{account.id}"
    mine = api_client(app, ann).get(url)
    assert mine.status_code == 200 and {row["field"] for row in mine.json} == {"name", "industry"}
    hidden = api_client(app, bob).get(url)
    missing = api_client(app, bob).get("/api/v1/history/fx_account/999999")
    assert hidden.status_code == missing.status_code == 404 and hidden.json == missing.json
    FieldRule.create(role=role_by_key("sales_rep"), object="fx_account", field="industry", level=0)
    assert {row["field"] for row in api_client(app, ann).get(url).json} == {"name"}


def test_recycle_bin_lists_and_restores_only_what_you_may(app, reps):
    ann, bob = reps
    group = recycle.move_to_bin(create_record(FxAccount, name="A", owner_id=ann.id), actor_id=ann.id)
    assert [g["label"] for g in api_client(app, ann).get("/api/v1/recycle-bin").json] == ["A"]
    assert api_client(app, bob).get("/api/v1/recycle-bin").json == []
    assert api_client(app, bob).post(f"/api/v1/recycle-bin/{group.id}/restore").status_code == 404
    assert api_client(app, ann).post(f"/api/v1/recycle-bin/{group.id}/restore").status_code == 204
    assert FxAccount.alive().count() == 1


def test_security_log_is_for_administrators(app, reps, client):
    ann, _ = reps
    assert api_client(app, ann).get("/api/v1/security-log").status_code == 403
    events = client.get("/api/v1/security-log?kind=denied").json
    assert events["total"] == 1 and events["items"][0]["subject"] == "GET /api/v1/security-log"
