"""One test per core hook (``test_hook_<name>``), each proving the hook's effect
through a real application built by the fixtures, plus the registry rules:
a name registered twice is rejected with a RegistryError naming both owners.

``notes`` (tests/fixture_plugins/crm_notes) implements every hook; ``tags``
requires ``notes`` and has its own migrations. Extra one-off plugins are
built here as modules and enabled with the ``register_plugin`` fixture.
"""

import logging
import re
import types

import click
import flask
import peewee
import pytest

from crm_core.testing import api_client
from huey.api import PeriodicTask
from markupsafe import Markup

from crm_core import PluginManifest, hookimpl
from crm_core.api import Blueprint as ApiBlueprint
from crm_core.db import BaseModel
from crm_core.errors import PluginError, RegistryError
from crm_core.jobs import TaskSpec
from crm_core.migrator import MigrationSource
from crm_core.web.slots import MenuItem


def plugin_module(name, *hooks, requires=("notes",)):
    """A plugin that is not installed: a module with a manifest and @hookimpl functions.

    Each hook function is named after the hook it implements. By default the
    plugin requires ``notes``, so it is registered after it (a stable order
    for the "registered twice: by notes and by <name>" messages). Names must not
    be those of installed plugins (territory, pricing, ...): discovery refuses a
    name that is both installed and given in CRM_EXTRA_PLUGINS.
    """
    module = types.ModuleType(f"crm_{name}")
    module.manifest = PluginManifest(name=name, label=name.title(), version="1.0",
                                     requires=tuple(requires))
    for function in hooks:
        setattr(module, function.__name__, hookimpl(function))
    return module


def registered_twice(kind, name, first, second):
    return re.escape(f"{kind} {name!r} is registered twice: by {first} and by {second}")


# -- crm_register_models ---------------------------------------------------------------

@pytest.mark.crm_plugins("notes", "tags")
def test_hook_crm_register_models(app, db):
    from crm_notes.models import Note
    from crm_tags.models import Tag

    models = app.extensions["crm"].registries["models"]
    assert models["notes_note"] is Note
    assert models.owner("notes_note") == "notes"
    assert models.owner("tags_tag") == "tags"
    assert models.owner("user") == "core"
    assert models.by_owner("notes") == ["notes_note"]

    note = Note.create(title="Visit the Da Nang distributor")
    Tag.create(label="territory:central", note_id=note.id)
    again = Note.get_by_id(note.id)
    assert again.title == "Visit the Da Nang distributor"
    assert [t.label for t in Tag.select().where(Tag.note_id == note.id)] == ["territory:central"]


@pytest.mark.crm_plugins("notes")
def test_a_plugin_table_must_start_with_the_plugin_name(app_factory, register_plugin):
    class Stray(BaseModel):
        code = peewee.CharField()

        class Meta:
            table_name = "price_list"

    def crm_register_models(app):
        return [Stray]

    register_plugin(plugin_module("rates", crm_register_models))
    with pytest.raises(RegistryError, match=re.escape(
            "rates: table 'price_list' of Stray must start with 'rates_'")):
        app_factory()


@pytest.mark.crm_plugins("notes")
def test_a_table_that_looks_like_another_plugins_is_refused(app_factory, register_plugin):
    # "sales_tax_rate" starts with both "sales_" and "sales_tax_": it belongs to the
    # plugin with the longest matching name, so "sales" may not claim it.
    class SalesTaxRate(BaseModel):
        class Meta:
            table_name = "sales_tax_rate"

    class TaxRate(BaseModel):
        class Meta:
            table_name = "sales_tax_rate"

    def crm_register_models(app):
        return [SalesTaxRate]

    first = plugin_module("sales", crm_register_models)

    def crm_register_models(app):  # noqa: F811 - the second plugin's implementation
        return [TaxRate]

    second = plugin_module("sales_tax", crm_register_models, requires=("sales",))
    register_plugin(first)
    register_plugin(second)
    with pytest.raises(RegistryError, match="sales: table 'sales_tax_rate' of SalesTaxRate must "
                                            "start with 'sales_' and not look like a table of "
                                            "'sales_tax'"):
        app_factory()


# -- crm_register_migrations -------------------------------------------------------------

@pytest.mark.crm_plugins("notes", "tags")
def test_hook_crm_register_migrations(app, db):
    sources = app.extensions["crm"].registries["migrations"]
    assert list(sources) == ["core", "notes", "tags"]  # core first, then requires order
    assert sources["notes"] == MigrationSource("notes", "crm_notes.migrations")

    tables = set(db.get_tables())
    assert {"notes_note", "tags_tag", "notes_migrations", "tags_migrations"} <= tables
    for history in ("notes_migrations", "tags_migrations"):
        names = [row[0] for row in db.execute_sql(f'SELECT name FROM "{history}"')]
        assert names == ["0001_initial"], history


@pytest.mark.crm_plugins("notes")
def test_migrations_labelled_with_another_owner_are_rejected(app_factory, register_plugin):
    def crm_register_migrations(app):
        return MigrationSource("notes", "crm_notes.migrations")

    register_plugin(plugin_module("rates", crm_register_migrations))
    with pytest.raises(RegistryError, match=re.escape(
            "rates: migrations must be labelled 'rates', not 'notes'")):
        app_factory()


# -- crm_register_blueprints ------------------------------------------------------------

@pytest.mark.crm_plugins("notes")
def test_hook_crm_register_blueprints(app, client):
    from crm_notes.models import Note

    Note.create(title="Quote for Hanoi")
    response = client.get("/plugins/notes/")
    assert response.status_code == 200
    assert "<li>Quote for Hanoi</li>" in response.get_data(as_text=True)
    assert app.extensions["crm"].registries["blueprints"].owner("notes_ui") == "notes"
    with app.test_request_context():
        assert flask.url_for("notes_ui.index") == "/plugins/notes/"


@pytest.mark.crm_plugins("notes")
def test_a_blueprint_name_registered_twice_names_both_owners(app_factory, register_plugin):
    def crm_register_blueprints(app):
        return [flask.Blueprint("notes_ui", __name__)]

    register_plugin(plugin_module("rates", crm_register_blueprints))
    with pytest.raises(RegistryError, match=registered_twice("blueprint", "notes_ui",
                                                             "notes", "rates")):
        app_factory()


# -- crm_register_api_blueprints -----------------------------------------------------------

