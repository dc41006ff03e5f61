"""The six access hooks (``test_hook_<name>``), each proven through a real application on
the fixture objects of ``fx`` (fx_account, fx_contact), plus the invariants the hooks
are bound by (ACCESS_MODEL.md):

- I1 the query form (``engine().query``) and the per-record form (``engine().level``)
  agree for every user and record;
- I4 the order in which plugins are registered changes no decision; no access hook is
  ``firstresult``;
- I5 a hook that raises or returns junk denies, and is logged on ``crm.access`` at ERROR.

Extra plugins are one-off modules (``plugin_module``) enabled with ``register_plugin``;
they require ``fx``, so they come after it. Tests marked ``xfail(strict=True)`` state the
correct behaviour for an engine bug that is not fixed yet; the reason says which.
"""

import logging
import types
from decimal import Decimal

import pytest

from crm_core import PluginManifest, hookimpl, hookspecs
from crm_core.errors import RegistryError
from crm_core.org import services as org
from crm_core.org.models import FieldRule, Role
from crm_core.permissions import (AccessObject, ChildLink, Level, QueryGrant, Reason, Subject,
                                  engine)
from crm_core.records import create_record, soft_delete
from crm_core.testing import make_user
from crm_fx.models import FxAccount, FxContact

pytestmark = pytest.mark.crm_plugins("fx")

ACCESS_HOOKS = ("crm_register_access_objects", "crm_access_grants", "crm_access_record_grants",
                "crm_access_restrictions", "crm_access_record_restrictions",
                "crm_access_field_rules")
LEVELS = (Level.READ, Level.EDIT, Level.DELETE, Level.TRANSFER, Level.ALL)


def plugin_module(name, *hooks, requires=("fx",)):
    """A plugin that is not installed: a module with a manifest and @hookimpl functions
    (each named after the hook it implements). It requires ``fx`` by default."""
    module = types.ModuleType(f"crm_{name}")
    module.manifest = PluginManifest(name=name, label=name.title(), version="1.0",
                                     requires=tuple(requires))
    for function in hooks:
        setattr(module, function.__name__, hookimpl(function))
    return module


def start(app_factory, register_plugin, *modules, **config):
    """Enable ``modules``, build the app; the caller pushes its context."""
    for module in modules:
        register_plugin(module)
    return app_factory(**config)


# -- plugins the tests combine ---------------------------------------------------------------

def industry_grant(name, industry, level=Level.READ, calls=None):
    """Everybody gets ``level`` on the fx_accounts of ``industry``: both forms, one rule."""

    def crm_access_grants(app, actor, object):
        if calls is not None:
            calls.append(("query", actor, object))
        if object != "fx_account":
            return []
        return [QueryGrant(level, FxAccount.industry == industry, f"{industry} accounts")]

    def crm_access_record_grants(app, actor, object, record):
        if calls is not None:
            calls.append(("record", actor, object, record.name))
        if object == "fx_account" and record.industry == industry:
            return [Reason(level, "plugin", f"{industry} accounts")]
        return []

    return plugin_module(name, crm_access_grants, crm_access_record_grants)


def industry_restriction(name, industry):
    """Nobody sees the fx_accounts of ``industry``. NULL-safe: ``industry != x`` alone
    would hide the accounts without an industry in lists but not per record (I1)."""

    def crm_access_restrictions(app, actor, object):
        if object != "fx_account":
            return []
        return [FxAccount.industry.is_null() | (FxAccount.industry != industry)]

    def crm_access_record_restrictions(app, actor, object, record):
        if object == "fx_account" and record.industry == industry:
            return [f"{record.name} is under {industry.replace('_', ' ')}"]
        return []

    return plugin_module(name, crm_access_restrictions, crm_access_record_restrictions)


def field_rules(name, rules, only_for=None):
    """``rules`` on fx_account, for the users in ``only_for`` (everyone when None)."""

    def crm_access_field_rules(app, actor, object):
        if object != "fx_account" or (only_for is not None and actor.user_id not in only_for):
            return {}
        return dict(rules)

    return plugin_module(name, crm_access_field_rules)


# -- people and records ------------------------------------------------------------------------

