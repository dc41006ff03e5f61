"""The rules of stage gates: configuring them (holders of ``opportunities.configure``) and
checking them on every stage move (the core's ``crm_stage_transition_check``).

A move is "backwards" when it goes to an open stage placed before the one it leaves, or
reopens a closed deal; closing (won or lost) and moving on are forwards. A gate applies
forwards always, backwards only with ``also_backwards``.
"""

from __future__ import annotations

import json
import logging

import marshmallow as ma
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext

from crm_core.api.messages import translate_fields
from crm_core.audit.services import log_security
from crm_core.db import database, utcnow
from crm_core.errors import UserError, VersionConflict
from crm_core.opportunities.models import Pipeline, Stage
from crm_core.org.services import Problems
from crm_core.stagegates.models import StageGate
from crm_core.stagegates.registry import kinds

log = logging.getLogger(__name__)

PERMISSION = "opportunities.configure"
MAX_GATES_PER_STAGE = 50


def _dumps(params):
    # What a schema loads (a Decimal minimum, a date) is stored as its text.
    return json.dumps(params, sort_keys=True, default=str)


def may_configure(actor_id):
    from crm_core.permissions import engine

    return actor_id is not None and engine().has_permission(actor_id, PERMISSION)


def params_of(gate):
    return json.loads(gate.params or "{}")


def gates(pipeline_id=None, stage_id=None):
    """Configured gates in stage order, then their own order."""
    query = (StageGate.select(StageGate, Stage).join(Stage)
             .where(Stage.deleted_at.is_null()).order_by(Stage.position, Stage.id, StageGate.position, StageGate.id))
    if pipeline_id is not None:
        query = query.where(Stage.pipeline == pipeline_id)
    if stage_id is not None:
        query = query.where(StageGate.stage == stage_id)
    return list(query)


def describe(gate):
    """What the gate asks, in the reader's language (a kind whose plugin is off says so)."""
    kind = kinds()[gate.kind] if gate.kind in kinds() else None
    if kind is None:
        return _l("“%(kind)s” (its plugin is not enabled: not checked)", kind=gate.kind)
    return kind.description(params_of(gate))


# -- configuring ----------------------------------------------------------------------------------

def _clean_params(kind_key, params, problems):
    """The kind's params as its schema loads them; every message under ``params.<name>``."""
    if kind_key not in kinds():
        problems.add("kind", _l("Choose one of: %(choices)s.", choices=", ".join(kinds())))
        return None
    if not isinstance(params, dict):
        problems.add("params", _l("Send a JSON object with named fields."))
        return None
    try:
        return kinds()[kind_key].params_schema().load(params)
    except ma.ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
        for name, found in translate_fields(messages).items():
            while isinstance(found, (list, dict)) and found:
                found = found[0] if isinstance(found, list) else next(iter(found.values()))
            problems.add(f"params.{name}", str(found))
        return None


def _stage(stage_id, problems):
    stage = (Stage.alive().join(Pipeline).where((Stage.id == stage_id) & Pipeline.deleted_at.is_null()).first()
             if isinstance(stage_id, int) and not isinstance(stage_id, bool) else None)
    if stage is None:
        problems.add("stage_id", _l("No such stage."))
    return stage


def create_gate(values, actor_id=None):
    """A requirement of moving into ``values["stage_id"]``: ``kind`` and its ``params``."""
    problems = Problems()
    stage = _stage(values.get("stage_id"), problems)
    params = _clean_params(values.get("kind"), values.get("params") or {}, problems)
    problems.check()
    with database.atomic():
        count = StageGate.select().where(StageGate.stage == stage.id).count()
        if count >= MAX_GATES_PER_STAGE:
            raise UserError(lazy_ngettext("A stage takes at most %(num)s requirement.",
                                          "A stage takes at most %(num)s requirements.", MAX_GATES_PER_STAGE),
                            field="stage_id")
        position = values.get("position")
        if position is None:
            position = (StageGate.select(StageGate.position).where(StageGate.stage == stage.id)
                        .order_by(StageGate.position.desc()).scalar() or 0) + 1
        now = utcnow()
        gate = StageGate.create(stage=stage.id, kind=values["kind"], params=_dumps(params),
                                also_backwards=bool(values.get("also_backwards", False)), position=position,
                                created_at=now, updated_at=now, created_by_id=actor_id, updated_by_id=actor_id)
        log_security("stage_gate_created", actor_id=actor_id, subject=f"stage:{stage.id}", gate=gate.id,
                     requirement=gate.kind, params=params, also_backwards=gate.also_backwards)
    return StageGate.get_by_id(gate.id)