@pytest.mark.crm_plugins("notes")
def test_hook_crm_register_api_blueprints(app, client):
    created = client.post("/api/v1/plugins/notes/notes", json={"title": "Call the Warsaw reseller"})
    assert created.status_code == 201, created.get_data(as_text=True)
    listing = client.get("/api/v1/plugins/notes/notes")
    assert listing.status_code == 200
    assert [item["title"] for item in listing.get_json()["items"]] == ["Call the Warsaw reseller"]

    spec = client.get("/api/v1/openapi.json").get_json()
    assert "/api/v1/plugins/notes/notes" in spec["paths"]
    assert "/api/v1/plugins/notes/notes/{note_id}" in spec["paths"]
    assert app.extensions["crm"].registries["api_blueprints"].owner("notes_api") == "notes"


@pytest.mark.crm_plugins("notes")
def test_an_api_blueprint_name_registered_twice_names_both_owners(app_factory, register_plugin):
    def crm_register_api_blueprints(app):
        return [ApiBlueprint("notes_api", __name__, url_prefix="/price-lists")]

    register_plugin(plugin_module("rates", crm_register_api_blueprints))
    with pytest.raises(RegistryError, match=registered_twice("blueprint", "notes_api",
                                                             "notes", "rates")):
        app_factory()


@pytest.mark.crm_plugins("notes")
def test_ui_and_api_blueprints_share_one_namespace(app_factory, register_plugin):
    def crm_register_blueprints(app):
        return [flask.Blueprint("notes_api", __name__)]

    register_plugin(plugin_module("rates", crm_register_blueprints))
    with pytest.raises(RegistryError, match=r"'notes_api' is registered twice: by notes and by rates"):
        app_factory()


# -- crm_register_commands ---------------------------------------------------------------

@pytest.mark.crm_plugins("notes")
def test_hook_crm_register_commands(app, cli):
    from crm_notes.models import Note

    result = cli("notes", "count")
    assert result.exit_code == 0
    assert result.output.strip() == "0 notes"
    Note.create(title="Renewal for Kraków")
    assert cli("notes", "count").output.strip() == "1 notes"
    commands = app.extensions["crm"].registries["commands"]
    assert commands.owner("notes count") == "notes"


@pytest.mark.crm_plugins("notes")
def test_commands_are_grouped_by_plugin(app_factory, register_plugin):
    def crm_register_commands(app):
        @click.command("count")
        def count():
            click.echo("42 price lists")

        return [count]

    register_plugin(plugin_module("rates", crm_register_commands))
    app = app_factory()
    commands = app.extensions["crm"].registries["commands"]
    assert commands.owner("notes count") == "notes"
    assert commands.owner("rates count") == "rates"

    from click.testing import CliRunner

    from crm_core import cli as cli_module

    state = cli_module.CliState()
    state._app = app
    result = CliRunner().invoke(cli_module.main, ["rates", "count"], obj=state)
    assert result.output.strip() == "42 price lists"


@pytest.mark.crm_plugins("notes")
def test_a_command_registered_twice_is_rejected(app_factory, register_plugin):
    def crm_register_commands(app):
        @click.command("recalculate")
        def first():
            pass

        @click.command("recalculate")
        def second():
            pass

        return [first, second]

    register_plugin(plugin_module("rates", crm_register_commands))
    with pytest.raises(RegistryError, match=registered_twice("command", "rates recalculate",
                                                             "rates", "rates")):
        app_factory()


@pytest.mark.crm_plugins("notes")
def test_a_plugin_cannot_be_named_like_a_core_command(app_factory, register_plugin):
    def crm_register_commands(app):
        @click.command("count")
        def count():
            click.echo("queued jobs: 0")

        return [count]

    register_plugin(plugin_module("worker", crm_register_commands))
    with pytest.raises((PluginError, RegistryError), match="worker"):
        app_factory()


# -- crm_register_tasks ---------------------------------------------------------------------

@pytest.mark.crm_plugins("notes")
def test_hook_crm_register_tasks(app, client):
    from crm_notes.models import Note

    jobs = app.extensions["crm_jobs"]
    assert {"notes.add", "notes.nightly_cleanup"} <= set(jobs.names)
    tasks = app.extensions["crm"].registries["tasks"]
    assert tasks.owner("notes.add") == "notes"
    assert tasks["notes.nightly_cleanup"].schedule is not None
    assert issubclass(jobs._tasks["notes.nightly_cleanup"].task_class, PeriodicTask)
    assert not issubclass(jobs._tasks["notes.add"].task_class, PeriodicTask)

    # CRM_JOBS_IMMEDIATE (on in tests): the job runs as it is queued.
    note_id = jobs.enqueue("notes.add", "Follow up Ho Chi Minh City lead").get()
    assert Note.get_by_id(note_id).title == "Follow up Ho Chi Minh City lead"

    response = client.post("/plugins/notes/enqueue", data={"title": "Queued from a page"})
    assert response.status_code == 202
    assert Note.select().where(Note.title == "Queued from a page").count() == 1

    with pytest.raises(KeyError, match="no task 'notes.missing'"):
        jobs.enqueue("notes.missing")


@pytest.mark.crm_plugins("notes")
def test_tasks_are_named_after_their_owner(app_factory, register_plugin):
    def crm_register_tasks(app):
        return [TaskSpec("add", lambda: "rates add")]

    register_plugin(plugin_module("rates", crm_register_tasks))
    app = app_factory()
    tasks = app.extensions["crm"].registries["tasks"]
    assert (tasks.owner("notes.add"), tasks.owner("rates.add")) == ("notes", "rates")
    with app.app_context():
        assert app.extensions["crm_jobs"].enqueue("rates.add").get() == "rates add"


@pytest.mark.crm_plugins("notes")
def test_a_task_registered_twice_is_rejected(app_factory, register_plugin):
    def crm_register_tasks(app):
        return [TaskSpec("refresh_rates", print), TaskSpec("refresh_rates", print)]

    register_plugin(plugin_module("rates", crm_register_tasks))
    with pytest.raises(RegistryError, match=registered_twice("task", "rates.refresh_rates",
                                                             "rates", "rates")):
        app_factory()


@pytest.mark.crm_plugins("notes")
def test_a_task_name_must_be_letters_digits_and_underscores(app_factory, register_plugin):
    def crm_register_tasks(app):
        return [TaskSpec("refresh.rates", print)]

    register_plugin(plugin_module("rates", crm_register_tasks))
    with pytest.raises(RegistryError, match=re.escape("rates: task name 'refresh.rates'")):
        app_factory()


