"""Daily pipeline snapshots (one INSERT ... SELECT, once a day, thinned with age), the trend
report built on them, and the periodic task that takes them."""

import datetime as dt
from decimal import Decimal

import pytest
from flask import g
from huey.api import PeriodicTask

from crm_core.accounts import services as accounts
from crm_core.analysis import snapshots
from crm_core.analysis.models import PipelineSnapshot
from crm_core.analysis.reports import Filters
from crm_core.errors import UserError
from crm_core.opportunities import services as opps
from crm_core.opportunities.models import Opportunity, Pipeline, Stage, StageChange
from crm_core.testing import api_client, make_sales_team, make_user

DAY = dt.date(2026, 3, 2)


def stage(key):
    return Stage.get((Stage.key == key) & (Stage.pipeline == Pipeline.get(Pipeline.key == "sales")))


@pytest.fixture
def world(app):
    people = make_sales_team()
    rita, bob = people["rita"], people["bob"]
    mine = accounts.create_account({"name": "Minh An"}, actor_id=rita.id)
    bobs = accounts.create_account({"name": "Hòa Phát"}, actor_id=bob.id)
    reason = opps.create_lost_reason({"name": "Price"})

    def deal(owner, account, name, amount, **values):
        return opps.create_opportunity({"name": name, "account_id": account.id, "amount": Decimal(amount),
                                        "expected_close_date": dt.date(2026, 3, 31), **values}, actor_id=owner.id)

    deals = {name: deal(rita, mine, name, amount) for name, amount in
             (("moves", "100"), ("wins", "200"), ("loses", "300"), ("slips", "400"), ("stays", "500"))}
    deals["bobs"] = deal(bob, bobs, "Bob's", "600")
    deals["closed"] = deal(rita, mine, "Won long ago", "50")
    opps.move(deals["closed"], stage("sale_agreed").id, actor_id=rita.id)
    admin = make_user("admin@example.com", "Admin", is_admin=True)
    g.pop("_crm_access", None)
    return {**people, "admin": admin, "deals": deals, "reason": reason, "mine": mine, "bobs": bobs}


def change(world):
    """What happens after the snapshot of DAY."""
    rita, deals = world["rita"], world["deals"]
    fresh = lambda name: Opportunity.get_by_id(deals[name].id)  # noqa: E731
    opps.move(fresh("moves"), stage("negotiating").id, actor_id=rita.id)
    opps.move(fresh("wins"), stage("sale_agreed").id, actor_id=rita.id)
    opps.move(fresh("loses"), stage("sale_lost").id, actor_id=rita.id, lost_reason_id=world["reason"].id)
    opps.update_opportunity(fresh("slips"), {"expected_close_date": dt.date(2026, 5, 31)}, actor_id=rita.id)
    opps.update_opportunity(fresh("stays"), {"expected_close_date": dt.date(2026, 3, 1)}, actor_id=rita.id)  # earlier
    opps.update_opportunity(fresh("bobs"), {"expected_close_date": dt.date(2026, 6, 30)}, actor_id=world["bob"].id)
    added = opps.create_opportunity({"name": "New", "account_id": world["mine"].id, "amount": Decimal("700")},
                                    actor_id=rita.id)
    return added


def test_a_snapshot_holds_every_open_opportunity_once_a_day(world):
    assert snapshots.take_snapshot(DAY) == 6  # the won deal is not in the pipeline
    assert snapshots.take_snapshot(DAY) == 0  # a second run of the day adds nothing
    rows = {r.opportunity_id: r for r in PipelineSnapshot.select().where(PipelineSnapshot.day == DAY)}
    assert len(rows) == 6 and world["deals"]["closed"].id not in rows
    moves = rows[world["deals"]["moves"].id]
    assert (moves.owner_id, moves.stage_id, moves.status, moves.currency, moves.amount, moves.probability,
            moves.expected_close_date) == (world["rita"].id, stage("qualified").id, "open", "USD",
                                           Decimal("100"), 10, dt.date(2026, 3, 31))
    opps.delete_opportunity(Opportunity.get_by_id(world["deals"]["stays"].id), actor_id=world["rita"].id)
    assert snapshots.take_snapshot(DAY + dt.timedelta(days=1)) == 5  # deleted ones are gone


def test_old_snapshots_are_thinned_to_the_first_of_each_month(world):
    for day in (dt.date(2026, 1, 1), dt.date(2026, 1, 2), dt.date(2026, 1, 15), dt.date(2026, 2, 3),
                dt.date(2026, 2, 4), dt.date(2026, 3, 1)):
        snapshots.take_snapshot(day)
    assert snapshots.thin(day=dt.date(2026, 3, 5), keep_days=20) == 3
    assert snapshots.snapshot_days() == [dt.date(2026, 3, 1), dt.date(2026, 2, 3), dt.date(2026, 1, 1)]
    assert snapshots.thin(day=dt.date(2026, 3, 5), keep_days=20) == 0


