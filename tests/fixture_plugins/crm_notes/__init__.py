"""Fixture plugin ``notes``: implements every core hook, so the tests can prove each one works."""

import click
from huey import crontab
from markupsafe import Markup

from crm_core import PluginManifest, Setting, hookimpl

manifest = PluginManifest(
    name="notes",
    label="Notes",
    version="1.2.0",
    core=">=0.1,<1",
    settings=(Setting("greeting", default="hello"), Setting("page_size", default=20)),
    description="A tiny record type used by the core's tests.",
)


@hookimpl
def crm_register_models(app):
    from crm_notes.models import Note

    return [Note]


@hookimpl
def crm_register_migrations(app):
    return "crm_notes.migrations"


@hookimpl
def crm_register_blueprints(app):
    from crm_notes.views import blueprint

    return [blueprint]


@hookimpl
def crm_register_api_blueprints(app):
    from crm_notes.api import blueprint

    return [blueprint]


@hookimpl
def crm_register_commands(app):
    @click.command("count")
    def count():
        """Print how many notes exist."""
        from crm_notes.models import Note

        click.echo(f"{Note.alive().count()} notes")

    return [count]


@hookimpl
def crm_register_tasks(app):
    from crm_core.jobs import TaskSpec
    from crm_notes.services import add_note

    def nightly_cleanup():
        return "cleaned"

    return [TaskSpec("add", add_note),
            TaskSpec("nightly_cleanup", nightly_cleanup, schedule=crontab(minute="0", hour="3"))]


@hookimpl
def crm_register_template_filters(app):
    return {"shout": lambda text: str(text).upper() + "!"}


@hookimpl
def crm_register_template_globals(app):
    return {"notes_greeting": app.extensions["crm"].settings("notes")["greeting"]}


@hookimpl
def crm_menu_items(app, actor):
    from crm_core.web.slots import MenuItem

    return [MenuItem("notes_ui.index", "Notes", order=50)]


@hookimpl
def crm_page_slot(app, slot, actor, context):
    if slot == "dashboard":
        return Markup('<section class="notes-widget">Notes widget</section>')
    if slot == "footer":
        return "<notes & footer>"  # plain text: must come out escaped
    return None


@hookimpl
def crm_app_created(app):
    app.extensions["notes_ready"] = True


@hookimpl
def crm_records_written(app, actor_id, object, ids, fields):
    # Counts what it heard, so a test can see the fixture plugin is called too.
    heard = app.extensions.setdefault("notes_written", {})
    heard[object] = heard.get(object, 0) + len(ids)


@hookimpl
def crm_register_assignment_targets(app):
    from crm_core.assignment import AssignmentTarget

    def compile(object_name, block):
        from crm_notes.models import Note

        class LastAuthor:
            """A lead goes to whoever last wrote a note titled like its company."""

            def pick(self, values):
                return (Note.alive(Note.created_by_id).where(Note.title == (values.get("company") or ""))
                        .order_by(Note.id.desc()).scalar())

        return LastAuthor()

    return [AssignmentTarget("notes", "Author of the company's last note", ("lead",), compile)]


@hookimpl
def crm_demo_data(app, seed):
    # Idempotent: the demo note is added once, however often `crm demo` runs.
    from crm_core.records import create_record
    from crm_notes.models import Note

    if not Note.alive().where(Note.title == "Welcome to the demo").exists():
        create_record(Note, title="Welcome to the demo", body=f"seed {seed}")