# -- crm_register_template_filters ------------------------------------------------------------

@pytest.mark.crm_plugins("notes")
def test_hook_crm_register_template_filters(app, client):
    page = client.get("/plugins/notes/").get_data(as_text=True)
    assert "<h1>NOTES!</h1>" in page
    assert app.jinja_env.from_string("{{ 'deal won'|shout }}").render() == "DEAL WON!"
    assert app.extensions["crm"].registries["template filter"].owner("shout") == "notes"


@pytest.mark.crm_plugins("notes")
def test_a_template_filter_registered_twice_names_both_owners(app_factory, register_plugin):
    def crm_register_template_filters(app):
        return {"shout": str.upper}

    register_plugin(plugin_module("rates", crm_register_template_filters))
    with pytest.raises(RegistryError, match=registered_twice("template filter", "shout",
                                                             "notes", "rates")):
        app_factory()


@pytest.mark.crm_plugins("notes")
def test_a_template_filter_cannot_replace_a_built_in_one(app_factory, register_plugin):
    def crm_register_template_filters(app):
        return {"upper": str.lower}

    register_plugin(plugin_module("rates", crm_register_template_filters))
    with pytest.raises(RegistryError, match=re.escape(
            "rates: template filter 'upper' would replace a built-in one")):
        app_factory()


# -- crm_register_template_globals ------------------------------------------------------------

@pytest.mark.crm_plugins("notes")
def test_hook_crm_register_template_globals(app_factory):
    app = app_factory(CRM_PLUGIN_CONFIG={"notes": {"greeting": "xin chào"}})
    assert app.extensions["crm"].registries["template global"].owner("notes_greeting") == "notes"
    with app.app_context():
        page = api_client(app).get("/plugins/notes/").get_data(as_text=True)
    assert '<p class="greeting">xin chào</p>' in page


@pytest.mark.crm_plugins("notes")
def test_a_template_global_registered_twice_names_both_owners(app_factory, register_plugin):
    def crm_register_template_globals(app):
        return {"notes_greeting": "dzień dobry"}

    register_plugin(plugin_module("rates", crm_register_template_globals))
    with pytest.raises(RegistryError, match=registered_twice("template global", "notes_greeting",
                                                             "notes", "rates")):
        app_factory()


@pytest.mark.crm_plugins("notes")
def test_a_template_global_cannot_replace_a_built_in_one(app_factory, register_plugin):
    def crm_register_template_globals(app):
        return {"url_for": lambda *a, **k: "#"}

    register_plugin(plugin_module("rates", crm_register_template_globals))
    with pytest.raises(RegistryError, match=re.escape(
            "rates: template global 'url_for' would replace a built-in one")):
        app_factory()


@pytest.mark.crm_plugins("notes")
def test_a_template_global_cannot_replace_the_core_slot_function(app_factory, register_plugin):
    def crm_register_template_globals(app):
        return {"slot": lambda name, **context: "rates"}

    register_plugin(plugin_module("rates", crm_register_template_globals))
    with pytest.raises(RegistryError, match="'slot' would replace a built-in one"):
        app_factory()


# -- crm_menu_items -----------------------------------------------------------------------------

@pytest.mark.crm_plugins("notes")
def test_hook_crm_menu_items(app_factory, register_plugin):
    seen_actors = []

    def crm_menu_items(app, actor):
        seen_actors.append(actor)
        return [MenuItem("core.home", "Territories", order=10),
                MenuItem("core.home", "Zones", order=50)]

    register_plugin(plugin_module("regions", crm_menu_items))
    app = app_factory()
    with app.app_context():
        signed_in = api_client(app)
        page = signed_in.get("/").get_data(as_text=True)
    nav = page.split("<nav", 1)[1].split("</nav>", 1)[0]
    assert '<a href="/plugins/notes/">Notes</a>' in nav
    # sorted by (order, label): the core's Dashboard (0), Territories (10), Notes (50),
    # Zones (50), then the core's Opportunities (80), Board (85), Leads (90), Accounts (100),
    # Contacts (110), Campaigns (120) on the bar; then the folded groups: Tools (Assignments,
    # Approvals, Segments, Duplicates, Transfer records, Import), Reports (Funnel, Pipeline analysis, Lost
    # deals, Velocity, Trend) and
    # Administration (Web forms, Users, Organisation, Custom fields, Pipelines, Stage gates,
    # Currency rates)
    labels = re.findall(r'<a href="[^"]*"[^>]*>([^<]*)</a>', nav)
    assert labels == ["Dashboard", "Territories", "Notes", "Zones", "Opportunities", "Board", "Leads",
                      "Accounts", "Contacts", "Campaigns", "Assignments", "Approvals", "Segments",
                      "Duplicates", "Transfer records", "Import", "Funnel", "Pipeline analysis",
                      "Lost deals", "Velocity", "Trend", "Web forms", "Users",
                      "Organisation", "Custom fields", "Pipelines", "Stage gates", "Currency rates"]
    groups = re.findall(r"<summary>([^<]*)</summary>", nav)
    assert groups == ["Tools", "Reports", "Administration"]
    tools = nav.split("<summary>Tools</summary>", 1)[1].split("</details>", 1)[0]
    assert re.findall(r'<a href="[^"]*"[^>]*>([^<]*)</a>', tools) == [
        "Assignments", "Approvals", "Segments", "Duplicates", "Transfer records", "Import"]
    with pytest.raises(ValueError, match="group must be None or one of"):
        MenuItem("core.home", "Nowhere", group="sidebar")
    assert seen_actors and {getattr(a, "id", None) for a in seen_actors} == {signed_in.user.id}, seen_actors


@pytest.mark.crm_plugins("notes")
def test_the_group_of_the_current_page_is_marked(client):
    page = client.get("/admin/custom-fields").get_data(as_text=True)
    nav = page.split("<nav", 1)[1].split("</nav>", 1)[0]
    admin = nav.split('<details class="current">', 1)[1].split("</details>", 1)[0]
    assert "<summary>Administration</summary>" in admin and 'aria-current="page">Custom fields<' in admin


