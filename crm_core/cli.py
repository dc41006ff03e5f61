"""The ``crm`` command (also ``python -m crm_core``)."""

from __future__ import annotations

import logging
import os
import secrets
import sys
from pathlib import Path

import click

from crm_core.errors import ConfigError, CrmError, MigrationError, PluginError, RegistryError
from crm_core.i18n_cli import i18n
from crm_core.version import __version__

EXIT_CONFIG = 2


class CliState:
    """Builds the application once, on first use, from the environment."""

    def __init__(self):
        self._app = None

    @property
    def app(self):
        if self._app is None:
            from crm_core.app import create_app

            self._app = create_app()
        return self._app


def fail(message, code=1):
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def app_or_exit(state):
    try:
        return state.app
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    except (PluginError, RegistryError, MigrationError) as exc:
        fail(str(exc), EXIT_CONFIG)


class CrmGroup(click.Group):
    """Core commands plus ``crm <plugin> <command>`` for each enabled plugin's commands."""

    def list_commands(self, ctx):
        names = super().list_commands(ctx)
        try:
            host = _state(ctx).app.extensions["crm"]
        except CrmError:
            return names  # the core commands still work; the error shows when one runs
        return names + sorted({host.registries["commands"].owner(n) for n in host.registries["commands"]
                               if host.registries["commands"].owner(n) != "core"})

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        try:
            host = _state(ctx).app.extensions["crm"]
        except CrmError:
            return None
        commands = host.registries["commands"]
        mine = [n for n in commands if commands.owner(n) == name]
        if not mine:
            return None
        app = _state(ctx).app

        @click.pass_context
        def enter_app_context(group_ctx):
            # Kept until the command finishes, so nested groups run inside it too.
            group_ctx.with_resource(app.app_context())

        group = click.Group(name, callback=enter_app_context,
                            help=f"Commands of the {name} plugin.")
        for full_name in mine:
            group.add_command(commands[full_name])
        return group


def _state(ctx):
    root = ctx.find_root()
    if root.obj is None:
        root.obj = CliState()
    return root.obj