def people():
    """rep and other (sales reps), boss (rep's manager), admin, auditor (View All)."""
    rep, other, boss, auditor = (make_user(f"{n}@example.com", n)
                                 for n in ("rep", "other", "boss", "auditor"))
    for user in (rep, other, boss):
        org.set_roles(user, ["sales_rep"])
    org.set_roles(auditor, ["auditor"])
    org.place_user(rep, manager=boss)
    admin = make_user("admin@example.com", "admin", is_admin=True)
    return {"rep": rep, "other": other, "boss": boss, "admin": admin, "auditor": auditor}


def accounts(p):
    """rep's accounts in four industries (one without an industry), and one of other's."""
    made = {}
    for name, industry in (("retail", "retail"), ("shared", "shared"), ("held", "legal_hold"),
                           ("blank", None)):
        made[name] = create_record(FxAccount, name=name, owner_id=p["rep"].id, industry=industry,
                                   amount=Decimal("100"), currency="EUR")
    made["partner"] = create_record(FxAccount, name="partner", owner_id=p["other"].id,
                                    industry="partner")
    return made


def visible(user, name="fx_account", level=Level.READ):
    return {r.name for r in engine().query(user.id, name, level=level)}


def assert_one_decision(users, model=FxAccount, name="fx_account"):
    """I1: for every user, record and level, listed iff level(user, record) >= level."""
    records = list(model.select())
    for user in users:
        for level in LEVELS:
            listed = {r.id for r in engine().query(user.id, name, level=level)}
            decided = {r.id for r in records if engine().level(user.id, r) >= level}
            assert listed == decided, (user.name, level.name, listed, decided)
            for record in records:
                assert engine().explain(user.id, record)[0] == engine().level(user.id, record)


def access_log(caplog):
    return [r for r in caplog.records if r.name == "crm.access"]


# -- crm_register_access_objects ------------------------------------------------------------------

def test_hook_crm_register_access_objects(app):
    registry = app.extensions["crm"].registries["access objects"]
    assert registry.owner("fx_account") == "fx"
    assert registry.owner("fx_contact") == "fx"
    assert registry.by_owner("fx") == ["fx_account", "fx_contact"]
    account = registry["fx_account"]
    assert isinstance(account, AccessObject)
    assert account.model is FxAccount and account.owner_column is FxAccount.owner_id
    assert account.children == (ChildLink("fx_contact", "account_id"),)
    # the engine works on exactly what was registered
    assert engine().object("fx_account") is account
    assert engine().object(FxContact) is registry["fx_contact"]
    # the implicit parent read the ChildLink declares
    rep, other = make_user("rep@example.com"), make_user("other@example.com")
    org.set_roles(rep, ["sales_rep"])
    org.set_roles(other, ["sales_rep"])
    parent = create_record(FxAccount, name="parent", owner_id=rep.id)
    create_record(FxContact, name="child", owner_id=other.id, account_id=parent.id)
    assert visible(other) == {"parent"}
    assert engine().explain(other.id, parent) == (Level.READ, [Reason(Level.READ, "parent",
                                                                      "fx_contact")])


def test_an_access_object_registered_twice_names_both_owners(app_factory, register_plugin):
    def crm_register_access_objects(app):
        return [AccessObject("fx_account", FxContact, "Account again")]

    register_plugin(plugin_module("rival", crm_register_access_objects))
    with pytest.raises(RegistryError,
                       match="access object 'fx_account' is registered twice: by fx and by rival"):
        app_factory()


def test_a_child_link_to_an_unknown_object_is_refused(app_factory, register_plugin):
    def crm_register_access_objects(app):
        return [AccessObject("orphan_parent", FxContact,
                             children=(ChildLink("nowhere", "account_id"),))]

    register_plugin(plugin_module("orphans", crm_register_access_objects))
    with pytest.raises(RegistryError, match="orphans: access object 'orphan_parent' names a "
                                            "child 'nowhere' that nobody registered"):
        app_factory()


def test_only_access_objects_can_be_registered(app_factory, register_plugin):
    def crm_register_access_objects(app):
        return [("fx_thing", FxContact)]

    register_plugin(plugin_module("sloppy", crm_register_access_objects))
    with pytest.raises(RegistryError,
                       match="sloppy: .* is not a crm_core.permissions.AccessObject"):
        app_factory()