@pytest.mark.crm_plugins("notes")
def test_menu_items_appear_on_plugin_pages_too(client):
    page = client.get("/plugins/notes/").get_data(as_text=True)
    nav = page.split("<nav", 1)[1].split("</nav>", 1)[0]
    assert '<a href="/plugins/notes/" aria-current="page">Notes</a>' in nav


# -- crm_page_slot -------------------------------------------------------------------------------

@pytest.mark.crm_plugins("notes")
def test_hook_crm_page_slot(app_factory, register_plugin):
    calls = []

    def crm_page_slot(app, slot, actor, context):
        calls.append(slot)
        if slot == "dashboard":
            return Markup('<section class="quota">Quota 80%</section>')
        return None

    register_plugin(plugin_module("regions", crm_page_slot))
    app = app_factory()
    with app.app_context():
        page = api_client(app).get("/").get_data(as_text=True)
    notes_widget = '<section class="notes-widget">Notes widget</section>'
    assert notes_widget in page  # Markup: unescaped
    # every non-None result, in plugin order (notes before regions)
    assert page.index(notes_widget) < page.index('<section class="quota">Quota 80%</section>')
    footer = page.split('<footer class="site-footer">', 1)[1].split("</footer>", 1)[0]
    assert footer == "&lt;notes &amp; footer&gt;"  # a plain string: escaped
    assert "<notes & footer>" not in page
    assert {"head", "dashboard", "footer"} <= set(calls)


@pytest.mark.crm_plugins("notes")
def test_record_pages_offer_panels_and_actions_to_plugins(app_factory, register_plugin):
    """Every record kind's detail page has the "record_panels" and "record_actions" slots,
    with the kind's name and the record in the context."""
    seen = []

    def crm_page_slot(app, slot, actor, context):
        if slot in ("record_panels", "record_actions"):
            seen.append((slot, context["object"], context["record"].id, getattr(actor, "id", None)))
            return Markup(f'<p class="{slot}">{context["object"]} {context["record"].id}</p>')
        return None

    register_plugin(plugin_module("regions", crm_page_slot))
    app = app_factory()
    with app.app_context():
        from crm_core.accounts import services as accounts
        from crm_core.opportunities import services as opportunities
        from crm_core.testing import make_user, signed_in

        user = make_user(is_admin=True)
        account = accounts.create_account({"name": "Minh An"}, actor_id=user.id)
        deal = opportunities.create_opportunity({"name": "Deal", "account_id": account.id}, actor_id=user.id)
        browser = signed_in(app, user)
        account_page = browser.get(f"/accounts/{account.id}").get_data(as_text=True)
        deal_page = browser.get(f"/opportunities/{deal.id}").get_data(as_text=True)
    assert f'<p class="record_panels">account {account.id}</p>' in account_page
    assert f'<p class="record_actions">account {account.id}</p>' in account_page
    assert f'<p class="record_panels">opportunity {deal.id}</p>' in deal_page
    assert ("record_actions", "opportunity", deal.id, user.id) in seen


# -- crm_app_created ---------------------------------------------------------------------------

@pytest.mark.crm_plugins("notes")
def test_hook_crm_app_created(app):
    assert app.extensions["notes_ready"] is True


@pytest.mark.crm_plugins("notes")
def test_app_created_runs_in_plugin_order(app_factory, register_plugin):
    seen = {}

    def crm_app_created(app):
        seen["notes_ready_before_me"] = app.extensions.get("notes_ready")

    register_plugin(plugin_module("regions", crm_app_created))
    app_factory()
    # regions requires notes, so notes has been notified first
    assert seen["notes_ready_before_me"] is True


@pytest.mark.crm_plugins("notes")
def test_app_created_runs_after_every_registry_is_collected(app_factory, register_plugin):
    seen = {}

    def crm_app_created(app):
        seen["registries"] = set(app.extensions["crm"].registries)
        seen["jobs"] = "crm_jobs" in app.extensions
        seen["routes"] = {rule.rule for rule in app.url_map.iter_rules()}

    register_plugin(plugin_module("regions", crm_app_created))
    app_factory()
    assert {"models", "migrations", "blueprints", "api_blueprints", "commands", "tasks",
            "template filter", "template global"} <= seen["registries"]
    assert seen["jobs"]
    assert {"/plugins/notes/", "/api/v1/plugins/notes/notes"} <= seen["routes"]


@pytest.mark.crm_plugins("notes")
def test_an_exception_in_app_created_stops_the_start(app_factory, register_plugin):
    def crm_app_created(app):
        raise RuntimeError("region rules are inconsistent")

    register_plugin(plugin_module("regions", crm_app_created))
    with pytest.raises(RuntimeError, match="region rules are inconsistent"):
        app_factory()


# -- conventions the reference promises --------------------------------------------------------

@pytest.mark.crm_plugins("notes")
def test_a_failing_registration_hook_names_its_plugin(app_factory, register_plugin):
    def crm_register_models(app):
        raise LookupError("no such price list")

    register_plugin(plugin_module("rates", crm_register_models))
    with pytest.raises(PluginError, match=re.escape(
            "rates: hook crm_register_models failed: LookupError: no such price list")):
        app_factory()


@pytest.mark.crm_plugins("notes")
def test_a_misspelt_hook_stops_the_start(app_factory, register_plugin):
    def crm_register_modles(app):
        return []

    register_plugin(plugin_module("rates", crm_register_modles))
    with pytest.raises(PluginError, match="crm_register_modles"):
        app_factory()


@pytest.mark.crm_plugins("notes")
def test_trace_hooks_logs_every_call(app_factory, caplog):
    with caplog.at_level(logging.INFO, logger="crm.hooks"):
        app_factory(CRM_TRACE_HOOKS=True, migrate_schema=False)
    traced = "\n".join(r.getMessage() for r in caplog.records if r.name == "crm.hooks")
    assert "crm_register_models" in traced
    assert "crm_app_created" in traced


@pytest.mark.crm_plugins("notes")
def test_a_migrations_package_registered_by_two_plugins_is_refused(app_factory, register_plugin):
    from crm_core.migrator import MigrationSource

    def crm_register_migrations(app):
        return MigrationSource("rates", "crm_notes.migrations")

    register_plugin(plugin_module("rates", crm_register_migrations))
    with pytest.raises(RegistryError, match=registered_twice("migrations package",
                                                             "crm_notes.migrations", "notes", "rates")):
        app_factory()


# -- crm_records_written -----------------------------------------------------------------------

