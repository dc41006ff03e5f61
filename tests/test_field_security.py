"""Field-level security on every channel of a resource: list, detail, filter, sort, write."""

import pytest

from crm_core.org.models import FieldRule
from crm_core.org.services import role_by_key, set_roles
from crm_core.records import create_record
from crm_core.testing import api_client, make_user
from crm_fx.models import FxAccount

pytestmark = pytest.mark.crm_plugins("fx")
URL = "/api/v1/plugins/fx/accounts"


@pytest.fixture
def rep(app):
    user = make_user("rep@example.com")
    set_roles(user, ["sales_rep"])
    create_record(FxAccount, name="Mine", owner_id=user.id, industry="retail")
    create_record(FxAccount, name="Theirs", owner_id=user.id + 1000, industry="mining")
    return api_client(app, user)


def test_lists_count_only_what_the_caller_may_see(rep, client):
    assert rep.get(URL).json["total"] == 1
    assert client.get(URL).json["total"] == 2  # an administrator


def test_a_hidden_field_is_stripped_and_cannot_be_filtered_sorted_or_written(app, rep):
    FieldRule.create(role=role_by_key("sales_rep"), object="fx_account", field="industry", level=0)
    listed = rep.get(URL).json["items"][0]
    assert "industry" not in listed and listed["name"] == "Mine"
    detail = rep.get(f"{URL}/{listed['id']}")
    assert "industry" not in detail.json
    filtered = rep.get(f"{URL}?industry=retail")
    assert filtered.status_code == 400 and filtered.json["error"]["code"] == "hidden_field"
    write = rep.patch(f"{URL}/{listed['id']}", json={"industry": "oil"},
                      headers={"If-Match": detail.headers["ETag"]})
    assert write.status_code == 422 and "industry" in write.json["error"]["fields"]
    assert FxAccount.get_by_id(listed["id"]).industry == "retail"


def test_a_read_only_field_is_shown_but_not_written(app, rep):
    FieldRule.create(role=role_by_key("sales_rep"), object="fx_account", field="amount", level=1)
    item = rep.get(URL).json["items"][0]
    detail = rep.get(f"{URL}/{item['id']}")
    assert "amount" in detail.json
    refused = rep.patch(f"{URL}/{item['id']}", json={"amount": "5", "currency": "EUR"},
                        headers={"If-Match": detail.headers["ETag"]})
    assert refused.status_code == 422 and list(refused.json["error"]["fields"]) == ["amount"]
    sorted_by_amount = rep.get(f"{URL}?sort=amount")
    assert sorted_by_amount.status_code == 200  # readable: sorting is fine


def test_sorting_by_a_hidden_field_is_refused(app, rep):
    FieldRule.create(role=role_by_key("sales_rep"), object="fx_account", field="amount", level=0)
    response = rep.get(f"{URL}?sort=-amount")
    assert response.status_code == 400 and "amount" in response.json["error"]["fields"]


def test_no_object_permission_is_403_for_the_whole_function(app):
    user = make_user("nobody@example.com")
    client = api_client(app, user)
    assert client.get(URL).status_code == 403
    assert client.get(f"{URL}/1").status_code == 403