# -- crm_access_grants / crm_access_record_grants --------------------------------------------------

def test_hook_crm_access_grants(app_factory, register_plugin):
    calls = []
    app = start(app_factory, register_plugin, industry_grant("sharing", "shared", calls=calls))
    with app.app_context():
        p = people()
        accounts(p)
        other = p["other"]
        assert visible(other) == {"partner", "shared"}  # own + the plugin's grant
        assert engine().query(other.id, "fx_account").count() == 2
        total = engine().query(other.id, "fx_account", FxAccount.amount.sum()).scalar()
        assert total == Decimal("100")  # partner has no amount; shared has 100
        # a READ grant is not an EDIT grant
        assert visible(other, level=Level.EDIT) == {"partner"}
        # the hook saw a Subject and the object's name: fx_account, and fx_contact too
        # (the implicit parent read asks which of the account's contacts other can read)
        query_calls = [c for c in calls if c[0] == "query"]
        assert query_calls and all(isinstance(actor, Subject) for _, actor, _ in query_calls)
        assert {actor.user_id for _, actor, _ in query_calls} == {other.id}
        assert {obj for _, _, obj in query_calls} == {"fx_account", "fx_contact"}
        create_record(FxContact, name="contact", owner_id=p["rep"].id)
        assert visible(other, "fx_contact") == set()
        assert_one_decision(p.values())


def test_a_query_grant_at_edit_gives_edit(app_factory, register_plugin):
    app = start(app_factory, register_plugin, industry_grant("sharing", "shared", Level.EDIT))
    with app.app_context():
        p = people()
        accounts(p)
        assert visible(p["other"], level=Level.EDIT) == {"partner", "shared"}
        assert visible(p["other"], level=Level.DELETE) == {"partner"}
        assert_one_decision(p.values())


def test_hook_crm_access_record_grants(app_factory, register_plugin):
    calls = []
    app = start(app_factory, register_plugin, industry_grant("sharing", "shared", calls=calls),
                industry_grant("partners", "shared", Level.EDIT))
    with app.app_context():
        p = people()
        made = accounts(p)
        other, shared = p["other"], made["shared"]
        # two plugins grant on the same record: the highest level wins
        assert engine().level(other.id, shared) == Level.EDIT
        level, reasons = engine().explain(other.id, shared)
        assert level == Level.EDIT
        assert reasons == [Reason(Level.READ, "plugin", "shared accounts"),
                           Reason(Level.EDIT, "plugin", "shared accounts")]
        assert engine().can(other.id, shared, "read") and engine().can(other.id, shared, "update")
        assert not engine().can(other.id, shared, "delete")
        assert engine().level(other.id, made["retail"]) == Level.NONE
        # a plugin grant adds to the core's; the owner's ALL still wins
        level, reasons = engine().explain(p["rep"].id, shared)
        assert level == Level.ALL
        assert {r.code for r in reasons} == {"owner", "plugin"}
        # the per-record hook got the Subject, the object's name and the record itself
        record_calls = [c for c in calls if c[0] == "record"]
        assert ("record", engine().subject(other.id), "fx_account", "shared") in record_calls
        assert all(isinstance(c[1], Subject) for c in record_calls)
        assert_one_decision(p.values())


# -- crm_access_restrictions / crm_access_record_restrictions --------------------------------------

def legal_hold_world():
    """Everyone who could see rep's accounts through some rule, and rep's accounts."""
    p = people()
    made = accounts(p)
    org.set_default("fx_account", "read_write")  # everyone gets EDIT on everything...
    org.share_record("fx_account", made["held"].id, "user", p["other"].id, Level.EDIT)
    return p, made


def everyone_grant():
    """A plugin granting EDIT on every account (restrictions must beat it too)."""

    def crm_access_grants(app, actor, object):
        return [QueryGrant(Level.EDIT, FxAccount.id.is_null(False), "all")] \
            if object == "fx_account" else []

    def crm_access_record_grants(app, actor, object, record):
        return [Reason(Level.EDIT, "plugin", "all")] if object == "fx_account" else []

    return plugin_module("generous", crm_access_grants, crm_access_record_grants)


