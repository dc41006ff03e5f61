"""The recycle bin: a record and its children as one group, restore, purge, who sees what."""

import datetime as dt

import pytest

from crm_core.errors import VersionConflict
from crm_core.org import services as org
from crm_core.recycle import services as bin_
from crm_core.records import create_record, update_record
from crm_core.testing import make_user
from crm_fx.models import FxAccount, FxContact

pytestmark = pytest.mark.crm_plugins("fx")


@pytest.fixture
def people(app):
    boss, rep, other = (make_user(f"{n}@example.com", n) for n in ("boss", "rep", "other"))
    team = org.create_department("Team", head=boss)
    org.place_user(rep, team)
    org.place_user(boss, team)
    return boss, rep, other


def test_delete_with_children_and_restore_as_one_group(app, people):
    _, rep, _ = people
    account = create_record(FxAccount, name="Minh An JSC", owner_id=rep.id)
    first, second = (create_record(FxContact, name=n, owner_id=rep.id, account_id=account.id)
                     for n in ("Lan", "Huy"))
    earlier = create_record(FxContact, name="Old", owner_id=rep.id, account_id=account.id)
    bin_.move_to_bin(earlier, actor_id=rep.id)
    group = bin_.move_to_bin(account, [first, second, FxContact.get_by_id(earlier.id)], actor_id=rep.id)
    assert FxAccount.alive().count() == 0 and FxContact.alive().count() == 0
    assert group.label == "Minh An JSC"
    bin_.restore(group, actor_id=rep.id)
    assert {c.name for c in FxContact.alive()} == {"Lan", "Huy"}  # "Old" was its own deletion
    assert FxAccount.alive().count() == 1
    assert FxAccount.get_by_id(account.id).version == 3  # deleted, restored


def test_a_stale_delete_writes_nothing(app, people):
    _, rep, _ = people
    account = create_record(FxAccount, name="A", owner_id=rep.id)
    stale = FxAccount.get_by_id(account.id)
    update_record(account, {"name": "B"})
    with pytest.raises(VersionConflict):
        bin_.move_to_bin(stale)
    assert FxAccount.alive().count() == 1
    from crm_core.recycle.models import RecycleGroup
    assert RecycleGroup.select().count() == 0


def test_purge_after_the_retention(app, people):
    _, rep, _ = people
    account = create_record(FxAccount, name="A", owner_id=rep.id)
    contact = create_record(FxContact, name="C", owner_id=rep.id, account_id=account.id)
    bin_.move_to_bin(account, [contact])
    assert bin_.purge_expired(retention_days=15) == 0
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=16)
    assert bin_.purge_expired(now=later, retention_days=15) == 1
    assert FxAccount.select().count() == 0 and FxContact.select().count() == 0


def test_who_sees_the_bin(app, people):
    boss, rep, other = people
    admin = make_user("root@example.com", is_admin=True)
    bin_.move_to_bin(create_record(FxAccount, name="reps", owner_id=rep.id), actor_id=rep.id)
    bin_.move_to_bin(create_record(FxAccount, name="others", owner_id=other.id), actor_id=other.id)
    from flask import g
    g.pop("_crm_access", None)
    assert [grp.label for grp in bin_.visible_groups(rep.id)] == ["reps"]
    assert [grp.label for grp in bin_.visible_groups(boss.id)] == ["reps"]
    assert [grp.label for grp in bin_.visible_groups(other.id)] == ["others"]
    assert {grp.label for grp in bin_.visible_groups(admin.id)} == {"reps", "others"}


def test_purge_job_is_scheduled(app):
    jobs = app.extensions["crm_jobs"]
    assert "core.purge_recycle_bin" in jobs.names
    assert app.config["CRM_RECYCLE_RETENTION_DAYS"] == 15