class WrittenListener:
    """Hears crm_records_written; ``fail`` (object -> bool) makes it raise for that object."""

    def __init__(self, fail=None):
        self.calls, self.fail = [], fail

    @hookimpl
    def crm_records_written(self, app, actor_id, object, ids, fields):
        self.calls.append((object, sorted(ids), None if fields is None else set(fields), actor_id))
        if self.fail is not None and self.fail(object):
            raise RuntimeError(f"{object} refused by a plugin")


@pytest.fixture
def written(app):
    """Registers a WrittenListener on the running app; ``written(fail=...)`` for another."""
    pm = app.extensions["crm"].pm
    names = []

    def listen(fail=None):
        listener = WrittenListener(fail)
        names.append(f"written_{len(names)}")
        pm.register(listener, name=names[-1])
        return listener

    yield listen
    for name in names:
        pm.unregister(name=name)


def _sales_rep(email="rep@example.com"):
    from crm_core.org import services as org
    from crm_core.testing import make_user

    user = make_user(email, email.split("@")[0].title())
    org.set_roles(user, ["sales_rep"])
    flask.g.pop("_crm_access", None)
    return user


@pytest.mark.crm_plugins("notes")
def test_hook_crm_records_written(app, written):
    from crm_core.accounts import services as accounts
    from crm_core.customfields import services as customfields

    rep = _sales_rep()
    listener = written()
    customfields.create_field({"object": "account", "key": "tier", "type": "text", "labels": {"en": "Tier"}})
    account = accounts.create_account({"name": "Minh An", "country": "VN"}, actor_id=rep.id)
    assert listener.calls == [("account", [account.id], None, rep.id)]
    listener.calls.clear()
    accounts.update_account(account, {"country": "PL", "name": "Minh An", "custom": {"tier": "gold"}},
                            actor_id=rep.id)
    # Only what really changed, under API names, custom values as custom.<key>.
    assert listener.calls == [("account", [account.id], {"country", "custom.tier"}, rep.id)]
    listener.calls.clear()
    contact = accounts.create_contact({"last_name": "Trần"}, actor_id=rep.id)
    accounts.update_contact(contact, {"account_id": account.id}, actor_id=rep.id)
    assert listener.calls == [("contact", [contact.id], None, rep.id),
                              ("contact", [contact.id], {"account_id"}, rep.id)]
    listener.calls.clear()
    # A write that changes nothing calls nothing.
    assert accounts.update_account(account, {"country": "PL"}, actor_id=rep.id) == {}
    assert listener.calls == []
    # Tables that are not access objects (users, stages...) are not announced.
    from crm_core.testing import make_user

    make_user("other@example.com", "Other")
    assert listener.calls == []
    assert app.extensions["notes_written"] == {"account": 2, "contact": 2}  # the fixture plugin heard them too


@pytest.mark.crm_plugins("notes")
def test_records_written_inside_the_transaction_and_the_api(app, written):
    """The listener reads the row as written, inside the write; the API goes the same way."""
    from crm_core.accounts.models import Account
    from crm_core.testing import api_client

    rep = _sales_rep()
    seen = []

    class Reader:
        @hookimpl
        def crm_records_written(self, app, actor_id, object, ids, fields):
            seen.append((object, fields, Account.get_by_id(ids[0]).city))

    app.extensions["crm"].pm.register(Reader(), name="reader")
    try:
        client = api_client(app, rep)
        created = client.post("/api/v1/accounts", json={"name": "Hà Nội Trading", "city": "Hà Nội"})
        assert created.status_code == 201, created.json
        changed = client.patch(f"/api/v1/accounts/{created.json['id']}", json={"city": "Huế"},
                               headers={"If-Match": created.headers["ETag"]})
        assert changed.status_code == 200, changed.json
    finally:
        app.extensions["crm"].pm.unregister(name="reader")
    assert seen == [("account", None, "Hà Nội"), ("account", {"city"}, "Huế")]


@pytest.mark.crm_plugins("notes")
def test_a_failing_records_written_listener_rolls_the_write_back(app, written):
    from crm_core.accounts import services as accounts
    from crm_core.accounts.models import Account
    from crm_core.audit.models import FieldHistory
    from crm_core.opportunities import services as opportunities
    from crm_core.opportunities.models import Opportunity

    rep = _sales_rep()
    account = accounts.create_account({"name": "Kept", "city": "Kraków"}, actor_id=rep.id)
    written(fail=lambda object: object in ("account", "opportunity"))
    with pytest.raises(RuntimeError, match="account refused"):
        accounts.create_account({"name": "Never"}, actor_id=rep.id)
    assert not Account.select().where(Account.name == "Never").exists()
    with pytest.raises(RuntimeError, match="account refused"):
        accounts.update_account(account, {"city": "Gdańsk"}, actor_id=rep.id)
    stored = Account.get_by_id(account.id)
    assert (stored.city, stored.version) == ("Kraków", 1)
    assert not FieldHistory.select().where((FieldHistory.table == "account")
                                           & (FieldHistory.field == "city")).exists()
    with pytest.raises(RuntimeError, match="opportunity refused"):
        opportunities.create_opportunity({"name": "Deal", "account_id": account.id}, actor_id=rep.id)
    assert Opportunity.select().count() == 0


@pytest.mark.crm_plugins("notes")
def test_records_written_once_per_batch_for_an_import_and_a_transfer(app, written):
    from crm_core.accounts.models import Account
    from crm_core.duplicates.transfer import transfer
    from crm_core.imports import services as imports
    from crm_core.org import services as org

    rep, other = _sales_rep(), _sales_rep("other@example.com")
    boss = _sales_rep("boss@example.com")
    org.set_roles(boss, ["administrator"])
    flask.g.pop("_crm_access", None)
    listener = written()
    data = "name,country\nMinh An,VN\nWisła,PL\nOmsk Steel,RU\n".encode()
    run = imports.start_import("account", data, "accounts.csv", rep.id)
    assert run.created_count == 3, run.__data__
    ids = sorted(a.id for a in Account.select())
    assert listener.calls == [("account", ids, None, rep.id)]
    listener.calls.clear()
    moved = transfer(boss.id, "account", other.id, 3, ids=ids)
    assert moved.count == 3
    assert listener.calls == [("account", ids, {"owner_id"}, boss.id)]
    listener.calls.clear()
    # Transferred again to the same owner: nothing changes, nothing is called.
    assert transfer(boss.id, "account", other.id, 0, ids=ids).count == 0
    assert listener.calls == []


