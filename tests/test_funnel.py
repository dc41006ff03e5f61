"""The funnel: aggregates kept exact by the database's triggers on every write path, the
funnel's numbers on known data for each reader, the access rules (shares, team selling,
sharing rules, plugin restrictions), win rates over a period, currency conversion, and
the aggregate answer equal to a plain scan under the read filter for random companies."""

import datetime
import types
from decimal import Decimal

import pytest
from flask import g
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_core.accounts import services as accounts
from crm_core.db import database, vendor
from crm_core.errors import UserError
from crm_core.funnel import rates
from crm_core.funnel import services as funnel
from crm_core.funnel.models import FunnelClosedMonth, FunnelTotal
from crm_core.opportunities import services as opps
from crm_core.opportunities.models import Opportunity, Pipeline, Stage
from crm_core.org import services as org
from crm_core.org.models import Department
from crm_core.permissions import Level, engine
from crm_core.recycle import services as recycle
from crm_core.testing import make_sales_team, make_user

TODAY = datetime.date.today()


@pytest.fixture
def team(app):
    people = make_sales_team()
    org.set_default("account", "read")  # everyone may put deals on the same account
    return people


@pytest.fixture
def account(team):
    return accounts.create_account({"name": "Minh An"}, actor_id=team["rita"].id)


def stage(key):
    opps.default_pipeline()  # the registered pipelines are written on first use
    return Stage.get((Stage.key == key) & (Stage.pipeline == Pipeline.get(Pipeline.key == "sales")))


def new(account, owner, amount, key="qualified", **values):
    if key in ("sale_lost",):
        values.setdefault("lost_reason_id", _lost_reason().id)
    return opps.create_opportunity({"name": "Deal", "account_id": account.id, "owner_id": owner.id,
                                    "amount": Decimal(amount), "stage_id": stage(key).id, **values},
                                   actor_id=owner.id)


def _lost_reason():
    from crm_core.opportunities.models import LostReason

    return LostReason.alive().first() or opps.create_lost_reason({"name": "Price"})


def fresh():
    g.pop("_crm_access", None)


def by_stage(report):
    return {s["name"]: (s["count"], s["amount"], s["weighted_amount"]) for s in report["stages"]}


def scan(user_id, pipeline_id, scope=None):
    """The plain answer: every readable opportunity through the read filter, in Python."""
    totals = {}
    query = engine().query(user_id, "opportunity").where(Opportunity.pipeline == pipeline_id)
    for o in query:
        if scope is not None and o.owner_id not in scope:
            continue
        units = Opportunity.amount.db_value(o.amount) or 0
        bucket = totals.setdefault((o.stage_id, o.currency), [0, 0, 0])
        bucket[0] += 1
        bucket[1] += units
        bucket[2] += units * o.probability
    return totals


def aggregate_table():
    """The aggregate rows with a count, as {key: (count, amount, weighted)}."""
    return {(r.owner_id, r.pipeline_id, r.stage_id, r.currency): (r.count, int(r.amount), int(r.weighted))
            for r in FunnelTotal.select() if r.count}


def recomputed():
    totals = {}
    for o in Opportunity.alive():
        units = Opportunity.amount.db_value(o.amount) or 0
        key = (o.owner_id, o.pipeline_id, o.stage_id, o.currency)
        count, amount, weighted = totals.get(key, (0, 0, 0))
        totals[key] = (count + 1, amount + units, weighted + units * o.probability)
    return totals


def closed_recomputed():
    totals = {}
    for o in Opportunity.alive().where(Opportunity.status.in_(("won", "lost")) & Opportunity.closed_date.is_null(False)):
        key = (o.owner_id, o.pipeline_id, o.status, o.currency, o.closed_date.year * 100 + o.closed_date.month)
        count, amount = totals.get(key, (0, 0))
        totals[key] = (count + 1, amount + (Opportunity.amount.db_value(o.amount) or 0))
    return totals


def closed_table():
    return {(r.owner_id, r.pipeline_id, r.status, r.currency, r.month): (r.count, int(r.amount))
            for r in FunnelClosedMonth.select() if r.count}