@click.group(cls=CrmGroup)
@click.version_option(__version__, prog_name="crm")
@click.pass_context
def main(ctx):
    """The sales CRM: set up, run, and look after an instance."""
    logging.basicConfig(level=os.environ.get("CRM_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _state(ctx)


main.add_command(i18n)


# -- schema ---------------------------------------------------------------------

def migration_sources(app):
    return [source for _, source in app.extensions["crm"].registries["migrations"].items()]


def run_migrations(app, quiet=False):
    from crm_core.migrator import upgrade

    def report(label, name):
        if not quiet:
            click.echo(f"  applied {label} {name}")

    try:
        applied = upgrade(app.extensions["crm_db"], migration_sources(app), report)
    except MigrationError as exc:
        fail(str(exc))
    from crm_core.org.services import ensure_builtin_roles

    ensure_builtin_roles()
    if applied:
        from crm_core.db import refresh_statistics

        refresh_statistics()
    if not quiet:
        if applied:
            click.echo(f"Schema upgraded: {len(applied)} migration(s) applied.")
        else:
            click.echo("Schema is up to date: nothing to do.")
    return applied


@main.command()
@click.option("--admin-email", help="Create this administrator if no such user exists.")
@click.option("--admin-name", default=None, help="The administrator's display name.")
@click.option("--admin-password-stdin", is_flag=True,
              help="Read the administrator's password from standard input "
                   "(otherwise one is generated and printed once).")
@click.pass_context
def init(ctx, admin_email, admin_name, admin_password_stdin):
    """Create or upgrade the schema of the core and the enabled plugins (idempotent)."""
    app = app_or_exit(_state(ctx))
    with app.app_context():
        run_migrations(app)
        if admin_email:
            password = sys.stdin.readline().rstrip("\r\n") if admin_password_stdin else None
            ensure_admin(admin_email, admin_name, password)


def ensure_admin(email, name=None, password=None):
    from crm_core.users.services import UserError, create_user, find_by_email

    try:
        existing = find_by_email(email)
        if existing is not None:
            click.echo(f"Administrator {existing.email} already exists: unchanged.")
            return existing, None
        generated = password is None
        password = password if password is not None else secrets.token_urlsafe(12)
        user = create_user(email, name or email.split("@")[0], password, is_admin=True)
    except UserError as exc:
        fail(str(exc))
    click.echo(f"Administrator {user.email} created.")
    if generated:
        click.echo(f"Password (shown once): {password}")
    return user, password


@main.group()
def migrate():
    """Show or apply schema migrations."""


@migrate.command("status")
@click.pass_context
def migrate_status(ctx):
    """List every migration of the core and enabled plugins, applied or pending."""
    from crm_core.migrator import status

    app = app_or_exit(_state(ctx))
    with app.app_context():
        rows = status(app.extensions["crm_db"], migration_sources(app))
    pending = 0
    for row in rows:
        state = f"applied {row.applied_at:%Y-%m-%d %H:%M}" if row.applied_at else "pending"
        pending += row.applied_at is None
        click.echo(f"{row.label:<16} {row.name:<40} {state}")
    click.echo(f"{pending} pending." if pending else "Everything is applied.")


@migrate.command("up")
@click.pass_context
def migrate_up(ctx):
    """Apply pending migrations."""
    app = app_or_exit(_state(ctx))
    with app.app_context():
        run_migrations(app)


@migrate.command("make")
@click.argument("label")
@click.argument("slug")
@click.pass_context
def migrate_make(ctx, label, slug):
    """Write the next migration of LABEL (core or a plugin) from its models' changes."""
    from crm_core.migrator import make

    app = app_or_exit(_state(ctx))
    host = app.extensions["crm"]
    sources = host.registries["migrations"]
    if label not in sources:
        fail(f"no migrations labelled {label!r}; known: {', '.join(sources) or 'none'}")
    models = [m for t, m in host.registries["models"].items()
              if host.registries["models"].owner(t) == label]
    with app.app_context():
        path = make(app.extensions["crm_db"], sources[label], models, slug)
    click.echo(f"Wrote {path}; read it before committing." if path
               else "The database already matches the models: nothing to write.")


# -- users ----------------------------------------------------------------------------

@main.group()
def user():
    """Create, disable or enable users, and set passwords."""


def _read_password(from_stdin):
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@user.command("create")
@click.argument("email")
@click.option("--name", default=None)
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
@click.option("--locale", default=None, help="en, vi, pl, zh, zh_TW or ru")
@click.option("--timezone", default=None, help="e.g. Europe/Warsaw")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_context
def user_create(ctx, email, name, admin, locale, timezone, password_stdin):
    """Create a user who can sign in."""
    from crm_core.users.services import UserError, create_user

    app = app_or_exit(_state(ctx))
    with app.app_context():
        try:
            created = create_user(email, name, _read_password(password_stdin), is_admin=admin,
                                  locale=locale, timezone=timezone)
        except UserError as exc:
            fail(str(exc))
    click.echo(f"User {created.email} created" + (" (administrator)." if admin else "."))


def _find_user_or_fail(email):
    from crm_core.users.services import find_by_email

    found = find_by_email(email)
    if found is None:
        fail(f"no user {email}")
    return found


def _set_active(ctx, email, active, done):
    from crm_core.users.services import set_active

    app = app_or_exit(_state(ctx))
    with app.app_context():
        set_active(_find_user_or_fail(email), active)
    click.echo(done)


@user.command("disable")
@click.argument("email")
@click.pass_context
def user_disable(ctx, email):
    """Disable a user: their sessions and API tokens end at once."""
    _set_active(ctx, email, False, f"{email} is disabled; their sessions and tokens have ended.")


@user.command("enable")
@click.argument("email")
@click.pass_context
def user_enable(ctx, email):
    """Let a disabled user sign in again."""
    _set_active(ctx, email, True, f"{email} is enabled.")


@user.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_context
def user_set_password(ctx, email, password_stdin):
    """Set a user's password; their sessions end."""
    from crm_core.users.services import UserError, reset_password

    app = app_or_exit(_state(ctx))
    with app.app_context():
        target = _find_user_or_fail(email)
        try:
            reset_password(target, _read_password(password_stdin))
        except UserError as exc:
            fail(str(exc))
    click.echo(f"The password of {email} is set; their sessions have ended.")


# -- serving ----------------------------------------------------------------------

@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=min(2 * (os.cpu_count() or 1) + 1, 8), show_default=True,
              type=click.IntRange(1, 64), help="gunicorn worker processes")
@click.option("--dev", is_flag=True, help="Flask's single-process development server instead.")
@click.pass_context
def run(ctx, host, port, workers, dev):
    """Serve the web UI and the API."""
    if dev:
        os.environ.setdefault("CRM_ENV", "dev")
    app = app_or_exit(_state(ctx))  # fail fast on bad configuration
    if dev:
        app.run(host=host, port=port, debug=False, use_reloader=False)
        return
    from crm_core.server import serve

    serve(host, port, workers)


@main.command()
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--worker-type", default="thread", show_default=True,
              type=click.Choice(["thread", "process", "greenlet"]))