def test_hook_crm_access_restrictions(app_factory, register_plugin):
    app = start(app_factory, register_plugin, industry_restriction("legal", "legal_hold"),
                everyone_grant())
    with app.app_context():
        p, made = legal_hold_world()
        everything = {"retail", "shared", "blank", "partner"}
        # the owner, the owner's manager, a manual share, View All, an administrator,
        # the org-wide default and another plugin's grant: nothing overrides a restriction
        for who in ("rep", "boss", "other", "auditor", "admin"):
            assert visible(p[who]) == everything, who
        assert visible(p["rep"], level=Level.ALL) == {"retail", "shared", "blank"}
        assert visible(p["admin"], level=Level.ALL) == everything
        assert engine().query(p["admin"].id, "fx_account").count() == 4
        # restrictions are per object: contacts are not touched
        create_record(FxContact, name="contact", owner_id=p["rep"].id)
        assert visible(p["rep"], "fx_contact") == {"contact"}
        assert_one_decision(p.values())


def test_restrictions_of_several_plugins_all_apply(app_factory, register_plugin):
    app = start(app_factory, register_plugin, industry_restriction("legal", "legal_hold"),
                industry_restriction("embargo", "partner"))
    with app.app_context():
        p, made = legal_hold_world()
        for who in ("rep", "other", "admin"):
            assert visible(p[who]) == {"retail", "shared", "blank"}, who
        assert engine().level(p["other"].id, made["partner"]) == Level.NONE  # even its owner
        assert_one_decision(p.values())


def test_hook_crm_access_record_restrictions(app_factory, register_plugin):
    app = start(app_factory, register_plugin, industry_restriction("legal", "legal_hold"),
                everyone_grant())
    with app.app_context():
        p, made = legal_hold_world()
        held = made["held"]
        for who in ("rep", "boss", "other", "auditor", "admin"):
            user = p[who]
            assert engine().explain(user.id, held) == (
                Level.NONE, [Reason(Level.NONE, "restricted", "held is under legal hold")]), who
            assert not engine().can(user.id, held, "read")
        # an unrestricted record keeps every grant
        assert engine().level(p["admin"].id, made["retail"]) == Level.ALL
        assert engine().level(p["rep"].id, made["retail"]) == Level.ALL
        assert engine().level(p["other"].id, made["retail"]) == Level.EDIT
        assert engine().level(p["rep"].id, made["blank"]) == Level.ALL
        assert_one_decision(p.values())


# -- crm_access_field_rules -----------------------------------------------------------------------

def test_hook_crm_access_field_rules(app_factory, register_plugin):
    narrowed = set()
    app = start(app_factory, register_plugin,
                field_rules("pricing_guard", {"amount": 0, "currency": 2}, only_for=narrowed))
    with app.app_context():
        sales = org.role_by_key("sales_rep")
        finance = create_record(Role, name="Finance")
        FieldRule.create(role=sales, object="fx_account", field="amount", level=0)
        FieldRule.create(role=sales, object="fx_account", field="currency", level=1)
        FieldRule.create(role=finance, object="fx_account", field="amount", level=1)
        rep, analyst, both, manager, admin = (make_user(f"{n}@example.com", n) for n in
                                              ("rep", "analyst", "both", "manager", "admin"))
        org.set_roles(rep, ["sales_rep"])
        org.set_roles(analyst, [finance])
        org.set_roles(both, ["sales_rep", finance])
        org.set_roles(manager, ["sales_rep", "sales_manager"])  # no rule: editable
        org.set_roles(admin, ["administrator"])

        levels = engine().field_levels
        assert levels(rep.id, "fx_account") == {"amount": 0, "currency": 1}
        assert levels(analyst.id, "fx_account") == {"amount": 1}  # the role's FieldRule: read
        # several roles: the most permissive of the roles' rules
        # (Finance has no rule on currency, so it leaves currency editable)
        assert levels(both.id, "fx_account") == {"amount": 1}
        assert levels(manager.id, "fx_account") == {}
        assert levels(admin.id, "fx_account") == {}

        # the plugin's rule only narrows: amount hidden whatever the roles say, and its
        # "currency": 2 cannot widen a role's read-only currency
        narrowed.update({rep.id, analyst.id, both.id, manager.id, admin.id})
        assert levels(rep.id, "fx_account") == {"amount": 0, "currency": 1}
        assert levels(analyst.id, "fx_account") == {"amount": 0, "currency": 2}
        assert levels(both.id, "fx_account") == {"amount": 0, "currency": 2}
        assert levels(manager.id, "fx_account") == {"amount": 0, "currency": 2}
        assert levels(admin.id, "fx_account") == {"amount": 0, "currency": 2}
        assert levels(both.id, "fx_contact") == {}  # the plugin answers for fx_account only