# -- the triggers ------------------------------------------------------------------------------

def test_the_aggregates_follow_every_write_path(app, team, account):
    rita, bob, maria = team["rita"], team["bob"], team["maria"]
    first = new(account, rita, "1000")
    second = new(account, rita, "250.5", "negotiating")
    assert aggregate_table() == recomputed()
    assert aggregate_table()[(rita.id, first.pipeline_id, stage("qualified").id, "USD")] == (1, 10_000_000, 100_000_000)

    opps.move(second, stage("sale_agreed").id, actor_id=rita.id)  # a stage move closes it
    opps.update_opportunity(first, {"owner_id": bob.id, "amount": Decimal("1500"), "probability": 33},
                            actor_id=maria.id)
    assert aggregate_table() == recomputed() and closed_table() == closed_recomputed()
    assert closed_table() == {(rita.id, first.pipeline_id, "won", "USD", TODAY.year * 100 + TODAY.month): (1, 2_505_000)}

    group = recycle.move_to_bin(second, actor_id=rita.id)  # soft delete: counted nowhere
    assert aggregate_table() == recomputed() and closed_table() == {}
    recycle.restore(group, actor_id=rita.id)
    assert aggregate_table() == recomputed() and len(closed_table()) == 1

    # Bulk paths: raw executemany (imports), raw UPDATE (merge, transfer) and DELETE (purge).
    columns = ("name", "account_id", "owner_id", "pipeline_id", "stage_id", "status", "currency", "amount",
               "probability", "closed_date", "version", "created_at", "updated_at", "stage_changed_at")
    mark = "%s" if vendor() == "postgresql" else "?"
    now = Opportunity.created_at.db_value(first.created_at)
    rows = [(f"Bulk {i}", account.id, (rita.id, bob.id, maria.id)[i % 3], first.pipeline_id,
             stage(("qualified", "negotiating", "sale_lost")[i % 3]).id, ("open", "open", "lost")[i % 3],
             ("USD", "EUR")[i % 2], None if i % 5 == 0 else i * 10_000, (10, 70, 0)[i % 3],
             datetime.date(2025, 1 + i % 12, 1 + i % 28) if i % 3 == 2 else None, 1, now, now, now)
            for i in range(60)]
    with database.atomic():
        database.cursor().executemany(f'INSERT INTO "opportunity" ({", ".join(columns)}) VALUES '
                                      f'({", ".join([mark] * len(columns))})', rows)
    assert aggregate_table() == recomputed() and closed_table() == closed_recomputed()
    Opportunity.update(owner_id=maria.id).where(Opportunity.owner_id == bob.id).execute()
    Opportunity.update(currency="VND").where(Opportunity.name.startswith("Bulk 1")).execute()
    Opportunity.update(closed_date=datetime.date(2024, 2, 29)).where(Opportunity.status == "lost").execute()
    assert aggregate_table() == recomputed() and closed_table() == closed_recomputed()
    Opportunity.delete().where(Opportunity.name.startswith("Bulk 2")).execute()
    Opportunity.update(deleted_at=Opportunity.created_at).where(Opportunity.name.startswith("Bulk 3")).execute()
    assert aggregate_table() == recomputed() and closed_table() == closed_recomputed()
    Opportunity.update(name="Renamed").where(Opportunity.name == "Bulk 4").execute()  # nothing counted changes
    assert aggregate_table() == recomputed()


# -- the numbers, per reader ----------------------------------------------------------------------

@pytest.fixture
def deals(team, account):
    """Rita (Sales, under Maria): 2 qualified, 1 negotiating, 1 won, 1 lost; Bob (Other): 1
    qualified; Maria: 1 proposal."""
    rita, bob, maria = team["rita"], team["bob"], team["maria"]
    made = {
        "r1": new(account, rita, "1000"), "r2": new(account, rita, "500"),
        "r3": new(account, rita, "2000", "negotiating"),
        "r4": new(account, rita, "3000", "sale_agreed", closed_date=datetime.date(2026, 3, 10)),
        "r5": new(account, rita, "1000", "sale_lost", closed_date=datetime.date(2026, 4, 20)),
        "b1": new(account, bob, "700"),
        "m1": new(account, maria, "400", "proposal_submitted"),
    }
    fresh()
    return made