@pytest.mark.crm_plugins("notes")
def test_a_failing_listener_rolls_back_the_whole_import_and_transfer(app, written):
    from crm_core.accounts import services as accounts
    from crm_core.accounts.models import Account
    from crm_core.duplicates.transfer import transfer
    from crm_core.imports import services as imports
    from crm_core.org import services as org

    rep, other = _sales_rep(), _sales_rep("other@example.com")
    org.set_roles(rep, ["administrator"])
    flask.g.pop("_crm_access", None)
    kept = accounts.create_account({"name": "Kept"}, actor_id=rep.id)
    written(fail=lambda object: object == "account")
    with pytest.raises(RuntimeError):
        imports.start_import("account", b"name\nOne\nTwo\n", "accounts.csv", rep.id)
    assert [a.name for a in Account.select()] == ["Kept"]
    with pytest.raises(RuntimeError):
        transfer(rep.id, "account", other.id, 1, ids=[kept.id])
    assert Account.get_by_id(kept.id).owner_id == rep.id


@pytest.mark.crm_plugins("notes")
def test_records_written_by_a_lead_conversion(app, written):
    from crm_core.leads import services as leads

    rep = _sales_rep()
    lead = leads.create_lead({"last_name": "Nowak", "company": "Wisła Sp. z o.o.", "status": "qualified"},
                             actor_id=rep.id)
    listener = written()
    leads.convert(lead, actor_id=rep.id)
    objects = [(object, fields) for object, _ids, fields, _actor in listener.calls]
    assert ("account", None) in objects and ("contact", None) in objects and ("opportunity", None) in objects
    changed = [fields for object, fields in objects if object == "lead"]
    assert changed and "status" in changed[0]


# -- crm_register_assignment_targets ------------------------------------------------------------

def country_desk(log, desks, key="desk", objects=("lead", "account")):
    """A target giving a record to ``desks[country]`` (None: next rule); ``log`` hears
    compile/pick/finish."""
    from crm_core.assignment import AssignmentTarget

    def compile(object_name, block):
        log.append(("compile", object_name, block))

        class Picker:
            def pick(self, values):
                log.append(("pick", values.get("country")))
                return desks.get(values.get("country"))

            def finish(self):
                log.append(("finish",))

        return Picker()

    return AssignmentTarget(key, f"Desk {key}", objects, compile)


@pytest.mark.crm_plugins("notes")
def test_hook_crm_register_assignment_targets(app_factory, register_plugin):
    from crm_core.assignment import services as assignment
    from crm_core.assignment.models import AssignmentRule
    from crm_core.imports import services as imports
    from crm_core.leads import services as leads
    from crm_core.leads.models import Lead
    from crm_core.testing import api_client, make_user

    log, desks = [], {}

    def crm_register_assignment_targets(app):
        return [country_desk(log, desks)]

    register_plugin(plugin_module("desks", crm_register_assignment_targets))
    app = app_factory()
    with app.app_context():
        admin = make_user("admin@example.com", "Admin", is_admin=True)
        hanoi, warsaw = make_user("hanoi@example.com", "Hà Nội desk"), make_user("warsaw@example.com", "Warsaw desk")
        zofia = make_user("zofia@example.com", "Zofia")
        desks.update({"VN": hanoi.id, "PL": warsaw.id})
        manager = api_client(app, admin)
        created = manager.post("/api/v1/assignment/rules", json={
            "object": "lead", "name": "By country desk", "target": "desk"})
        assert created.status_code == 201, created.json
        assert created.json["target"] == "desk" and created.json["owner_id"] is None
        fallback = assignment.create_rule("lead", {"name": "Everyone else", "owner_id": zofia.id})
        vn = leads.create_lead({"last_name": "Nguyễn", "country": "VN"}, actor_id=admin.id)
        ru = leads.create_lead({"last_name": "Ivanov", "country": "RU"}, actor_id=admin.id)
        assert Lead.get_by_id(vn.id).owner_id == hanoi.id
        assert Lead.get_by_id(ru.id).owner_id == zofia.id  # the picker gave None: the next rule
        assert log[:2] == [("compile", "lead", 1), ("pick", "VN")] and log.count(("finish",)) == 2
        log.clear()
        # An import compiles the picker once for the whole run and finishes it once.
        run = imports.start_import("lead", b"last_name,country\nA,VN\nB,PL\nC,VN\n", "leads.csv", admin.id)
        assert run.created_count == 3, run.__data__
        assert [entry for entry in log if entry[0] != "pick"] == [("compile", "lead", 1000), ("finish",)]
        assert sorted(Lead.select(Lead.owner_id).where(Lead.last_name.in_(["A", "B", "C"])).tuples()) == sorted(
            [(hanoi.id,), (warsaw.id,), (hanoi.id,)])
        rule = AssignmentRule.get_by_id(created.json["id"])
        listed = manager.get("/api/v1/assignment/rules?object=lead").json["items"]
        assert [r["target"] for r in listed] == ["desk", None]
        page = manager.get("/assignment/rules?object=lead").get_data(as_text=True)
        assert '<option value="target:desk">Desk desk</option>' in page
        assert fallback.id and rule.target == "desk"
    # The plugin switched off: its rules are skipped, not an error.
    app_without = app_factory(CRM_PLUGINS=["notes"])
    with app_without.app_context():
        other = leads.create_lead({"last_name": "Trần", "country": "VN"}, actor_id=admin.id)
        assert Lead.get_by_id(other.id).owner_id == zofia.id
        page = api_client(app_without, admin).get("/assignment/rules?object=lead").get_data(as_text=True)
        assert "“desk” (its plugin is switched off: the rule is skipped)" in page