def test_field_rules_of_several_plugins_combine_to_the_lowest(app_factory, register_plugin):
    app = start(app_factory, register_plugin, field_rules("first", {"amount": 1, "name": 2}),
                field_rules("second", {"amount": 2, "name": 0, "currency": 1}))
    with app.app_context():
        user = make_user()
        org.set_roles(user, ["sales_rep"])
        assert engine().field_levels(user.id, "fx_account") == {"amount": 1, "name": 0,
                                                                "currency": 1}


# -- I5: fail closed, and logged -------------------------------------------------------------------

def raising(name, *hook_names, only_object="fx_account"):
    """A plugin whose ``hook_names`` raise for ``only_object`` (and answer nothing otherwise)."""

    def fail(object):
        if object == only_object:
            raise RuntimeError(f"{name} backend unavailable")

    def crm_access_grants(app, actor, object):
        fail(object)
        return []

    def crm_access_record_grants(app, actor, object, record):
        fail(object)
        return []

    def crm_access_restrictions(app, actor, object):
        fail(object)
        return []

    def crm_access_record_restrictions(app, actor, object, record):
        fail(object)
        return []

    def crm_access_field_rules(app, actor, object):
        fail(object)
        return {}

    hooks = {f.__name__: f for f in (crm_access_grants, crm_access_record_grants,
                                     crm_access_restrictions, crm_access_record_restrictions,
                                     crm_access_field_rules)}
    return plugin_module(name, *(hooks[h] for h in hook_names))


def assert_logged(caplog, *hook_names):
    records = access_log(caplog)
    assert records and all(r.levelno == logging.ERROR for r in records)
    for hook_name in hook_names:
        matching = [r for r in records if hook_name in r.getMessage()]
        assert matching, f"nothing logged for {hook_name}: {[r.getMessage() for r in records]}"
        assert all(r.exc_info and r.exc_info[0] is RuntimeError for r in matching)


def test_a_grant_hook_that_raises_grants_nothing_and_is_logged(app_factory, register_plugin,
                                                                caplog):
    app = start(app_factory, register_plugin, industry_grant("sharing", "shared"),
                raising("flaky", "crm_access_grants", "crm_access_record_grants"))
    with app.app_context():
        p = people()
        made = accounts(p)
        with caplog.at_level(logging.ERROR, logger="crm.access"):
            # Only the broken plugin's grants are lost; the working "sharing" plugin's grant
            # still applies (each plugin is called on its own: I2 holds).
            assert visible(p["other"]) == {"partner", "shared"}
            assert engine().level(p["other"].id, made["shared"]) == Level.READ
            # the core's own grants are not hooks: the owner, the manager, View All remain
            assert visible(p["rep"]) == {"retail", "shared", "held", "blank"}
            assert visible(p["boss"]) == {"retail", "shared", "held", "blank"}
            assert engine().level(p["rep"].id, made["shared"]) == Level.ALL
            assert engine().level(p["auditor"].id, made["shared"]) == Level.READ
            assert_one_decision(p.values())
        assert_logged(caplog, "crm_access_grants", "crm_access_record_grants")