def test_a_rep_sees_only_their_own_funnel_with_counts_amounts_weights_and_win_rate(app, team, deals):
    report = funnel.funnel(team["rita"].id)
    assert by_stage(report) == {
        "Qualified": (2, "1500", "150"), "Proposal Submitted": (0, "0", "0"),
        "Negotiating": (1, "2000", "1400"), "Sale Agreed": (1, "3000", "3000"),
        "Sale Lost": (1, "1000", "0")}
    assert [s["kind"] for s in report["stages"]] == ["open", "open", "open", "won", "lost"]
    assert report["total_count"] == 3 and report["total_amount"] == "3500"
    assert report["weighted_amount"] == "1550" and report["win_rate"] == 0.5
    assert report["win_rate_value"] == 0.75 and report["currency"] == "USD"


def test_the_manager_sees_the_department_and_another_department_is_invisible(app, team, deals):
    manager = funnel.funnel(team["maria"].id)
    assert by_stage(manager)["Qualified"] == (2, "1500", "150")
    assert by_stage(manager)["Proposal Submitted"] == (1, "400", "160")
    assert manager["total_count"] == 4
    bob = funnel.funnel(team["bob"].id)
    assert bob["total_count"] == 1 and bob["total_amount"] == "700" and bob["win_rate"] is None
    # Asking for someone else's funnel shows only what the reader may see: nothing here.
    assert funnel.funnel(team["bob"].id, owner_id=team["rita"].id)["total_count"] == 0
    assert funnel.funnel(team["maria"].id, owner_id=team["rita"].id)["total_count"] == 3


def test_the_administrator_sees_everyone_and_scopes_by_person_team_and_department(app, team, deals):
    admin = make_user("boss@example.com", "Boss", is_admin=True)
    everything = funnel.funnel(admin.id)
    assert everything["total_count"] == 5 and everything["total_amount"] == "4600"
    other = Department.get(Department.name == "Other")
    assert funnel.funnel(admin.id, department_id=other.id)["total_count"] == 1
    sales = Department.get(Department.name == "Sales")
    assert funnel.funnel(admin.id, department_id=sales.id)["total_count"] == 4
    key_accounts = org.create_team("Key accounts", [team["rita"].id, team["bob"].id])
    fresh()
    assert funnel.funnel(admin.id, team_id=key_accounts.id)["total_count"] == 4
    assert funnel.funnel(admin.id, owner_id=team["bob"].id)["total_count"] == 1


def test_shares_team_members_and_sharing_rules_count_for_the_reader(app, team, deals):
    bob, rita = team["bob"], team["rita"]
    org.share_record("opportunity", deals["r1"].id, "user", bob.id, Level.READ, actor_id=rita.id)
    opps.add_member(deals["r3"], {"user_id": bob.id, "role": "presales"}, actor_id=rita.id)
    fresh()
    report = funnel.funnel(bob.id)
    assert by_stage(report)["Qualified"] == (2, "1700", "170")
    assert by_stage(report)["Negotiating"] == (1, "2000", "1400")
    # A criteria rule: every won deal to Bob (and the deal he is on is not counted twice).
    org.create_sharing_rule("opportunity", "Won deals", "user", bob.id, Level.READ, field="status",
                            values=["won"])
    fresh()
    report = funnel.funnel(bob.id)
    assert by_stage(report)["Sale Agreed"] == (1, "3000", "3000")
    assert by_stage(report)["Qualified"] == (2, "1700", "170")
    assert by_stage(report)["Negotiating"] == (1, "2000", "1400")
    assert report["total_count"] == 3 and report["win_rate"] == 1.0
    # An owner-based rule: Rita's records to Bob, counted whole from the aggregates.
    org.create_sharing_rule("opportunity", "Rita's", "user", bob.id, Level.READ, source_type="user",
                            source_id=rita.id)
    fresh()
    assert engine().read_parts(bob.id, "opportunity").owners == {bob.id, rita.id}
    assert by_stage(funnel.funnel(bob.id))["Sale Lost"] == (1, "1000", "0")