@pytest.mark.crm_plugins("notes")
def test_an_assignment_rule_names_exactly_one_assignee_and_a_target_serving_its_object(app_factory, register_plugin):
    from crm_core.testing import api_client, make_user

    def crm_register_assignment_targets(app):
        return [country_desk([], {}, key="account_desk", objects=("account",))]

    register_plugin(plugin_module("desks", crm_register_assignment_targets))
    app = app_factory()
    with app.app_context():
        admin = make_user("admin@example.com", "Admin", is_admin=True, locale="pl")
        manager = api_client(app, admin)
        both = manager.post("/api/v1/assignment/rules", json={
            "object": "lead", "name": "Both", "target": "notes", "owner_id": admin.id})
        assert both.status_code == 422
        assert both.json["error"]["fields"]["owner_id"] == [
            "Podaj dokładnie jedno: opiekuna, grupę rotacyjną albo cel przydziału z wtyczki."]
        wrong_object = manager.post("/api/v1/assignment/rules", json={
            "object": "lead", "name": "Accounts only", "target": "account_desk"})
        assert wrong_object.status_code == 422
        assert wrong_object.json["error"]["fields"]["target"] == ["Nie ma takiego celu przydziału dla tych rekordów."]
        unknown = manager.post("/api/v1/assignment/rules", json={"object": "lead", "name": "X", "target": "nope"})
        assert unknown.status_code == 422 and "target" in unknown.json["error"]["fields"]
        from crm_core.assignment.models import AssignmentRule

        assert AssignmentRule.select().count() == 0
        # The fixture plugin's target is offered on the leads' form, not on the accounts'.
        assert manager.post("/api/v1/assignment/rules", json={
            "object": "lead", "name": "Last author", "target": "notes"}).status_code == 201
        assert "target:notes" in manager.get("/assignment/rules?object=lead").get_data(as_text=True)
        assert "target:notes" not in manager.get("/assignment/rules?object=account").get_data(as_text=True)


@pytest.mark.crm_plugins("notes")
def test_the_fixture_plugins_target_gives_a_lead_to_the_last_author(app):
    from crm_core.assignment import services as assignment
    from crm_core.leads import services as leads
    from crm_core.records import create_record
    from crm_core.testing import make_user
    from crm_notes.models import Note

    rita, bob = make_user("rita@example.com", "Rita"), make_user("bob@example.com", "Bob", is_admin=True)
    create_record(Note, actor_id=rita.id, title="Wisła Sp. z o.o.")
    assignment.create_rule("lead", {"name": "Last author", "target": "notes"})
    lead = leads.create_lead({"last_name": "Nowak", "company": "Wisła Sp. z o.o."}, actor_id=bob.id)
    nobody = leads.create_lead({"last_name": "Kowalski", "company": "Unknown"}, actor_id=bob.id)
    assert (type(lead).get_by_id(lead.id).owner_id, type(lead).get_by_id(nobody.id).owner_id) == (rita.id, bob.id)


@pytest.mark.crm_plugins("notes")
def test_an_assignment_target_key_registered_twice_stops_the_start(app_factory, register_plugin):
    def crm_register_assignment_targets(app):
        return [country_desk([], {}, key="notes")]

    register_plugin(plugin_module("desks", crm_register_assignment_targets))
    with pytest.raises(RegistryError, match=registered_twice("assignment target", "notes", "notes", "desks")):
        app_factory()


# -- crm_register_share_targets ---------------------------------------------------------------------

def circles_plugin(circles, name="circles", kind="circle"):
    """A share target type ``kind``: circles {id: (name, {user ids})}, read on every call."""
    from crm_core.permissions import ShareTarget

    def crm_register_share_targets(app):
        return [ShareTarget(
            kind, "Circle",
            members=lambda circle_id: set(circles.get(circle_id, ("", set()))[1]),
            targets_of=lambda user_id: {c for c, (_n, users) in circles.items() if user_id in users},
            names=lambda actor_id: [(c, n) for c, (n, _u) in sorted(circles.items())])]

    return plugin_module(name, crm_register_share_targets)


@pytest.mark.crm_plugins("notes")
def test_hook_crm_register_share_targets(app_factory, register_plugin):
    from crm_core.accounts import services as accounts
    from crm_core.accounts.models import Account
    from crm_core.org import services as org
    from crm_core.permissions import Level, engine
    from crm_core.testing import api_client, make_user

    circles = {}
    register_plugin(circles_plugin(circles))
    app = app_factory()
    with app.app_context():
        admin = make_user("admin@example.com", "Admin", is_admin=True)
        rita, bob, tom = (make_user(f"{n}@example.com", n.title()) for n in ("rita", "bob", "tom"))
        for user in (rita, bob, tom):
            org.set_roles(user, ["sales_rep"])
        circles.update({1: ("Alpha", {bob.id}), 2: ("Beta", {rita.id})})
        mine = accounts.create_account({"name": "Rita's"}, actor_id=rita.id)
        manager = api_client(app, admin)
        # Rita's accounts (owned by circle Beta) shared with circle Alpha: Bob reads them.
        rule = manager.post("/api/v1/access/sharing-rules", json={
            "object": "account", "name": "Beta to Alpha", "source_type": "circle", "source_id": 2,
            "target_type": "circle", "target_id": 1, "level": "read"})
        assert rule.status_code == 201, rule.json
        assert (rule.json["source_type"], rule.json["target_type"]) == ("circle", "circle")

        def sees(user):
            flask.g.pop("_crm_access", None)
            listed = [a.id for a in engine().query(user.id, "account")]
            level = engine().level(user.id, Account.get_by_id(mine.id))
            assert (mine.id in listed) == (level >= Level.READ)  # the two forms agree (I1)
            return level

        assert sees(bob) == Level.READ and sees(tom) == Level.NONE
        level, reasons = engine().explain(bob.id, Account.get_by_id(mine.id))
        assert ("sharing_rule", "Beta to Alpha") in {(r.code, r.detail) for r in reasons}
        # Membership is asked per request: Tom joins Alpha, Bob leaves it; the next request knows.
        circles[1] = ("Alpha", {tom.id})
        assert sees(tom) == Level.READ and sees(bob) == Level.NONE
        # Rita's circle is the source: another member's accounts follow, an outsider's do not.
        circles[2] = ("Beta", {rita.id, bob.id})
        bobs = accounts.create_account({"name": "Bob's"}, actor_id=bob.id)
        flask.g.pop("_crm_access", None)
        assert engine().level(tom.id, Account.get_by_id(bobs.id)) == Level.READ
        page = manager.get("/org/access").get_data(as_text=True)
        assert '<option value="circle:1">Alpha</option>' in page and "Circle Alpha" in page
        explained = manager.get(f"/api/v1/access/explain?user_id={tom.id}&object=account&record_id={mine.id}")
        assert {"level": "read", "code": "sharing_rule", "detail": "Beta to Alpha"} in explained.json["reasons"]