def test_a_restriction_hook_that_raises_hides_everything_and_is_logged(app_factory,
                                                                        register_plugin, caplog):
    app = start(app_factory, register_plugin,
                raising("flaky", "crm_access_restrictions", "crm_access_record_restrictions"))
    with app.app_context():
        p = people()
        made = accounts(p)
        contact = create_record(FxContact, name="contact", owner_id=p["rep"].id)
        with caplog.at_level(logging.ERROR, logger="crm.access"):
            for who in ("rep", "boss", "auditor", "admin"):
                assert visible(p[who]) == set(), who
                assert engine().explain(p[who].id, made["retail"]) == (
                    Level.NONE, [Reason(Level.NONE, "restricted", "a restriction hook failed")])
            # the hook fails for fx_account only: contacts are untouched
            assert visible(p["rep"], "fx_contact") == {"contact"}
            assert engine().level(p["rep"].id, contact) == Level.ALL
            assert_one_decision(p.values())
        assert_logged(caplog, "crm_access_restrictions", "crm_access_record_restrictions")


def test_a_field_rule_hook_that_raises_hides_every_field_and_is_logged(app_factory,
                                                                        register_plugin, caplog):
    app = start(app_factory, register_plugin, raising("flaky", "crm_access_field_rules"))
    with app.app_context():
        admin = make_user(is_admin=True)
        with caplog.at_level(logging.ERROR, logger="crm.access"):
            assert engine().field_levels(admin.id, "fx_account") == {"*": 0}
            assert engine().field_levels(admin.id, "fx_contact") == {}
        assert_logged(caplog, "crm_access_field_rules")


def junk_grants(query_junk, record_junk, name="junky"):
    def crm_access_grants(app, actor, object):
        return query_junk

    def crm_access_record_grants(app, actor, object, record):
        return record_junk

    return plugin_module(name, crm_access_grants, crm_access_record_grants)


JUNK_GRANTS = [
    pytest.param(["shared"], ["READ"], id="strings"),
    pytest.param([FxAccount.industry == "shared"], [Level.READ], id="bare-expression-and-level"),
    pytest.param({"level": 1}, {"level": 1}, id="dicts"),
    pytest.param([Reason(Level.READ, "plugin")], [QueryGrant(Level.READ, FxAccount.id > 0)],
                 id="swapped-forms"),
]


@pytest.mark.parametrize("query_junk, record_junk", JUNK_GRANTS)
def test_junk_grants_give_no_access(app_factory, register_plugin, query_junk, record_junk):
    app = start(app_factory, register_plugin, junk_grants(query_junk, record_junk))
    with app.app_context():
        p = people()
        made = accounts(p)
        assert visible(p["other"]) == {"partner"}
        assert engine().level(p["other"].id, made["shared"]) == Level.NONE
        assert_one_decision(p.values())


@pytest.mark.parametrize("query_junk, record_junk", JUNK_GRANTS)
def test_junk_grants_are_logged(app_factory, register_plugin, caplog, query_junk, record_junk):
    app = start(app_factory, register_plugin, junk_grants(query_junk, record_junk))
    with app.app_context():
        p = people()
        made = accounts(p)
        with caplog.at_level(logging.ERROR, logger="crm.access"):
            visible(p["other"])
            engine().level(p["other"].id, made["shared"])
        messages = [r.getMessage() for r in access_log(caplog) if r.levelno == logging.ERROR]
        assert any("crm_access_grants" in m for m in messages), messages
        assert any("crm_access_record_grants" in m for m in messages), messages


@pytest.mark.parametrize("junk", ["1 = 1", 7], ids=["raw-sql", "an-id"])
def test_a_query_grant_whose_expression_is_not_an_expression_opens_nothing(app_factory,
                                                                           register_plugin,
                                                                           caplog, junk):
    app = start(app_factory, register_plugin, junk_grants([QueryGrant(Level.EDIT, junk)], []))
    with app.app_context():
        p = people()
        made = accounts(p)
        with caplog.at_level(logging.ERROR, logger="crm.access"):
            assert visible(p["other"]) == {"partner"}
            assert visible(p["other"], level=Level.EDIT) == {"partner"}
            assert engine().level(p["other"].id, made["retail"]) == Level.NONE
        assert any("crm_access_grants" in r.getMessage() for r in access_log(caplog))


