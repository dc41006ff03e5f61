"""Realignment (crm_territory.realign and its API): the preview says what would move, the
job moves exactly that, manual placements stay, archived models are frozen."""

import json

import pytest
from flask import g

from crm_core.accounts import services as accounts
from crm_core.leads import services as leads
from crm_core.org import services as org
from crm_core.testing import api_client, make_user
from crm_territory import placement, realign, services
from crm_territory.models import TerritoryRealignment, TerritoryRecord

API = "/api/v1/plugins/territory"


@pytest.fixture
def world(app):
    """An active model (World > Vietnam > North, South; World > Poland), accounts and leads placed
    in it, then the plan changes behind their back: North now takes Đà Nẵng too, and a new
    root "Americas" comes before World."""
    people = {"admin": make_user(is_admin=True), "planner": make_user("planner@example.com", "Planner"),
              "rep": make_user("rep@example.com", "Rep")}
    org.set_roles(people["planner"], ["sales_manager"])
    org.set_roles(people["rep"], ["sales_rep"])
    g.pop("_crm_access", None)
    model = services.create_model("2027")
    t = {"model": model}
    t["world"] = services.create_territory(model.id, "World")
    t["vietnam"] = services.create_territory(model.id, "Vietnam", parent_id=t["world"].id, criteria={"country": ["VN"]})
    t["north"] = services.create_territory(model.id, "North", parent_id=t["vietnam"].id,
                                           criteria={"region": ["Hà Nội"]})
    t["south"] = services.create_territory(model.id, "South", parent_id=t["vietnam"].id, position=1,
                                           criteria={"region": ["Hồ Chí Minh"]})
    t["poland"] = services.create_territory(model.id, "Poland", parent_id=t["world"].id, position=2,
                                            criteria={"country": ["PL"]})
    services.activate_model(model)
    owner = people["planner"]
    records = {"account": [], "lead": []}
    for i, (country, region) in enumerate([("VN", "Hà Nội"), ("VN", "Đà Nẵng"), ("VN", "Đà Nẵng"),
                                           ("VN", "Hồ Chí Minh"), ("PL", None), ("US", None)]):
        # The planner owns the first and the last; the others belong to the administrator.
        who = owner if i in (0, 5) else people["admin"]
        records["account"].append(accounts.create_account(
            {"name": f"Firma {i}", "country": country, "region": region}, actor_id=who.id).id)
    records["lead"].append(leads.create_lead({"last_name": "Lê", "country": "VN", "region": "Đà Nẵng"},
                                             actor_id=people["admin"].id).id)
    placement.place_records("account", records["account"])
    placement.place_records("lead", records["lead"])
    placement.place_by_hand("account", records["account"][2], t["south"])
    services.update_territory(t["north"], {"criteria": {"region": ["Hà Nội", "Đà Nẵng"]}})
    t["americas"] = services.create_territory(model.id, "Americas", criteria={"country": ["US"]})
    services.update_territory(t["world"], {"position": 1})
    return {"people": people, "t": t, "records": records}


def placed(model_id):
    return {(r.object, r.record_id): (r.territory_id, r.source)
            for r in TerritoryRecord.select().where(TerritoryRecord.model_id == model_id)}


def test_the_preview_says_what_would_move_and_moves_nothing(app, world):
    t, ids = world["t"], world["records"]["account"]
    before = placed(t["model"].id)
    planner = api_client(app, world["people"]["planner"])
    response = planner.post(f"{API}/models/{t['model'].id}/realign", query_string={"preview": 1})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert placed(t["model"].id) == before
    assert body["state"] == "previewed" and body["preview_only"] is True
    assert body["totals"] == {"examined": 7, "moved": 3, "manual": 1, "unplaced": 0}
    moves = {(m["object"], m["from"]["name"], m["to"]["name"]): m["count"] for m in body["moves"]}
    # Account 1 and the lead go Vietnam -> North (account 2 is placed by hand); account 5
    # goes to the new Americas root.
    assert moves == {("account", "Vietnam", "North"): 1, ("lead", "Vietnam", "North"): 1,
                     ("account", "World", "Americas"): 1}
    assert body["progress"] == 1.0
    # The planner reads their own accounts, not the administrator's.
    assert [(s["object"], s["id"]) for s in body["sample"]] == [("account", ids[5])]
    assert body["sample"][0]["label"] == "Firma 5" and body["sample"][0]["to"]["name"] == "Americas"
    admin = api_client(app, world["people"]["admin"])
    sample = admin.post(f"{API}/models/{t['model'].id}/realign?preview=1").get_json()["sample"]
    assert [(s["object"], s["id"]) for s in sample] == [("account", ids[1]), ("account", ids[5]),
                                                         ("lead", world["records"]["lead"][0])]