def update_gate(gate, changes, actor_id=None, expected_version=None):
    """Change what the gate asks (``kind`` with its ``params``, or ``params`` alone),
    ``also_backwards`` or ``position`` on the version the caller saw. The stage is fixed:
    a requirement of another stage is another gate."""
    problems = Problems()
    if "stage_id" in changes and changes["stage_id"] != gate.stage_id:
        problems.add("stage_id", _l("A requirement stays with its stage: add one to the other stage."))
    kind_key = changes.get("kind", gate.kind)
    params = None
    if "kind" in changes or "params" in changes:
        if "kind" in changes and changes["kind"] != gate.kind and "params" not in changes:
            problems.add("params", _l("Give the params of the new kind."))
        else:
            params = _clean_params(kind_key, changes.get("params", params_of(gate)), problems)
    problems.check()
    row = {}
    if params is not None:
        row.update(kind=kind_key, params=_dumps(params))
    for name in ("also_backwards", "position"):
        if name in changes and changes[name] is not None:
            row[name] = changes[name]
    expected = gate.version if expected_version is None else int(expected_version)
    changed = {name: value for name, value in row.items() if getattr(gate, name) != value}
    if not changed:
        if expected != gate.version:
            raise VersionConflict(StageGate, gate.id, expected, gate.version)
        return {}
    with database.atomic():
        count = (StageGate.update({**{StageGate._meta.fields[n]: v for n, v in changed.items()},
                                   StageGate.version: StageGate.version + 1, StageGate.updated_at: utcnow(),
                                   StageGate.updated_by_id: actor_id})
                 .where((StageGate.id == gate.id) & (StageGate.version == expected)).execute())
        if count != 1:
            raise VersionConflict(StageGate, gate.id, expected,
                                  StageGate.select(StageGate.version).where(StageGate.id == gate.id).scalar())
        log_security("stage_gate_changed", actor_id=actor_id, subject=f"stage:{gate.stage_id}", gate=gate.id,
                     changes={n: v for n, v in changed.items()})
    gate.__data__.update(StageGate.get_by_id(gate.id).__data__)
    return changed


def delete_gate(gate, actor_id=None, expected_version=None):
    if expected_version is not None and int(expected_version) != gate.version:
        raise VersionConflict(StageGate, gate.id, expected_version, gate.version)
    with database.atomic():
        count = StageGate.delete().where((StageGate.id == gate.id) & (StageGate.version == gate.version)).execute()
        if count != 1:
            raise VersionConflict(StageGate, gate.id, gate.version)
        log_security("stage_gate_deleted", actor_id=actor_id, subject=f"stage:{gate.stage_id}", gate=gate.id,
                     requirement=gate.kind, params=params_of(gate))


# -- checking -------------------------------------------------------------------------------------

def moving_back(from_stage, to_stage):
    """Back to an earlier open stage, or a closed deal reopened (see the module's note)."""
    if from_stage is None or to_stage.kind != "open" or from_stage.pipeline_id != to_stage.pipeline_id:
        return False
    return from_stage.kind != "open" or (to_stage.position, to_stage.id) < (from_stage.position, from_stage.id)


def unmet(opportunity, from_stage, to_stage, values):
    """Every configured requirement of ``to_stage`` the move does not meet, as (field,
    message) pairs; the stage's gates are read in one query."""
    backwards = moving_back(from_stage, to_stage)
    registry = kinds()
    out = []
    for gate in StageGate.select().where(StageGate.stage == to_stage.id).order_by(StageGate.position, StageGate.id):
        if backwards and not gate.also_backwards:
            continue
        if gate.kind not in registry:
            # Its plugin was switched off: the company's gate waits, it does not block deals.
            log.warning("stage gate %s: requirement kind %r is not registered; not checked", gate.id, gate.kind)
            continue
        kind = registry[gate.kind]
        params = params_of(gate)
        message = kind.check(opportunity, values, params)
        if message:
            out.append((kind.field_of(params), _l("Before “%(stage)s”: %(requirement)s",
                                                  stage=to_stage.name, requirement=message)))
    return out


def preview(opportunity, values=None):
    """For the opportunity's page: every stage of its pipeline (but its own) whose gates
    would apply to a move from here, with each requirement's description and its unmet
    message (None when met). One query for the pipeline's gates."""
    from crm_core.opportunities.services import opportunity_values, stages

    values = values if values is not None else opportunity_values(opportunity)
    current = Stage.get_by_id(opportunity.stage_id)
    by_stage = {}
    for gate in gates(pipeline_id=opportunity.pipeline_id):
        by_stage.setdefault(gate.stage_id, []).append(gate)
    registry = kinds()
    out = []
    for stage in stages(opportunity.pipeline_id):
        if stage.id == current.id or stage.id not in by_stage:
            continue
        backwards = moving_back(current, stage)
        rows = []
        for gate in by_stage[stage.id]:
            if (backwards and not gate.also_backwards) or gate.kind not in registry:
                continue
            rows.append((describe(gate), registry[gate.kind].check(opportunity, values, params_of(gate))))
        if rows:
            out.append((stage, rows))
    return out
