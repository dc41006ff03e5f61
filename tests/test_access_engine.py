"""The access engine on the fixture objects: one decision in three forms."""

from decimal import Decimal

import pytest

from crm_core.org import services as org
from crm_core.permissions import Level, engine
from crm_core.records import create_record
from crm_core.testing import make_user
from crm_fx.models import FxAccount, FxContact

pytestmark = pytest.mark.crm_plugins("fx")


@pytest.fixture
def company(app):
    """Sales (head: boss) > North (head: lead); reps ann (North) and bob (Sales), cat elsewhere."""
    boss, lead, ann, bob, cat = (make_user(f"{n}@example.com", n) for n in ("boss", "lead", "ann", "bob", "cat"))
    for user in (boss, lead, ann, bob, cat):
        org.set_roles(user, ["sales_rep"])
    sales = org.create_department("Sales", head=boss)
    north = org.create_department("North", parent=sales, head=lead)
    other = org.create_department("Other")
    org.place_user(boss, sales)
    org.place_user(lead, north)
    org.place_user(ann, north)
    org.place_user(bob, sales)
    org.place_user(cat, other)
    return {"boss": boss, "lead": lead, "ann": ann, "bob": bob, "cat": cat,
            "sales": sales, "north": north, "other": other}


def visible(user, name="fx_account"):
    return {r.name for r in engine().query(user.id, name)}


def fresh():
    from flask import g
    g.pop("_crm_access", None)


def test_owner_manager_chain_and_private_default(app, company):
    c = company
    create_record(FxAccount, name="ann's", owner_id=c["ann"].id)
    create_record(FxAccount, name="bob's", owner_id=c["bob"].id)
    assert visible(c["ann"]) == {"ann's"}
    assert visible(c["lead"]) == {"ann's"}  # head of North: ann's manager
    assert visible(c["boss"]) == {"ann's", "bob's"}  # head of Sales: everyone below
    assert visible(c["cat"]) == set()
    record = FxAccount.get(FxAccount.name == "ann's")
    assert engine().level(c["ann"].id, record) == Level.ALL
    assert engine().level(c["boss"].id, record) == Level.ALL
    assert engine().level(c["cat"].id, record) == Level.NONE
    level, reasons = engine().explain(c["boss"].id, record)
    assert [r.code for r in reasons] == ["manager"]


def test_moving_a_user_changes_the_next_decision(app, company):
    c = company
    create_record(FxAccount, name="ann's", owner_id=c["ann"].id)
    assert visible(c["lead"]) == {"ann's"}
    org.place_user(c["ann"], c["other"])
    fresh()
    assert visible(c["lead"]) == set()


def test_default_read_and_criteria_rule_and_share(app, company):
    c = company
    create_record(FxAccount, name="retail", owner_id=c["bob"].id, industry="retail")
    create_record(FxAccount, name="mining", owner_id=c["bob"].id, industry="mining")
    org.create_sharing_rule("fx_account", "Retail for North", "department", c["north"].id,
                            Level.READ, field="industry", values=["retail"])
    fresh()
    assert visible(c["ann"]) == {"retail"}
    mining = FxAccount.get(FxAccount.name == "mining")
    org.share_record("fx_account", mining.id, "user", c["cat"].id, Level.EDIT)
    fresh()
    assert visible(c["cat"]) == {"mining"}
    assert engine().level(c["cat"].id, mining) == Level.EDIT
    org.set_default("fx_account", "read")
    fresh()
    assert visible(c["cat"]) == {"retail", "mining"}
    assert {r.name for r in engine().query(c["cat"].id, "fx_account", level=Level.EDIT)} == {"mining"}


def test_implicit_parent_read(app, company):
    c = company
    account = create_record(FxAccount, name="parent", owner_id=c["bob"].id)
    create_record(FxContact, name="child", owner_id=c["cat"].id, account_id=account.id)
    assert visible(c["cat"]) == {"parent"}
    assert engine().level(c["cat"].id, account) == Level.READ


def test_sums_and_counts_follow_the_rules(app, company):
    c = company
    create_record(FxAccount, name="a", owner_id=c["ann"].id, amount=Decimal("10.5"), currency="EUR")
    create_record(FxAccount, name="b", owner_id=c["bob"].id, amount=Decimal("4"), currency="EUR")
    assert engine().query(c["ann"].id, "fx_account").count() == 1
    total = engine().query(c["boss"].id, "fx_account", FxAccount.amount.sum()).scalar()
    assert total == Decimal("14.5")


def test_view_all_and_administrator(app, company):
    c = company
    create_record(FxAccount, name="x", owner_id=c["ann"].id)
    auditor = make_user("audit@example.com")
    org.set_roles(auditor, ["auditor"])
    admin = make_user("root@example.com", is_admin=True)
    fresh()
    record = FxAccount.get(FxAccount.name == "x")
    assert visible(auditor) == {"x"} and engine().level(auditor.id, record) == Level.READ
    assert visible(admin) == {"x"} and engine().level(admin.id, record) == Level.ALL


def test_no_role_no_object_permission(app, company):
    nobody = make_user("nobody@example.com")
    create_record(FxAccount, name="own", owner_id=nobody.id)
    assert visible(nobody) == set()
    assert engine().object_permissions(nobody.id, "fx_account").read is False


def test_deleted_and_inactive_see_nothing(app, company):
    c = company
    record = create_record(FxAccount, name="gone", owner_id=c["ann"].id)
    from crm_core.records import soft_delete
    soft_delete(record)
    assert visible(c["ann"]) == set()
    create_record(FxAccount, name="live", owner_id=c["ann"].id)
    from crm_core.users.services import set_active
    set_active(c["ann"], False)
    fresh()
    assert visible(c["ann"]) == set()