def test_the_job_applies_what_the_preview_said(app, world):
    t, ids = world["t"], world["records"]["account"]
    planner = api_client(app, world["people"]["planner"])
    preview = planner.post(f"{API}/models/{t['model'].id}/realign?preview=1").get_json()
    response = planner.post(f"{API}/models/{t['model'].id}/realign")
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert response.headers["Location"].endswith(body["status_url"])
    assert body["status_url"] == f"{API}/realignments/{body['id']}"
    # Jobs run inline in the tests: the run is already done.
    status = planner.get(body["status_url"]).get_json()
    assert status["state"] == "applied" and status["progress"] == 1.0
    assert status["examined"] == status["total"] == 7 and status["moved"] == 3
    assert status["moves"] == preview["moves"] and status["totals"] == preview["totals"]
    assert "sample" not in status
    after = placed(t["model"].id)
    assert after[("account", ids[1])] == (t["north"].id, "rule")
    assert after[("account", ids[2])] == (t["south"].id, "manual")  # placed by hand: stays
    assert after[("account", ids[4])] == (t["poland"].id, "rule")
    assert after[("account", ids[5])] == (t["americas"].id, "rule")
    assert after[("lead", world["records"]["lead"][0])] == (t["north"].id, "rule")
    # A second run finds nothing to move.
    again = planner.post(f"{API}/models/{t['model'].id}/realign?preview=1").get_json()
    assert again["totals"]["moved"] == 0 and again["moves"] == []


def test_small_batches_give_the_same_result(app_factory):
    app = app_factory(CRM_PLUGIN_CONFIG={"territory": {"realign_batch": 100}})
    with app.app_context():
        model = services.create_model("Big")
        root = services.create_territory(model.id, "World")
        even = services.create_territory(model.id, "Even", parent_id=root.id, criteria={"industry": ["even"]})
        from crm_core.accounts.models import Account
        from crm_core.db import utcnow

        admin = make_user(is_admin=True)
        # Written as a script would, without announcing them: nothing places them but the run.
        now = utcnow()
        Account.insert_many([{"name": f"A{i}", "industry": "even" if i % 2 == 0 else "odd", "owner_id": admin.id,
                              "version": 1, "created_at": now, "updated_at": now} for i in range(250)]).execute()
        ids = [i for (i,) in Account.select(Account.id).order_by(Account.id).tuples()]
        run = realign.start(model, admin.id)
        run = TerritoryRealignment.get_by_id(run.id)
        assert run.state == "applied" and run.examined == run.total == 250 and run.moved == 250
        rows = placed(model.id)
        assert all(rows[("account", i)] == ((even if n % 2 == 0 else root).id, "rule") for n, i in enumerate(ids))
        assert json.loads(run.summary)["totals"]["moved"] == 250


def test_realignment_needs_the_permission(app, world):
    model_id = world["t"]["model"].id
    rep = api_client(app, world["people"]["rep"])
    for call in (lambda: rep.post(f"{API}/models/{model_id}/realign?preview=1"),
                 lambda: rep.post(f"{API}/models/{model_id}/realign"),
                 lambda: rep.get(f"{API}/models/{model_id}/realignments")):
        response = call()
        assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"
    assert not TerritoryRealignment.select().exists()