def test_soft_deleted_records_leave_the_funnel_and_come_back_when_restored(app, team, deals):
    group = recycle.move_to_bin(deals["r3"], actor_id=team["rita"].id)
    fresh()
    assert by_stage(funnel.funnel(team["rita"].id))["Negotiating"] == (0, "0", "0")
    recycle.restore(group, actor_id=team["rita"].id)
    fresh()
    assert by_stage(funnel.funnel(team["rita"].id))["Negotiating"] == (1, "2000", "1400")


def test_a_plugin_restriction_falls_back_to_the_exact_scan(app_factory, register_plugin):
    from crm_core import PluginManifest, hookimpl

    module = types.ModuleType("crm_nobig")
    module.manifest = PluginManifest(name="nobig", label="No big deals", version="1.0")

    @hookimpl
    def crm_access_restrictions(app, actor, object):
        return Opportunity.amount < 1000 if object == "opportunity" else None

    @hookimpl
    def crm_access_record_restrictions(app, actor, object, record):
        return "big" if object == "opportunity" and record.amount >= 1000 else None

    module.crm_access_restrictions = crm_access_restrictions
    module.crm_access_record_restrictions = crm_access_record_restrictions
    register_plugin(module)
    app = app_factory()
    with app.test_request_context():
        people = make_sales_team()
        org.set_default("account", "read")
        account = accounts.create_account({"name": "Minh An"}, actor_id=people["rita"].id)
        for amount in ("1000", "500", "999.99"):
            new(account, people["rita"], amount)
        fresh()
        assert engine().read_parts(people["rita"].id, "opportunity") is None
        report = funnel.funnel(people["rita"].id)
        assert by_stage(report)["Qualified"] == (2, "1499.99", "149.999") and report["total_count"] == 2


def test_win_rate_over_a_period_by_count_and_value(app, team, deals, account):
    rita = team["rita"]
    new(account, rita, "1000", "sale_agreed", closed_date=datetime.date(2026, 4, 2))
    new(account, rita, "9000", "sale_lost", closed_date=datetime.date(2026, 6, 30))
    fresh()
    april = funnel.funnel(rita.id, closed_from=datetime.date(2026, 4, 1), closed_to=datetime.date(2026, 4, 30))
    assert (april["won_count"], april["lost_count"], april["win_rate"], april["win_rate_value"]) == (1, 1, 0.5, 0.5)
    spring = funnel.funnel(rita.id, closed_from=datetime.date(2026, 3, 10), closed_to=datetime.date(2026, 4, 19))
    assert (spring["won_count"], spring["lost_count"], spring["win_rate"]) == (2, 0, 1.0)
    assert spring["won_amount"] == "4000"
    since = funnel.funnel(rita.id, closed_from=datetime.date(2026, 3, 11))
    assert (since["won_count"], since["lost_count"], since["lost_amount"]) == (1, 2, "10000")
    until = funnel.funnel(rita.id, closed_to=datetime.date(2026, 6, 29))
    assert (until["won_count"], until["lost_count"]) == (2, 1)
    # Stages still count everything; the period concerns the win rate only.
    assert by_stage(since)["Sale Agreed"][0] == 2
    with pytest.raises(UserError) as refused:
        funnel.funnel(rita.id, closed_from=datetime.date(2026, 5, 1), closed_to=datetime.date(2026, 4, 1))
    assert "closed_to" in refused.value.fields


@pytest.mark.parametrize("start,end,expected", [
    ("2026-01-01", "2026-01-31", (202601, 202601, [])),
    ("2026-01-15", "2026-03-10", (202602, 202602, [("2026-01-15", "2026-01-31"), ("2026-03-01", "2026-03-10")])),
    ("2026-01-15", "2026-02-10", (None, None, [("2026-01-15", "2026-02-10")])),
    ("2026-01-02", None, (202602, 999912, [("2026-01-02", "2026-01-31")])),
    (None, "2024-02-28", (0, 202401, [("2024-02-01", "2024-02-28")])),
])
def test_a_period_splits_into_whole_months_and_edge_days(start, end, expected):
    day = lambda s: s and datetime.date.fromisoformat(s)  # noqa: E731
    lo, hi, edges = funnel.split_period(day(start), day(end))
    assert (lo, hi, [(a.isoformat(), b.isoformat()) for a, b in edges]) == expected


