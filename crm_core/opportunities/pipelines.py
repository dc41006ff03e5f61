"""Pipelines contributed through ``crm_register_pipelines``: their specs, the registry
built at start, and writing them to the database when first needed.

The core contributes the standard sales process itself (the same hook as plugins), so a
fresh installation can take opportunities at once. Names are written in the company's
language (``CRM_DEFAULT_LOCALE``) the first time; after that they are the company's data
and an administrator may rename them.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

import peewee
import psycopg

from crm_core.plugins import CORE, RegistryError

INTEGRITY = (peewee.IntegrityError, sqlite3.IntegrityError, psycopg.IntegrityError)


@dataclass(frozen=True)
class StageSpec:
    key: str
    name: Any  # a str or a lazy_gettext string
    probability: int = 0
    kind: str = "open"


@dataclass(frozen=True)
class PipelineSpec:
    key: str
    name: Any
    stages: tuple = field(default_factory=tuple)
    description: Any = None
    is_default: bool = False


def check_spec(spec, owner):
    from crm_core.opportunities.models import STAGE_KINDS

    if not isinstance(spec, PipelineSpec):
        raise RegistryError(f"{owner}: {spec!r} is not a crm_core.opportunities.PipelineSpec")
    if owner != CORE and not spec.key.startswith(owner + "."):
        raise RegistryError(f"{owner}: pipeline key {spec.key!r} must start with {owner + '.'!r}")
    stages = list(spec.stages)
    keys = [stage.key for stage in stages]
    if any(not isinstance(stage, StageSpec) for stage in stages) or len(set(keys)) != len(keys):
        raise RegistryError(f"{owner}: pipeline {spec.key!r} needs StageSpec stages with distinct keys")
    kinds = [stage.kind for stage in stages]
    if any(kind not in STAGE_KINDS for kind in kinds) or "open" not in kinds or "won" not in kinds:
        raise RegistryError(f"{owner}: pipeline {spec.key!r} needs an open and a won stage "
                            f"(kinds: {', '.join(STAGE_KINDS)})")
    if any(not 0 <= int(stage.probability) <= 100 for stage in stages):
        raise RegistryError(f"{owner}: pipeline {spec.key!r}: probabilities are percentages, 0 to 100")


def collect(app, host):
    """Called by create_app: every contributed pipeline, checked, by key."""
    host.collect("crm_register_pipelines", "pipeline", "pipelines", lambda spec: spec.key, check_spec,
                 app=app)


def registered(app=None):
    from flask import current_app

    return (app or current_app).extensions["crm"].registries["pipelines"]


def source_of(key, app=None):
    """Who contributed the pipeline ``key`` ("core", a plugin), or None for the company's own."""
    pipelines = registered(app)
    return pipelines.owner(key) if key in pipelines else None


def sync_registered(app=None):
    """Write contributed pipelines (and stages added to them since) that the database does
    not hold yet. Idempotent and cheap when nothing is missing: one indexed query."""
    from flask import current_app

    from crm_core.opportunities.models import Pipeline, Stage

    app = app or current_app
    pipelines = registered(app)
    keys = [key for key in pipelines]
    if not keys:
        return
    stored = {p.key: p for p in Pipeline.select().where(Pipeline.key.in_(keys))}
    wanted = {key: pipelines[key] for key in keys}
    missing_stages = {}
    if len(stored) == len(keys):
        known = {(s.pipeline_id, s.key) for s in Stage.select(Stage.pipeline, Stage.key)
                 .where(Stage.pipeline.in_([p.id for p in stored.values()]))}
        missing_stages = {key: [s for s in spec.stages if (stored[key].id, s.key) not in known]
                          for key, spec in wanted.items()}
        if not any(missing_stages.values()):
            return
    try:
        _write_missing(app, pipelines, wanted, stored, missing_stages)
    except INTEGRITY:
        # Someone else wrote them at the same moment (two first conversions on a fresh
        # instance): theirs are committed now, and the savepoint keeps our transaction whole.
        pass


def _write_missing(app, pipelines, wanted, stored, missing_stages):
    from flask_babel import force_locale

    from crm_core.db import database
    from crm_core.opportunities.models import Pipeline, Stage
    from crm_core.records import create_record

    with force_locale(app.config.get("CRM_DEFAULT_LOCALE", "en")), database.atomic():
        has_default = Pipeline.select().where(Pipeline.is_default == True).exists()  # noqa: E712
        for position, (key, spec) in enumerate(wanted.items()):
            pipeline = stored.get(key)
            if pipeline is None:
                pipeline = create_record(
                    Pipeline, key=key, name=str(spec.name)[:200], source=pipelines.owner(key),
                    description=str(spec.description) if spec.description else None,
                    is_default=bool(spec.is_default and not has_default), position=position)
                has_default = has_default or pipeline.is_default
                new_stages = list(spec.stages)
                start = 0
            else:
                new_stages = missing_stages.get(key, [])
                start = (Stage.select(Stage.position).where(Stage.pipeline == pipeline)
                         .order_by(Stage.position.desc()).scalar() or 0) + 1
            for offset, stage in enumerate(new_stages):
                create_record(Stage, pipeline=pipeline.id, key=stage.key, name=str(stage.name)[:200],
                              probability=int(stage.probability), kind=stage.kind,
                              position=start + offset)


def core_pipelines():
    """The standard sales process every installation starts with."""
    from flask_babel import lazy_gettext as _l

    return [PipelineSpec("sales", _l("Sales"), is_default=True, stages=(
        StageSpec("qualified", _l("Qualified"), 10, "open"),
        StageSpec("proposal_submitted", _l("Proposal Submitted"), 40, "open"),
        StageSpec("negotiating", _l("Negotiating"), 70, "open"),
        StageSpec("sale_agreed", _l("Sale Agreed"), 100, "won"),
        StageSpec("sale_lost", _l("Sale Lost"), 0, "lost"),
    ))]