def test_an_archived_or_missing_model_cannot_be_realigned(app, world):
    model = world["t"]["model"]
    services.activate_model(services.create_model("2028"))
    admin = api_client(app, world["people"]["admin"])
    before = placed(model.id)
    for query in ({"preview": 1}, {}):
        response = admin.post(f"{API}/models/{model.id}/realign", query_string=query,
                              headers={"Accept-Language": "vi"})
        assert response.status_code == 409
        assert response.get_json()["error"]["message"] == "Mô hình đã lưu trữ bị khóa: không thể phân bổ lại."
    assert placed(model.id) == before and not TerritoryRealignment.select().exists()
    assert admin.post(f"{API}/models/987654/realign").status_code == 404
    assert admin.get(f"{API}/realignments/987654").status_code == 404
    assert admin.post(f"{API}/models/{model.id}/realign", query_string={"preview": "maybe"}).status_code == 400


def test_one_run_at_a_time(app, world):
    model = world["t"]["model"]
    from crm_core.db import utcnow

    TerritoryRealignment.create(model_id=model.id, state="running", updated_at=utcnow())
    admin = api_client(app, world["people"]["admin"])
    response = admin.post(f"{API}/models/{model.id}/realign", headers={"Accept-Language": "pl"})
    assert response.status_code == 409
    assert response.get_json()["error"]["message"] == "Ponowny podział tego modelu już trwa."
    assert TerritoryRealignment.select().count() == 1
    # A run that stopped reporting long ago is dead: a new one may start.
    import datetime as dt

    TerritoryRealignment.update(updated_at=utcnow() - dt.timedelta(hours=1)).execute()
    assert admin.post(f"{API}/models/{model.id}/realign").status_code == 202


def test_runs_of_a_model_newest_first(app, world):
    model_id = world["t"]["model"].id
    admin = api_client(app, world["people"]["admin"])
    first = admin.post(f"{API}/models/{model_id}/realign?preview=1").get_json()["id"]
    second = admin.post(f"{API}/models/{model_id}/realign").get_json()["id"]
    page = admin.get(f"{API}/models/{model_id}/realignments").get_json()
    assert [r["id"] for r in page["items"]] == [second, first]
    assert page["total"] == 2 and page["page"] == 1
    only = admin.get(f"{API}/models/{model_id}/realignments", query_string={"state": "previewed"}).get_json()
    assert [r["id"] for r in only["items"]] == [first]
    assert admin.get(f"{API}/models/{model_id}/realignments", query_string={"state": "nope"}).status_code == 400


def test_a_run_whose_model_went_away_fails_cleanly(app, world):
    model = world["t"]["model"]
    run = TerritoryRealignment.create(model_id=model.id, state="queued")
    services.activate_model(services.create_model("2028"))
    realign.run(run.id)
    run = TerritoryRealignment.get_by_id(run.id)
    assert run.state == "failed" and run.error == "model_gone" and run.finished_at is not None
    body = api_client(app, world["people"]["admin"]).get(f"{API}/realignments/{run.id}",
                                                         headers={"Accept-Language": "ru"}).get_json()
    assert body["state"] == "failed"
    assert body["error"] == "Модель была удалена или отправлена в архив до запуска перераспределения."


def test_a_failing_run_is_marked_failed(app, world, monkeypatch):
    model = world["t"]["model"]

    def broken(moves, now=None):
        raise RuntimeError("disk full")

    monkeypatch.setattr(placement, "write", broken)
    run = TerritoryRealignment.create(model_id=model.id, state="queued")
    with pytest.raises(RuntimeError):
        realign.run(run.id)
    assert TerritoryRealignment.get_by_id(run.id).state == "failed"


def test_placements_of_purged_records_are_dropped(app, world):
    from crm_core.accounts.models import Account

    t, ids = world["t"], world["records"]["account"]
    gone = ids[0]
    # Hard-deleted (a purge of the recycle bin): its placement is an orphan.
    Account.delete().where(Account.id == gone).execute()
    realign.start(t["model"], world["people"]["admin"].id)
    assert ("account", gone) not in placed(t["model"].id)