def test_money_is_per_currency_or_converted_with_the_company_rates(app, team, account):
    rita = team["rita"]
    new(account, rita, "1000")
    new(account, rita, "100", currency="EUR")
    new(account, rita, "2500000", currency="VND")
    fresh()
    report = funnel.funnel(rita.id)
    assert report["total_amount"] is None and report["missing_rates"] == ["EUR", "VND"]
    assert {c["currency"]: c["total_amount"] for c in report["totals_by_currency"]} == {
        "EUR": "100", "USD": "1000", "VND": "2500000"}
    with pytest.raises(UserError) as refused:
        funnel.funnel(rita.id, currency="EUR")
    assert refused.value.code == "missing_rate"
    rates.create_rate({"currency": "EUR", "rate": "1.10", "valid_from": TODAY - datetime.timedelta(days=9)})
    rates.create_rate({"currency": "EUR", "rate": "1.20", "valid_from": TODAY})
    rates.create_rate({"currency": "VND", "rate": "0.00004", "valid_from": TODAY})
    rates.create_rate({"currency": "EUR", "rate": "9", "valid_from": TODAY + datetime.timedelta(days=1)})
    assert funnel.funnel(rita.id)["total_amount"] == "1220"  # 1000 + 100 * 1.2 + 2,500,000 * 0.00004
    assert funnel.funnel(rita.id, currency="EUR")["total_amount"] == "1016.6666"  # 833.3333 + 100 + 83.3333
    assert rates.convert(Decimal("100"), "EUR", "USD", TODAY - datetime.timedelta(days=1)) == Decimal("110")
    with pytest.raises(rates.MissingRate):
        rates.convert(Decimal("1"), "EUR", "USD", TODAY - datetime.timedelta(days=30))
    with pytest.raises(UserError) as refused:
        rates.create_rate({"currency": "EUR", "rate": "1.3", "valid_from": TODAY})
    assert "valid_from" in refused.value.fields
    with pytest.raises(UserError) as refused:
        rates.create_rate({"currency": "USD", "rate": "0", "valid_from": "not a date"})
    assert set(refused.value.fields) == {"currency", "rate", "valid_from"}


def test_a_scope_that_does_not_exist_is_refused(app, team):
    with pytest.raises(UserError) as refused:
        funnel.funnel(team["rita"].id, department_id=987654)
    assert "department_id" in refused.value.fields
    with pytest.raises(UserError) as refused:
        funnel.funnel(team["rita"].id, owner_id=team["rita"].id, team_id=1)
    with pytest.raises(UserError) as refused:
        funnel.funnel(team["rita"].id, pipeline_id=987654)
    assert "pipeline_id" in refused.value.fields


# -- the aggregate answer equals the plain scan for random companies ---------------------------

ORGANISATION = st.fixed_dictionaries({
    "default": st.sampled_from(["private", "private", "read"]),
    "managers_inherit": st.booleans(),
    "shares": st.lists(st.tuples(st.integers(0, 11), st.integers(0, 5)), max_size=4),
    "members": st.lists(st.tuples(st.integers(0, 11), st.integers(0, 5)), max_size=4),
    "owner_rules": st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=2),
    "criteria_rules": st.lists(st.tuples(st.sampled_from(["web", "referral"]), st.integers(0, 5)), max_size=2),
    "deals": st.lists(st.tuples(st.integers(0, 5), st.integers(0, 4), st.sampled_from(["USD", "EUR"]),
                                st.integers(0, 5000), st.sampled_from([None, "web", "referral"])),
                      min_size=1, max_size=12),
    "deleted": st.lists(st.integers(0, 11), max_size=3),
    "scope": st.sampled_from([None, "owner", "department"]),
})


