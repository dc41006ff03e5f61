"""The report pages (/reports/pipeline, /reports/lost-deals, /reports/velocity,
/reports/trend), their export, and the stage history panel of an opportunity, for readers
who see different things."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from flask import g

from crm_core.accounts import services as accounts
from crm_core.analysis import snapshots
from crm_core.opportunities import services as opps
from crm_core.opportunities.models import Opportunity, Pipeline, Stage
from crm_core.testing import make_sales_team, make_user, signed_in
from crm_core.web.slots import render_slot

PASSWORD = "correct horse battery staple 42"


def stage(key):
    return Stage.get((Stage.key == key) & (Stage.pipeline == Pipeline.get(Pipeline.key == "sales")))


@pytest.fixture
def world(app):
    people = make_sales_team()
    rita, bob = people["rita"], people["bob"]
    reason = opps.create_lost_reason({"name": "Budget cut"})
    rita_account = accounts.create_account({"name": "Minh An", "industry": "Retail"}, actor_id=rita.id)
    bob_account = accounts.create_account({"name": "Secret Mining", "industry": "Mining"}, actor_id=bob.id)
    ritas = opps.create_opportunity({"name": "Rita's deal", "account_id": rita_account.id, "amount": Decimal("1000"),
                                     "expected_close_date": dt.date(2026, 3, 15)}, actor_id=rita.id)
    bobs = opps.create_opportunity({"name": "Bob's secret deal", "account_id": bob_account.id,
                                    "amount": Decimal("9999"), "expected_close_date": dt.date(2026, 3, 15)},
                                   actor_id=bob.id)
    snapshots.take_snapshot(dt.date(2026, 3, 1))
    opps.move(Opportunity.get_by_id(bobs.id), stage("sale_lost").id, actor_id=bob.id, lost_reason_id=reason.id)
    admin = make_user("admin@example.com", "Admin", is_admin=True)
    g.pop("_crm_access", None)
    return {**people, "admin": admin, "ritas": Opportunity.get_by_id(ritas.id),
            "bobs": Opportunity.get_by_id(bobs.id)}


PAGES = ("/reports/pipeline?by=industry", "/reports/lost-deals?by=reason", "/reports/velocity",
         "/reports/trend?since=2026-03-01&category=lost")


@pytest.mark.parametrize("path", PAGES)
def test_a_rep_never_sees_another_departments_deals_on_a_report_page(app, world, path):
    rita = signed_in(app, world["rita"]).get(path)
    assert rita.status_code == 200
    html = rita.get_data(as_text=True)
    assert "Mining" not in html and "Secret" not in html and "9,999" not in html and "Budget cut" not in html
    admin = signed_in(app, world["admin"]).get(path).get_data(as_text=True)
    if "velocity" not in path:
        assert ("Mining" in admin or "Budget cut" in admin or "Bob&#39;s secret deal" in admin), path


def test_the_pipeline_page_shows_the_table_the_chart_and_the_export_links(app, world):
    browser = signed_in(app, world["admin"])
    html = browser.get("/reports/pipeline?by=industry&status=open").get_data(as_text=True)
    assert "Retail" in html and "$1,000.00" in html and "<svg" in html
    assert 'href="/reports/pipeline?by=industry&amp;format=csv&amp;status=open"' in html
    exported = browser.get("/reports/pipeline?by=industry&status=open&format=csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows == [["Industry", "Currency", "Opportunities", "Amount", "Weighted amount"],
                    ["Retail", "USD", "1", "1000", "100"]]
    xlsx = browser.get("/reports/pipeline?by=industry&format=xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"


def test_bad_input_on_a_page_is_shown_beside_the_input(app, world):
    browser = signed_in(app, world["rita"])
    html = browser.get("/reports/pipeline?by=horoscope&date_from=someday").get_data(as_text=True)
    assert 'id="e-by"' in html and 'id="e-date_from"' in html
    trend = browser.get("/reports/trend?since=2020-01-01")
    assert trend.status_code == 422 and 'id="e-since"' in trend.get_data(as_text=True)


def test_pages_are_translated(app, world):
    browser = signed_in(app, world["rita"])
    html = browser.get("/reports/pipeline?by=owner&lang=vi").get_data(as_text=True)
    assert "Phân tích quy trình bán hàng" in html


def test_the_pages_need_a_signed_in_user_who_may_read_opportunities(app, world):
    assert app.test_client().get("/reports/pipeline").status_code in (302, 401)
    from crm_core.org import services as org

    nobody = make_user("nobody@example.com", "Nobody")
    org.set_roles(nobody, [])
    g.pop("_crm_access", None)
    assert signed_in(app, nobody).get("/reports/pipeline").status_code == 403


def test_the_menu_has_reports_for_readers_of_opportunities(app, world):
    html = signed_in(app, world["rita"]).get("/").get_data(as_text=True)
    nav = html.split("<nav", 1)[1].split("</nav>", 1)[0]
    reports = nav.split("<summary>Reports</summary>", 1)[1].split("</details>", 1)[0]
    for path, label in (("/reports/pipeline", "Pipeline analysis"), ("/reports/lost-deals", "Lost deals"),
                        ("/reports/velocity", "Velocity"), ("/reports/trend", "Trend")):
        assert f'<a href="{path}">{label}</a>' in reports


def test_the_stage_history_panel_shows_the_moves_only_to_who_may_read_the_opportunity(app, world):
    from flask_login import login_user

    from crm_core.web.auth import Actor

    deal = world["bobs"]
    with app.test_request_context("/"):
        login_user(Actor(world["bob"], "session"))
        html = str(render_slot("record_panels", object="opportunity", record=deal))
        assert "Stage history" in html and "Qualified → Sale Lost" in html
        assert str(render_slot("record_panels", object="account", record=deal)) == ""
    with app.test_request_context("/"):
        g.pop("_crm_access", None)
        login_user(Actor(world["rita"], "session"))
        assert "Stage history" not in str(render_slot("record_panels", object="opportunity", record=deal))
