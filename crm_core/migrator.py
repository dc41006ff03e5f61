"""Schema migrations per package, on top of peewee's ``playhouse.migrations``.

Each package (the core, each plugin) keeps ``NNNN_slug.py`` files in its own
folder and its own history table ``<label>_migrations``. Packages run in
dependency order: core first, then plugins as their ``requires`` sort them.
A process-wide lock (PostgreSQL advisory lock, or a lock file beside the SQLite
database) lets two ``crm init`` run at once without applying anything twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import importlib.resources
import zlib
from dataclasses import dataclass
from pathlib import Path

from playhouse.migrations import MigrationError as PeeweeMigrationError
from playhouse.migrations import Runner, template
from playhouse.schema_diff import diff_models

from crm_core.db import vendor
from crm_core.errors import MigrationError


@dataclass(frozen=True)
class MigrationSource:
    """Where one package's migrations live: ``label`` names its history table."""

    label: str
    package: str

    @property
    def directory(self):
        try:
            return Path(str(importlib.resources.files(self.package)))
        except ModuleNotFoundError as exc:
            raise MigrationError(f"{self.label}: migrations package {self.package!r} "
                                 f"cannot be imported ({exc})")

    @property
    def history_table(self):
        return f"{self.label}_migrations"


def runner(db, source):
    return Runner(db, directory=str(source.directory), table_name=source.history_table)


@dataclass(frozen=True)
class MigrationState:
    label: str
    name: str
    applied_at: object  # datetime or None


def status(db, sources):
    """Every migration of every source, applied or pending, in run order."""
    rows = []
    for source in sources:
        for migration in runner(db, source).status():
            if migration.path is None:
                raise MigrationError(f"{source.label}: migration {migration.name} is recorded "
                                     "as applied but its file is missing")
            rows.append(MigrationState(source.label, migration.name, migration.applied))
    return rows


def _check_files(source):
    seen = {}
    for path in sorted(source.directory.glob("[0-9]*.py")):
        number = path.name.split("_", 1)[0]
        if not (len(number) == 4 and number.isdigit() and "_" in path.stem):
            raise MigrationError(f"{source.label}: {path.name} must be named NNNN_slug.py")
        if number in seen:
            raise MigrationError(f"{source.label}: {seen[number]} and {path.name} share the "
                                 f"number {number}")
        seen[number] = path.name


@contextlib.contextmanager
def migration_lock(db):
    """Serialise schema changes between processes, holding a connection for them.

    On SQLite the file lock comes before the connection: connecting sets pragmas (WAL)
    that would otherwise wait on another process's migration and could time out.
    """
    if vendor(db) == "postgresql":
        key = zlib.crc32(b"crm-migrations")
        with db.connection_context():
            db.execute_sql("SELECT pg_advisory_lock(%s)", (key,))
            try:
                yield
            finally:
                db.execute_sql("SELECT pg_advisory_unlock(%s)", (key,))
        return
    if db.database == ":memory:":
        with db.connection_context():
            yield
        return
    with open(str(db.database) + ".migrate-lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            with db.connection_context():
                yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upgrade(db, sources, report=lambda label, name: None):
    """Apply every pending migration; return ``[(label, name), ...]`` applied."""
    for source in sources:
        _check_files(source)
    applied = []
    with migration_lock(db):
        for source in sources:
            try:
                names = runner(db, source).up()
            except PeeweeMigrationError as exc:
                raise MigrationError(f"{source.label}: {exc}") from exc
            except Exception as exc:
                raise MigrationError(f"{source.label}: a migration failed and was rolled back: "
                                     f"{type(exc).__name__}: {exc}") from exc
            for name in names:
                report(source.label, name)
                applied.append((source.label, name))
    return applied


def drift(db, models):
    """What the database lacks or has extra compared with the models (empty when in step)."""
    return diff_models(db, list(models))


def make(db, source, models, slug):
    """Write the next migration of ``source`` from the difference between models and database."""
    difference = drift(db, models)
    if not difference:
        return None
    body = template(difference).replace(
        "from peewee import *", "from peewee import *  # noqa: F401,F403", 1)
    return runner(db, source).create(slug, body=body)


def source_for(package_label, package):
    """Import check + MigrationSource in one step, for the registry."""
    importlib.import_module(package)
    return MigrationSource(package_label, package)


# -- helpers for migration files ---------------------------------------------------------
# Migrations must not import today's models; these helpers are frozen instead: a
# change to the record columns gets a new versioned helper, never an edit of this one.

def record_columns_v1():
    """The bookkeeping columns of every business record (RecordModel), as first shipped."""
    import datetime

    from peewee import IntegerField

    from crm_core.db import UTCDateTimeField

    def now():
        return datetime.datetime.now(datetime.timezone.utc)

    return {
        "version": IntegerField(default=1),
        "created_at": UTCDateTimeField(default=now, index=True),
        "created_by_id": IntegerField(null=True),
        "updated_at": UTCDateTimeField(default=now),
        "updated_by_id": IntegerField(null=True),
        "deleted_at": UTCDateTimeField(null=True, index=True),
        "deleted_by_id": IntegerField(null=True),
    }


def frozen_table(db, table_name, columns, indexes=()):
    """A throw-away model class for ``table_name`` with ``columns``, bound to ``db``."""
    from peewee import Model

    meta = type("Meta", (), {"database": db, "table_name": table_name, "indexes": tuple(indexes)})
    return type("".join(part.title() for part in table_name.split("_")), (Model,),
                {**columns, "Meta": meta})