@click.option("--no-periodic", is_flag=True, help="Do not run the schedules in this worker.")
@click.pass_context
def worker(ctx, workers, worker_type, no_periodic):
    """Run background jobs and schedules."""
    app = app_or_exit(_state(ctx))
    jobs = app.extensions["crm_jobs"]
    if app.config["CRM_JOBS_IMMEDIATE"]:
        fail("CRM_JOBS_IMMEDIATE is on: jobs run inside the web process; there is nothing to consume",
             EXIT_CONFIG)
    click.echo(f"Worker for {len(jobs.names)} task(s): {', '.join(jobs.names) or 'none'}")
    jobs.consumer(workers=workers, worker_type=worker_type, periodic=not no_periodic).run()


# -- plugins ------------------------------------------------------------------------

@main.command()
@click.pass_context
def plugins(ctx):
    """List discovered plugins, whether each is enabled, and what each registers."""
    app = app_or_exit(_state(ctx))
    host = app.extensions["crm"]
    enabled = {p.name: p for p in host.plugins}
    if not host.available:
        click.echo("No plugins are installed.")
    for name, source in sorted(host.available.items()):
        plugin = enabled.get(name)
        origin = (f"{source.distribution} {source.distribution_version}" if source.distribution
                  else source.origin)
        if plugin is None:
            click.echo(f"{name}  disabled  ({origin}; not imported)")
            continue
        click.echo(f"{name}  enabled  {plugin.manifest.version}  {plugin.manifest.label}  ({origin})")
        for kind, registry in _registries_for_listing(host):
            owned = registry.by_owner(name)
            if owned:
                click.echo(f"    {kind}: {', '.join(owned)}")


def _registries_for_listing(host):
    labels = {"models": "tables", "migrations": "migrations", "blueprints": "pages",
              "api_blueprints": "API", "commands": "commands", "tasks": "tasks",
              "template filter": "template filters", "template global": "template globals"}
    return [(labels[key], host.registries[key]) for key in labels if key in host.registries]


# -- export ----------------------------------------------------------------------------

@main.command("export")
@click.argument("object_name", metavar="OBJECT")
@click.option("--format", "file_format", type=click.Choice(["csv", "xlsx"]), default="csv")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="The file to write (default: standard output).")
@click.option("--as", "as_email", default=None,
              help="Export what this user may see (default: an active administrator, who sees all).")
@click.pass_context
def export_command(ctx, object_name, file_format, output, as_email):
    """Export the records of OBJECT (account, contact...) that a user may see."""
    from crm_core import exports
    from crm_core.permissions import engine
    from crm_core.users.models import User

    app = app_or_exit(_state(ctx))
    with app.app_context():
        if object_name not in engine().objects:
            fail(f"no such kind of record: {object_name!r}; choose one of "
                 f"{', '.join(sorted(engine().objects))}")
        if as_email:
            reader = _find_user_or_fail(as_email)
        else:
            reader = User.alive().where((User.is_admin == True) & (User.active == True)).first()  # noqa: E712
            if reader is None:
                fail("no active administrator: name a user with --as")
        data, count = exports.write(object_name, reader.id, file_format)
    if output:
        with open(output, "wb") as handle:
            handle.write(data)
        click.echo(f"{count} record(s) written to {output}.", err=True)
    else:
        if file_format == "xlsx" and sys.stdout.isatty():
            fail("an XLSX file is binary: name a file with --output")
        sys.stdout.buffer.write(data)


# -- import ------------------------------------------------------------------------------