@pytest.fixture
def company(app):
    """Six people: a head of Sales with two reps (one a manager of a third), a rep in
    Other, an auditor-less outsider; built once per test, the deals per example."""
    users = [make_user(f"u{i}@example.com", f"U{i}") for i in range(6)]
    for user in users:
        org.set_roles(user, ["sales_rep"])
    sales = org.create_department("Sales", head=users[0].id)
    field = org.create_department("Field", parent=sales.id)
    other = org.create_department("Other")
    org.place_user(users[0], sales.id)
    org.place_user(users[1], sales.id)
    org.place_user(users[2], field.id)
    org.place_user(users[3], field.id, manager=users[2].id)
    org.place_user(users[4], other.id)
    account = accounts.create_account({"name": "Acme"}, actor_id=users[0].id)
    org.set_default("account", "read")
    return {"users": users, "account": account, "departments": [sales, field, other]}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=ORGANISATION)
def test_the_aggregate_answer_equals_the_plain_scan(app, company, data):
    from crm_core.opportunities.models import OpportunityMember
    from crm_core.org.models import RecordShare, SharingRule

    users, account = company["users"], company["account"]
    with database.atomic() as transaction:
        org.set_default("opportunity", data["default"], managers_inherit=data["managers_inherit"])
        keys = ["qualified", "proposal_submitted", "negotiating", "sale_agreed", "sale_lost"]
        made = []
        for owner, key, currency, amount, source in data["deals"]:
            made.append(new(account, users[owner], str(amount), keys[key], currency=currency, source=source,
                            closed_date=TODAY if key >= 3 else None))
        for index, user in data["shares"]:
            if index < len(made):
                RecordShare.create(object="opportunity", record_id=made[index].id, target_type="user",
                                   target_id=users[user].id, level=int(Level.READ))
        for index, user in data["members"]:
            if index < len(made) and made[index].owner_id != users[user].id:
                OpportunityMember.get_or_create(opportunity=made[index].id, user_id=users[user].id)
        for source, target in data["owner_rules"]:
            org.create_sharing_rule("opportunity", f"Owner {source}", "user", users[target].id, Level.READ,
                                    source_type="user", source_id=users[source].id)
        for value, target in data["criteria_rules"]:
            org.create_sharing_rule("opportunity", f"Source {value} {target}", "user", users[target].id,
                                    Level.READ, field="source", values=[value])
        for index in sorted(set(data["deleted"])):  # each record goes to the bin once
            if index < len(made):
                recycle.move_to_bin(made[index], actor_id=made[index].owner_id)
        pipeline_id = made[0].pipeline_id
        for reader in users:
            scopes = {None: None, "owner": {users[1].id},
                      "department": engine().organisation().members("department_tree", company["departments"][0].id)}
            scope = scopes[data["scope"]]
            fresh()
            got = {k: list(v) for k, v in funnel.stage_rows(reader.id, pipeline_id, scope).items() if v[0]}
            assert got == scan(reader.id, pipeline_id, scope), (reader.email, data)
            closed = {k: list(v) for k, v in funnel.closed_rows(reader.id, pipeline_id, scope, TODAY, TODAY).items() if v[0]}
            expected = {}
            for (stage_id, currency), (count, units, _w) in scan(reader.id, pipeline_id, scope).items():
                kind = Stage.get_by_id(stage_id).kind
                if kind != "open":
                    bucket = expected.setdefault((kind, currency), [0, 0])
                    bucket[0] += count
                    bucket[1] += units
            assert closed == expected, (reader.email, data)
        transaction.rollback()
    assert SharingRule.select().count() == 0 and FunnelTotal.select().where(FunnelTotal.count > 0).count() == 0


def test_the_demo_rates_convert_into_the_company_currency_once(app):
    from crm_core.funnel import demo
    from crm_core.funnel.models import CurrencyRate

    assert demo.load() == 7 and demo.load() == 0
    assert CurrencyRate.get(CurrencyRate.currency == "EUR").rate == "1.08"
    assert rates.convert(Decimal("100"), "EUR", "PLN") == Decimal("432")