@pytest.mark.parametrize("junk", ["2024-17 legal hold", 1])
def test_a_restriction_that_is_not_an_expression_hides_everything(app_factory, register_plugin,
                                                                  caplog, junk):
    def crm_access_restrictions(app, actor, object):
        return [junk] if object == "fx_account" else []

    app = start(app_factory, register_plugin, plugin_module("junky", crm_access_restrictions))
    with app.app_context():
        p = people()
        accounts(p)
        with caplog.at_level(logging.ERROR, logger="crm.access"):
            assert visible(p["rep"]) == set()
            assert visible(p["admin"]) == set()
        assert any("crm_access_restrictions" in r.getMessage() for r in access_log(caplog))


@pytest.mark.parametrize("query_junk, record_junk", [
    pytest.param([QueryGrant("READ", FxAccount.industry == "shared")], [], id="query-level-str"),
    pytest.param([QueryGrant(None, FxAccount.industry == "shared")], [], id="query-level-none"),
    pytest.param([], [Reason(42, "plugin")], id="record-level-42"),
    pytest.param([], [Reason("READ", "plugin")], id="record-level-str"),
])
def test_a_grant_with_an_invalid_level_denies_and_is_logged(app_factory, register_plugin, caplog,
                                                            query_junk, record_junk):
    app = start(app_factory, register_plugin, junk_grants(query_junk, record_junk))
    with app.app_context():
        p = people()
        made = accounts(p)
        with caplog.at_level(logging.ERROR, logger="crm.access"):
            assert visible(p["other"]) == {"partner"}
            assert engine().level(p["other"].id, made["shared"]) == Level.NONE
            assert engine().level(p["rep"].id, made["shared"]) == Level.ALL
        assert access_log(caplog)


@pytest.mark.parametrize("junk", [["amount"], "amount", {"amount": "hidden"}, {"amount": None}])
def test_junk_field_rules_hide_and_are_logged(app_factory, register_plugin, caplog, junk):
    def crm_access_field_rules(app, actor, object):
        return junk

    app = start(app_factory, register_plugin, plugin_module("junky", crm_access_field_rules))
    with app.app_context():
        user = make_user(is_admin=True)
        with caplog.at_level(logging.ERROR, logger="crm.access"):
            levels = engine().field_levels(user.id, "fx_account")
        assert levels.get("amount", levels.get("*")) == 0
        assert any("crm_access_field_rules" in r.getMessage() for r in access_log(caplog))


# -- I4: registration order changes no decision; never firstresult ---------------------------------

def test_plugin_order_changes_no_decision(app_factory, register_plugin):
    def crm_access_field_rules(app, actor, object):
        return {"amount": 1, "currency": 0} if object == "fx_account" else {}

    modules = [industry_grant("alpha", "shared"),
               industry_grant("beta", "shared", Level.EDIT),
               industry_grant("gamma", "retail", Level.DELETE),
               industry_restriction("legal", "legal_hold"),
               field_rules("delta", {"amount": 0, "name": 1}),
               plugin_module("epsilon", crm_access_field_rules)]
    names = [m.manifest.name for m in modules]
    for module in modules:
        register_plugin(module)
    forward = app_factory(CRM_PLUGINS=["fx", *names])
    backward = app_factory(CRM_PLUGINS=["fx", *reversed(names)])
    assert forward.extensions["crm"].names == ["fx", *names]
    assert backward.extensions["crm"].names == ["fx", *reversed(names)]

    with forward.app_context():
        p = people()
        accounts(p)
        create_record(FxContact, name="contact", owner_id=p["rep"].id)
        org.set_default("fx_contact", "read")

    def decisions(app):
        with app.app_context():
            out = {}
            records = list(FxAccount.select())
            for who, user in p.items():
                out[who, "visible"] = {level: visible(user, level=level) for level in LEVELS}
                out[who, "contacts"] = visible(user, "fx_contact")
                out[who, "levels"] = {r.name: engine().level(user.id, r) for r in records}
                out[who, "reasons"] = {r.name: set(engine().explain(user.id, r)[1])
                                       for r in records}
                out[who, "fields"] = engine().field_levels(user.id, "fx_account")
            assert_one_decision(p.values())
            return out

    first, second = decisions(forward), decisions(backward)
    assert first == second
    # and the decisions are the combined ones: OR-ed grants, highest level, lowest field level
    assert first["other", "levels"] == {"retail": Level.DELETE, "shared": Level.EDIT,
                                        "held": Level.NONE, "blank": Level.NONE,
                                        "partner": Level.ALL}
    assert first["rep", "fields"] == {"amount": 0, "currency": 0, "name": 1}