@main.command("import")
@click.argument("object_name", metavar="OBJECT")
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@click.option("--mapping", "mapping_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help='A JSON file {"column in the file": "field", "column to ignore": null}.')
@click.option("--dry-run", is_flag=True, help="Check every row and write nothing.")
@click.option("--partial", is_flag=True, help="Import the good rows even when others are refused.")
@click.option("--as", "as_email", default=None,
              help="Import as this user (default: an active administrator).")
@click.option("--encoding", default=None, help="The CSV file's encoding (default: detected).")
@click.pass_context
def import_command(ctx, object_name, path, mapping_path, dry_run, partial, as_email, encoding):
    """Import FILE (.csv or .xlsx) into records of OBJECT (account, contact, lead...).

    All or nothing unless --partial; a row already imported is skipped, one with a known
    external_id updates its record. The exit status is 1 when any row was refused (each is
    listed by its line in the file), 2 when the file could not be imported at all.
    """
    import json

    from crm_core.errors import UserError
    from crm_core.imports import services
    from crm_core.users.models import User

    app = app_or_exit(_state(ctx))
    with app.app_context():
        if as_email:
            actor = _find_user_or_fail(as_email)
        else:
            actor = User.alive().where((User.is_admin == True) & (User.active == True)).first()  # noqa: E712
            if actor is None:
                fail("no active administrator: name a user with --as")
        mapping = None
        if mapping_path:
            try:
                mapping = json.loads(Path(mapping_path).read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                fail(f"{mapping_path} is not a JSON file: {exc}")
        data = Path(path).read_bytes()
        try:
            run = services.start_import(object_name, data, Path(path).name, actor.id, mapping=mapping,
                                        dry_run=dry_run, partial=partial, encoding=encoding,
                                        background=False)
        except UserError as exc:
            fail(" ".join(str(m) for m in exc.fields.values()), 2)
        problems = services.errors(run)
    for error in problems:
        where = f"line {error['row']}" if error["row"] else "file"
        column = f", column {error['column']}" if error["column"] else ""
        value = f" ({error['value']!r})" if error["value"] else ""
        click.echo(f"{where}{column}{value}: {error['message']}", err=True)
    verb = "would be" if dry_run else "were"
    click.echo(f"Import {run.id} {run.status}: {run.total_rows} row(s); {run.created_count} {verb} "
               f"created, {run.updated_count} {verb} updated, {run.skipped_count} skipped, "
               f"{run.refused_count} refused.")
    if run.status == "failed":
        sys.exit(2)
    if run.refused_count:
        sys.exit(1)


# -- demo ----------------------------------------------------------------------------

DEMO_ADMIN = "admin@example.com"


class ScaleType(click.ParamType):
    """A number of sales reps, or a named size ("small", "large")."""

    name = "scale"

    def convert(self, value, param, ctx):
        from crm_core.opportunities.scale import SIZES

        text = str(value).strip().lower()
        if text in SIZES or (text.isdigit()):
            return text if text in SIZES else int(text)
        self.fail(f"{value!r} is not a number of reps nor one of: {', '.join(SIZES)}", param, ctx)


@main.command()
@click.option("--scale", default="0", type=ScaleType(),
              help="Also generate this many sales reps; or a size for benchmarks: small (100 reps, "
                   "10,000 opportunities) or large (1,000 reps in teams of 50, 1,000,000 opportunities).")
@click.option("--opportunities", default=None, type=click.IntRange(0),
              help="Generate this many opportunities (with accounts and stage history) over the generated "
                   "reps.")
@click.pass_context
def demo(ctx, scale, opportunities):
    """Set up a demo company on this instance: the schema, an administrator and the sales team.

    Idempotent: a second run adds nothing that is already there (a named --scale tops up to
    its size; a number of reps or --opportunities adds that many).
    """
    from crm_core.demo import load_demo

    os.environ.setdefault("CRM_ENV", "demo")
    write_instance_config()
    app = app_or_exit(_state(ctx))
    with app.app_context():
        run_migrations(app)
        _, password = ensure_admin(DEMO_ADMIN, "Demo Administrator")
        first_run = password is not None
        # People missing since the first run get a fresh password nobody knows:
        # an administrator resets it when needed.
        if isinstance(scale, str):
            from crm_core.opportunities.scale import missing

            scale, wanted = missing(scale)
            opportunities = wanted if opportunities is None else opportunities
        counts = load_demo(password or secrets.token_urlsafe(12), scale=scale, opportunities=opportunities or 0)
        from crm_core.db import refresh_statistics

        refresh_statistics()  # the generated rows arrived in bulk: plan the lists with them
    click.echo(f"Demo people added: {counts['people']}; departments: {counts['departments']}; "
               f"accounts: {counts['accounts']}; leads: {counts['leads']}; "
               f"opportunities: {counts['opportunities']}; "
               f"generated sales reps: {counts['generated']}; "
               f"generated opportunities: {counts['generated_opportunities']}.")
    if first_run:
        click.echo(f"Demo ready. Start it with `crm run` and sign in as {DEMO_ADMIN} with the "
                   f"password {password} (the demo people share it).")
    else:
        click.echo("Demo ready. Start it with `crm run`; the password is the one printed by the "
                   "first `crm demo`.")


def write_instance_config():
    """Give a new instance its own secret key so that ``crm run`` can start after ``crm demo``."""
    from crm_core.config import CONFIG_FILE_NAME, default_instance_path

    folder = Path(os.environ.get("CRM_INSTANCE_PATH") or default_instance_path())
    path = folder / CONFIG_FILE_NAME
    if path.exists() or os.environ.get("CRM_CONFIG"):
        return
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by `crm demo`. Keys are the CRM_* settings (see README).\n"
        'CRM_ENV = "demo"\n'
        f'CRM_SECRET_KEY = "{secrets.token_urlsafe(48)}"\n', encoding="utf-8")
    path.chmod(0o600)
    click.echo(f"Wrote {path} with a new secret key.")