@pytest.mark.crm_plugins("notes")
def test_a_sharing_rule_names_a_group_its_share_target_offers(app_factory, register_plugin):
    from crm_core.org.models import SharingRule
    from crm_core.testing import api_client, make_user

    register_plugin(circles_plugin({1: ("Alpha", set())}))
    app = app_factory()
    with app.app_context():
        admin = make_user("admin@example.com", "Admin", is_admin=True, locale="vi")
        manager = api_client(app, admin)
        missing = manager.post("/api/v1/access/sharing-rules", json={
            "object": "account", "name": "Nowhere", "field": "industry", "values": ["retail"],
            "target_type": "circle", "target_id": 7, "level": "read"})
        assert missing.status_code == 422
        assert missing.json["error"]["fields"]["target_id"] == ["Hãy chọn một trong các nhóm được cung cấp cho “Circle”."]
        unknown = manager.post("/api/v1/access/sharing-rules", json={
            "object": "account", "name": "Nowhere", "field": "industry", "values": ["retail"],
            "target_type": "galaxy", "target_id": 1, "level": "read"})
        assert unknown.status_code == 422 and "target_id" in unknown.json["error"]["fields"]
        form = manager.post("/org/access/rules", data={
            "object": "account", "name": "Form", "kind": "criteria", "field": "industry",
            "values": "retail", "target": "circle:9", "level": "read"})
        assert form.status_code == 422
        assert "Hãy chọn một trong các nhóm được cung cấp cho “Circle”." in form.get_data(as_text=True)
        assert not SharingRule.select().exists()


@pytest.mark.crm_plugins("notes")
def test_a_share_target_type_registered_twice_or_named_like_a_core_one_stops_the_start(app_factory, register_plugin):
    register_plugin(circles_plugin({}, name="circles"))
    register_plugin(circles_plugin({}, name="rings"))
    with pytest.raises(RegistryError, match=registered_twice("share target type", "circle", "circles", "rings")):
        app_factory()


@pytest.mark.crm_plugins("notes")
def test_a_share_target_cannot_take_a_core_group_type(app_factory, register_plugin):
    register_plugin(circles_plugin({}, kind="team"))
    with pytest.raises(RegistryError, match="share target type 'team' is the core's own"):
        app_factory()


@pytest.mark.crm_plugins("notes")
def test_a_failing_share_target_gives_nobody(app_factory, register_plugin, caplog):
    from crm_core.accounts import services as accounts
    from crm_core.org import services as org
    from crm_core.permissions import Level, ShareTarget, engine
    from crm_core.testing import make_user

    def broken(_id):
        raise RuntimeError("directory down")

    def crm_register_share_targets(app):
        return [ShareTarget("circle", "Circle", members=broken, targets_of=broken,
                            names=lambda actor_id: [(1, "Alpha")])]

    register_plugin(plugin_module("circles", crm_register_share_targets))
    app = app_factory()
    with app.app_context():
        rita, bob = make_user("rita@example.com", "Rita"), make_user("bob@example.com", "Bob")
        for user in (rita, bob):
            org.set_roles(user, ["sales_rep"])
        account = accounts.create_account({"name": "Rita's"}, actor_id=rita.id)
        org.create_sharing_rule("account", "To Alpha", "circle", 1, Level.EDIT, source_type="user",
                                source_id=rita.id)
        flask.g.pop("_crm_access", None)
        with caplog.at_level(logging.ERROR, logger="crm.access"):
            assert engine().level(bob.id, account) == Level.NONE
            assert account.id not in [a.id for a in engine().query(bob.id, "account")]
        assert "share target circle: targets_of" in caplog.text


# -- crm_demo_data ------------------------------------------------------------------------------------

@pytest.mark.crm_plugins("notes")
def test_hook_crm_demo_data(app_factory, register_plugin):
    from crm_core.accounts.models import Account
    from crm_core.demo import load_demo
    from crm_notes.models import Note

    heard = []

    def crm_demo_data(app, seed):
        # After the core's demo data and after notes (which it requires).
        heard.append((seed, Account.alive().count() > 0, Note.alive().count()))

    register_plugin(plugin_module("later", crm_demo_data))
    app = app_factory()
    with app.app_context():
        load_demo("a demo pass phrase 2026", seed=7)
        load_demo("a demo pass phrase 2026", seed=7)
        assert Note.alive().where(Note.title == "Welcome to the demo").count() == 1
        assert Note.get(Note.title == "Welcome to the demo").body == "seed 7"
    assert heard == [(7, True, 1), (7, True, 1)]


@pytest.mark.crm_plugins("notes")
def test_a_failing_demo_data_hook_stops_the_demo(app_factory, register_plugin):
    from crm_core.demo import load_demo

    def crm_demo_data(app, seed):
        raise RuntimeError("no demo today")

    register_plugin(plugin_module("later", crm_demo_data))
    app = app_factory()
    with app.app_context(), pytest.raises(RuntimeError, match="no demo today"):
        load_demo("a demo pass phrase 2026")


@pytest.mark.crm_plugins("notes")
def test_records_written_by_a_bulk_edit_and_a_merge(app, written):
    from crm_core.accounts import services as accounts
    from crm_core.duplicates.merge import merge
    from crm_core.opportunities import services as opportunities
    from crm_core.testing import api_client

    rep = _sales_rep()
    one = accounts.create_account({"name": "Alpha"}, actor_id=rep.id)
    two = accounts.create_account({"name": "Alpha Ltd"}, actor_id=rep.id)
    contact = accounts.create_contact({"account_id": two.id, "last_name": "Nowak"}, actor_id=rep.id)
    deals = [opportunities.create_opportunity({"name": f"Deal {i}", "account_id": one.id}, actor_id=rep.id)
             for i in range(2)]
    listener = written()
    done = api_client(app, rep).post("/api/v1/opportunities/bulk", json={
        "ids": [d.id for d in deals], "changes": {"probability": 55}})
    assert done.status_code == 200 and done.json["changed"] == 2, done.json
    # Each opportunity of a bulk edit is its own write (one that fails keeps its values).
    assert listener.calls == [("opportunity", [deals[0].id], {"probability"}, rep.id),
                              ("opportunity", [deals[1].id], {"probability"}, rep.id)]
    listener.calls.clear()
    merge("account", one, two, actor_id=rep.id, take=("name",))
    assert ("contact", [contact.id], {"account_id"}, rep.id) in listener.calls
    assert ("account", [one.id], {"name"}, rep.id) in listener.calls