def test_access_hooks_are_never_firstresult(app):
    spec_names = {name for name in vars(hookspecs) if name.startswith("crm_")
                  and "access" in name}
    assert spec_names == set(ACCESS_HOOKS)
    hook = app.extensions["crm"].pm.hook
    for name in ACCESS_HOOKS:
        opts = getattr(hook, name).spec.opts
        assert opts["firstresult"] is False, name
        assert opts["historic"] is False, name


def test_a_deleted_record_is_decided_before_any_hook(app_factory, register_plugin):
    calls = []
    app = start(app_factory, register_plugin, industry_grant("sharing", "shared", calls=calls))
    with app.app_context():
        p = people()
        made = accounts(p)
        soft_delete(made["shared"])
        shared = FxAccount.get_by_id(made["shared"].id)
        calls.clear()
        assert engine().explain(p["other"].id, shared) == (Level.NONE,
                                                           [Reason(Level.NONE, "deleted")])
        assert not [c for c in calls if c[0] == "record"]
        assert visible(p["other"]) == {"partner"}
        assert_one_decision(p.values())


def test_the_agreement_check_catches_forms_that_disagree(app_factory, register_plugin):
    """assert_one_decision is what proves I1 above: a NULL-unsafe restriction (``!=`` hides
    the accounts without an industry from lists only) must make it fail."""

    def crm_access_restrictions(app, actor, object):
        return [FxAccount.industry != "legal_hold"] if object == "fx_account" else []

    def crm_access_record_restrictions(app, actor, object, record):
        return ["held"] if object == "fx_account" and record.industry == "legal_hold" else []

    app = start(app_factory, register_plugin, plugin_module(
        "naive", crm_access_restrictions, crm_access_record_restrictions))
    with app.app_context():
        p = people()
        made = accounts(p)
        assert "blank" not in visible(p["rep"])
        assert engine().level(p["rep"].id, made["blank"]) == Level.ALL
        with pytest.raises(AssertionError):
            assert_one_decision([p["rep"]])


@pytest.mark.crm_plugins("fx")
def test_hook_crm_register_permissions(app, client):
    from crm_core.org.services import role_by_key, set_roles
    from crm_core.testing import make_user

    assert app.extensions["crm"].registries["permissions"].owner("fx.reassign") == "fx"
    manager, rep = make_user("m@example.com"), make_user("r@example.com")
    set_roles(manager, ["sales_manager"])
    set_roles(rep, ["sales_rep"])
    assert engine().has_permission(manager.id, "fx.reassign")  # the registered default
    assert not engine().has_permission(rep.id, "fx.reassign")
    rep_role = role_by_key("sales_rep")
    response = client.put(f"/api/v1/roles/{rep_role.id}/grants", json={"permissions": ["fx.reassign"]},
                          headers={"If-Match": f'"{rep_role.version}"'})
    assert response.status_code == 200
    from flask import g
    g.pop("_crm_access", None)
    # The decision replaces the defaults for that role; the other roles keep theirs.
    assert engine().has_permission(rep.id, "fx.reassign")
    assert engine().has_permission(manager.id, "fx.reassign")
    bad = client.put(f"/api/v1/roles/{rep_role.id}/grants", json={"permissions": ["fx.nope"]},
                     headers={"If-Match": response.headers["ETag"]})
    assert bad.status_code == 422
    with pytest.raises(KeyError, match="no permission 'fx.nope'"):
        engine().has_permission(rep.id, "fx.nope")


@pytest.mark.crm_plugins("fx")
def test_a_plugin_permission_outside_its_namespace_is_refused(app_factory, register_plugin):
    from crm_core.permissions import Permission

    def crm_register_permissions(app):
        return [Permission("fx.steal")]

    register_plugin(plugin_module("grabby", crm_register_permissions))
    with pytest.raises(RegistryError, match="grabby: permission 'fx.steal' must start with 'grabby.'"):
        app_factory()
