"""Imports as the people and scripts start them: a run is recorded, its file kept in the
instance folder, then read and imported at once (small files, the command line) or by the
worker (large files), with its progress, counts and per-row errors on the run."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from crm_core.audit.services import log_security
from crm_core.db import database, utcnow
from crm_core.errors import UserError
from crm_core.imports.messages import message
from crm_core.imports.models import ImportMapping, ImportRun
from crm_core.imports.pipeline import FileProblem, Importer, targets
from crm_core.imports.reading import Limits, Refused, file_format, read
from crm_core.imports.registry import import_objects
from crm_core.org.services import Problems

TASK = "core.run_import"


def limits():
    config = current_app.config
    return Limits(max_bytes=config["CRM_IMPORT_MAX_MB"] * 1024 * 1024,
                  max_rows=config["CRM_IMPORT_MAX_ROWS"])


def spec_of(object_name):
    specs = import_objects()
    if object_name not in specs:
        raise UserError(_l("These records cannot be imported."), field="object", code="unknown_object")
    return specs[object_name]


# -- runs ----------------------------------------------------------------------------------------

def start_import(object_name, data, file_name, actor_id, mapping=None, dry_run=False, partial=False,
                 encoding=None, background=None):
    """Record an import of ``data`` (the file's bytes) and run it: now, or through the worker
    when ``background`` (default: when the file is larger than CRM_IMPORT_INLINE_KB).
    ``mapping`` is ``{file column: field or None}``; columns it does not name map by their
    own names. Returns the ImportRun (reload it for the outcome of a queued run)."""
    spec_of(object_name)
    mapping = check_mapping(object_name, mapping or {})
    run = ImportRun.create(object_name=object_name, user_id=actor_id, file_name=file_name[:255],
                           file_format=file_format(file_name, data[:4]), mapping=json.dumps(mapping),
                           encoding=encoding, dry_run=dry_run, partial=partial, status="queued")
    if background is None:
        background = len(data) > current_app.config["CRM_IMPORT_INLINE_KB"] * 1024
    if not background:
        return execute(run, data)
    path = _folder() / f"{run.id}.upload"
    path.write_bytes(data)
    run.file_path = str(path)
    run.save()
    current_app.extensions["crm_jobs"].enqueue(TASK, run.id)
    return ImportRun.get_by_id(run.id)


def run_import(run_id):
    """The worker's task: run a queued import."""
    run = ImportRun.get_or_none(ImportRun.id == run_id)
    if run is None or run.status != "queued":
        return
    path = Path(run.file_path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _finish(run, "failed", errors=[_file_error("failed", detail=str(exc))])
    try:
        execute(run, data)
    finally:
        path.unlink(missing_ok=True)
        _progress_path(run.id).unlink(missing_ok=True)


def execute(run, data):
    from crm_core.db import BULK_ROWS_FOR_STATISTICS, refresh_statistics

    from crm_core.users.models import User

    user = User.get_by_id(run.user_id)
    spec = spec_of(run.object_name)
    run.status = "running"
    run.save()
    with force_locale(user.locale or current_app.config["CRM_DEFAULT_LOCALE"]):
        try:
            table = read(data, run.file_name, limits(), encoding=run.encoding)
            run.encoding, run.delimiter, run.total_rows = table.encoding, table.delimiter, table.estimated_rows
            run.save()  # the estimate is the progress bar's end
            importer = Importer(spec, run.user_id, table.header, json.loads(run.mapping),
                                partial=run.partial, dry_run=run.dry_run)
            result = importer.run(table.rows, progress=lambda done: _report_progress(run, done))
        except Refused as refused:
            return _finish(run, "failed", errors=[_file_error(refused.code, **refused.params)])
        except FileProblem as problem:
            return _finish(run, "failed", errors=[
                {"row": 1, "column": column, "value": "", "code": code, "params": params}
                for column, code, params in problem.problems])
        except Exception as exc:
            # Never leave a run "running": the page would refresh for ever.
            _finish(run, "failed", errors=[_file_error("failed", detail=type(exc).__name__)])
            raise
    status = "refused" if result.refused and not run.partial else "done"
    run.created_count = result.created if result.written else 0
    run.updated_count = result.updated if result.written else 0
    run.skipped_count, run.refused_count, run.total_rows = result.skipped, result.refused, result.total
    if result.written:
        log_security("import", actor_id=run.user_id, subject=run.object_name, rows=result.total,
                     created=result.created, updated=result.updated, refused=result.refused)
        if result.created + result.updated >= BULK_ROWS_FOR_STATISTICS:
            refresh_statistics()  # the lists' plans should know about the new rows now
    return _finish(run, status, errors=result.errors,
                   would=None if result.written else (result.created, result.updated))


def _file_error(code, **params):
    return {"row": None, "column": "", "value": "", "code": code, "params": params}


def _finish(run, status, errors, would=None):
    run.status = status
    run.errors = json.dumps(errors, default=str)
    run.finished_at = utcnow()
    if would is not None and run.dry_run:
        # A dry run reports what it would have created and changed.
        run.created_count, run.updated_count = would
    run.save()
    return run


def _folder():
    folder = Path(current_app.instance_path) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _progress_path(run_id):
    return _folder() / f"{run_id}.progress"


def _report_progress(run, done):
    # A file beside the upload, not the database: the import's own transaction holds the
    # rows it writes until the end, and on SQLite any other write would wait for it.
    if run.file_path:
        _progress_path(run.id).write_text(str(done))


def progress(run):
    """(rows done, rows expected) of a run."""
    if run.status == "running":
        try:
            done = int(_progress_path(run.id).read_text() or 0)
        except (OSError, ValueError):
            done = 0
        return done, max(run.total_rows, done, 1)
    if run.status == "queued":
        return 0, max(run.total_rows, 1)
    return run.total_rows, max(run.total_rows, 1)


def visible_runs(actor_id):
    """The runs a user may see: their own; an administrator sees everyone's."""
    from crm_core.users.models import User

    query = ImportRun.select()
    if not User.get_by_id(actor_id).is_admin:
        query = query.where(ImportRun.user_id == actor_id)
    return query


def errors(run):
    """The run's per-row errors, each with its message in the current language."""
    return [{**error, "message": message(error["code"], error.get("params"))}
            for error in json.loads(run.errors or "[]")]


ERROR_COLUMNS = ("row", "column", "value", "code", "message")


def errors_csv(run):
    """The error report as CSV (formulas defused like every export)."""
    from crm_core.exports import _text

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(ERROR_COLUMNS)
    for error in errors(run):
        writer.writerow([_text(error.get(name)) for name in ERROR_COLUMNS])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


# -- saved mappings ----------------------------------------------------------------------------------

def check_mapping(object_name, mapping):
    """``mapping`` as ``{column: field or None}`` naming only fields of the object."""
    problems = Problems()
    if not isinstance(mapping, dict):
        problems.add("mapping", _l("Give the mapping as pairs of a column and a field."))
        problems.check()
    known = targets(spec_of(object_name))
    clean = {}
    for column, target in mapping.items():
        if not isinstance(column, str) or not column.strip() or len(column) > 200 or \
                not (target is None or isinstance(target, str)):
            problems.add("mapping", _l("Give the mapping as pairs of a column and a field."))
        elif target and target not in known:
            problems.add("mapping", _l("No field is named “%(field)s”.", field=target))
        else:
            clean[column.strip()] = target or None
    problems.check()
    return clean


def save_mapping(object_name, name, mapping, actor_id):
    problems = Problems()
    name = (name or "").strip()
    if not name or len(name) > 100:
        problems.add("name", _l("Enter a name."))
    problems.check()
    mapping = check_mapping(object_name, mapping)
    if ImportMapping.select().where((ImportMapping.object_name == object_name)
                                    & (ImportMapping.name == name)).exists():
        raise UserError(_l("A mapping of this name exists already."), field="name", code="duplicate")
    with database.atomic():
        return ImportMapping.create(object_name=object_name, name=name, mapping=json.dumps(mapping),
                                    created_by_id=actor_id)


def delete_mapping(mapping, actor_id):
    mapping.delete_instance()


def mappings(object_name=None):
    query = ImportMapping.select().order_by(ImportMapping.object_name, ImportMapping.name)
    if object_name:
        query = query.where(ImportMapping.object_name == object_name)
    return query


def mapping_of(mapping_record):
    return json.loads(mapping_record.mapping)