def test_the_trend_names_what_moved_was_added_won_lost_and_slipped(world):
    snapshots.take_snapshot(DAY)
    Opportunity.update(created_at=dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)).execute()
    added = change(world)
    Opportunity.update(created_at=dt.datetime(2026, 3, 5, tzinfo=dt.timezone.utc)).where(
        Opportunity.id == added.id).execute()
    deals = world["deals"]
    report = snapshots.trend_report(world["admin"].id, DAY + dt.timedelta(days=3))  # the latest snapshot before
    assert report["snapshot_day"] == DAY
    counts = {c["key"]: (c["count"], [(e["currency"], e["amount"]) for e in c["totals"]]) for c in report["categories"]}
    assert counts == {"added": (1, [("USD", Decimal("700"))]), "won": (1, [("USD", Decimal("200"))]),
                      "lost": (1, [("USD", Decimal("300"))]), "moved": (1, [("USD", Decimal("100"))]),
                      "slipped": (2, [("USD", Decimal("1000"))])}
    for category, expected in (("added", {added.id}), ("won", {deals["wins"].id}), ("lost", {deals["loses"].id}),
                               ("moved", {deals["moves"].id}), ("slipped", {deals["slips"].id, deals["bobs"].id})):
        listed = snapshots.trend_report(world["admin"].id, DAY, category=category)
        assert {item["id"] for item in listed["items"]} == expected, category
    moved = snapshots.trend_report(world["admin"].id, DAY, category="moved")["items"][0]
    assert (moved["then_stage"], moved["stage"]) == ("Qualified", "Negotiating")
    slipped = snapshots.trend_report(world["admin"].id, DAY, category="slipped", per_page=1, page=2)
    assert slipped["total"] == 2 and len(slipped["items"]) == 1
    assert slipped["items"][0]["then_expected_close_date"] == dt.date(2026, 3, 31)


def test_the_trend_shows_a_reader_only_what_they_may_see_now(world):
    snapshots.take_snapshot(DAY)
    change(world)
    rita = {c["key"]: c["count"] for c in snapshots.trend_report(world["rita"].id, DAY)["categories"]}
    bob = {c["key"]: c["count"] for c in snapshots.trend_report(world["bob"].id, DAY)["categories"]}
    assert rita["slipped"] == 1 and bob == {"added": 0, "won": 0, "lost": 0, "moved": 0, "slipped": 1}
    mine_only = snapshots.trend_report(world["admin"].id, DAY, Filters(owner_id=world["bob"].id))
    assert {c["key"]: c["count"] for c in mine_only["categories"]}["slipped"] == 1


def test_the_trend_before_any_snapshot_is_a_clear_error(app, world):
    with pytest.raises(UserError) as refused:
        snapshots.trend_report(world["admin"].id, DAY)
    assert "since" in refused.value.fields
    client = api_client(app, world["rita"])
    response = client.get("/api/v1/reports/trend?since=2026-03-02", headers={"Accept-Language": "vi"})
    assert response.status_code == 422 and "since" in response.get_json()["error"]["fields"]
    assert client.get("/api/v1/reports/trend").status_code == 400  # since is required
    assert client.get("/api/v1/reports/trend?since=2026-03-02&category=vanished").status_code == 400


def test_the_trend_api(app, world):
    snapshots.take_snapshot(DAY)
    change(world)
    client = api_client(app, world["rita"])
    body = client.get("/api/v1/reports/trend?since=2026-03-02&category=lost").get_json()
    assert body["snapshot_day"] == "2026-03-02"
    assert [item["name"] for item in body["items"]] == ["loses"] and body["total"] == 1
    assert {c["key"]: c["count"] for c in body["categories"]}["moved"] == 1


def test_the_daily_task_is_registered_with_its_schedule_and_takes_the_snapshot(app, world):
    jobs = app.extensions["crm_jobs"]
    assert "core.snapshot_pipeline" in jobs.names
    tasks = app.extensions["crm"].registries["tasks"]
    assert tasks.owner("core.snapshot_pipeline") == "core"
    assert issubclass(jobs._tasks["core.snapshot_pipeline"].task_class, PeriodicTask)
    schedule = tasks["core.snapshot_pipeline"].schedule
    assert schedule(dt.datetime(2026, 3, 2, 0, 5)) and not schedule(dt.datetime(2026, 3, 2, 12, 5))
    jobs.enqueue("core.snapshot_pipeline")  # CRM_JOBS_IMMEDIATE in tests: it runs now
    jobs.enqueue("core.snapshot_pipeline")
    assert PipelineSnapshot.select().where(PipelineSnapshot.day == snapshots.today()).count() == 6


def test_the_demo_spreads_the_history_and_leaves_a_week_old_snapshot(world):
    from crm_core.analysis import demo
    from crm_core.analysis.reports import velocity_report

    change(world)
    written = demo.load()
    week_ago = snapshots.today() - dt.timedelta(days=demo.WEEK)
    assert snapshots.snapshot_days() == [snapshots.today(), week_ago]
    assert written == PipelineSnapshot.select().count()
    assert demo.load() == 0  # once
    sales = next(p for p in velocity_report(world["admin"].id)["pipelines"] if p["name"] == "Sales")
    assert any(stage["average_days"] and stage["average_days"] >= 2 for stage in sales["stages"])
    # The week-old snapshot holds each deal in the stage its history says it was in then.
    start = dt.datetime.combine(week_ago, dt.time(), tzinfo=dt.timezone.utc)
    for row in PipelineSnapshot.select().where(PipelineSnapshot.day == week_ago):
        then = (StageChange.select().where((StageChange.opportunity == row.opportunity_id)
                                           & (StageChange.changed_at < start))
                .order_by(StageChange.changed_at.desc()).first())
        assert then.to_stage_id == row.stage_id
    assert all(c.changed_at < start + dt.timedelta(days=demo.WEEK) for c in StageChange.select())
