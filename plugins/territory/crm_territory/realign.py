"""Realignment: recompute where a model places every live account and lead.

``preview`` computes now what would move (counts per from -> to territory pair, totals, a
sample the caller may read) and records it as a "previewed" run; ``start`` records a
queued run and hands it to the worker (task ``territory.realign_model``), which places the
records batch by batch (``realign_batch`` records a statement batch, each batch its own
transaction) and keeps its progress on the run. Manual placements stay where they are.

The task acts as the system principal: placing records needs no one's reading rights, and
it changes no record, only the plugin's ``territory_record`` rows. The run remembers who
started it, and the security log names them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter

from flask import current_app
from flask_babel import lazy_gettext as _l

from crm_core.db import database, utcnow
from crm_core.jobs import TaskSpec
from crm_territory import placement
from crm_territory.services import announce, get_model
from crm_territory.models import PLACED_OBJECTS, Territory, TerritoryRealignment, TerritoryRecord

log = logging.getLogger("crm.territory")

TASK = "territory.realign_model"
SAMPLE = 20
# A queued or running run that has not reported for this long is taken as dead (its worker
# stopped): a new run of the model may start.
STALE_AFTER = dt.timedelta(minutes=15)


def tasks():
    return [TaskSpec("realign_model", run)]


def batch_size():
    return max(100, int(current_app.extensions["crm"].settings("territory")["realign_batch"]))


def realignable(model):
    """Refuse (409) a model that cannot be realigned: an archived model is frozen."""
    if model.state not in placement.PLACED_STATES:
        raise placement.conflict(_l("An archived model is frozen: it cannot be realigned."))


def _total(object_names):
    total = 0
    for object_name in object_names:
        model = placement.object_model(object_name)
        total += model.alive().count()
    return total


def compute(model_id, size, on_batch):
    """Walk every live account and lead in batches; ``on_batch(moves)`` gets each batch's
    ``Moves``. Returns the totals per object."""
    totals = {}
    for object_name in PLACED_OBJECTS:
        placer = placement.Placer(model_id, object_name)
        reader = placement.ValueReader(object_name, [placer])
        done = placement.Moves(model_id, object_name)
        for rows in reader.batches(size):
            existing = placement.existing_placements(model_id, object_name, [r for r, _ in rows])
            moves = placement.diff(placer, rows, existing, placement.Moves(model_id, object_name))
            on_batch(moves)
            done.examined += moves.examined
            done.manual += moves.manual
            done.unplaced += moves.unplaced
        totals[object_name] = done
    return totals


class Summary:
    """Counts per (object, from, to) and totals, as stored on the run (JSON)."""

    def __init__(self):
        self.pairs = Counter()
        self.examined = self.moved = self.manual = self.unplaced = 0

    def add(self, moves):
        for _record, old, new in moves.pairs():
            self.pairs[(moves.object_name, old, new)] += 1
        self.moved += moves.moved

    def close(self, totals):
        for moves in totals.values():
            self.examined += moves.examined
            self.manual += moves.manual
            self.unplaced += moves.unplaced

    def as_json(self):
        return json.dumps({
            "totals": {"examined": self.examined, "moved": self.moved, "manual": self.manual,
                       "unplaced": self.unplaced},
            "pairs": [[o, f, t, n] for (o, f, t), n in sorted(
                self.pairs.items(), key=lambda item: (-item[1], item[0][0], item[0][1] or 0, item[0][2] or 0))],
        })


# -- preview -----------------------------------------------------------------------------------------------

def preview(model, actor_id):
    """What a realignment of ``model`` would move now; recorded as a "previewed" run.
    Returns ``(run, sample)``: the sample holds up to 20 moving records ``actor_id`` may read,
    as ``(object, record, from territory id, to territory id)``."""
    realignable(model)
    summary = Summary()
    moving = {name: [] for name in PLACED_OBJECTS}

    def on_batch(moves):
        summary.add(moves)
        moving[moves.object_name].extend(moves.pairs())

    started = utcnow()
    totals = compute(model.id, batch_size(), on_batch)
    summary.close(totals)
    run = TerritoryRealignment.create(
        model_id=model.id, state="previewed", preview_only=True, summary=summary.as_json(),
        moved=summary.moved, examined=summary.examined, total=summary.examined, created_at=started,
        created_by_id=actor_id, started_at=started, updated_at=utcnow(), finished_at=utcnow())
    return run, readable_sample(actor_id, moving)


def readable_sample(actor_id, moving, limit=SAMPLE):
    """Up to ``limit`` of the moving records that ``actor_id`` may read, in id order per object."""
    from crm_core.permissions import engine

    sample = []
    for object_name, pairs in moving.items():
        if len(sample) >= limit or not pairs or not engine().object_permissions(actor_id, object_name).read:
            continue
        pairs = sorted(pairs, key=lambda p: p[0])
        model = placement.object_model(object_name)
        for start in range(0, len(pairs), 500):
            chunk = pairs[start:start + 500]
            readable = {r.id: r for r in engine().query(actor_id, object_name)
                        .where(model.id.in_([p[0] for p in chunk]))}
            for record_id, old, new in chunk:
                if record_id in readable:
                    sample.append((object_name, readable[record_id], old, new))
                    if len(sample) >= limit:
                        break
            if len(sample) >= limit:
                break
    return sample


# -- the job -----------------------------------------------------------------------------------------------

def running(model_id):
    """A queued or running run of the model that is still alive, or None."""
    return (TerritoryRealignment.select()
            .where((TerritoryRealignment.model_id == model_id)
                   & TerritoryRealignment.state.in_(("queued", "running"))
                   & (TerritoryRealignment.updated_at >= utcnow() - STALE_AFTER))
            .order_by(TerritoryRealignment.id.desc()).first())


def start(model, actor_id):
    """Record a queued realignment of ``model`` and hand it to the worker; returns the run.
    Refused (409) for an archived model and while another run of the model is under way."""
    from crm_core.audit.services import log_security

    realignable(model)
    with database.atomic():
        if running(model.id) is not None:
            raise placement.conflict(_l("A realignment of this model is already under way."))
        now = utcnow()
        run_row = TerritoryRealignment.create(model_id=model.id, state="queued", created_at=now,
                                              created_by_id=actor_id, updated_at=now)
    log_security("territory_realignment", actor_id=actor_id, subject=f"territory model {model.id}",
                 realignment_id=run_row.id)
    current_app.extensions["crm_jobs"].enqueue(TASK, run_row.id)
    return TerritoryRealignment.get_by_id(run_row.id)


def _report(run_id, **values):
    values["updated_at"] = utcnow()
    TerritoryRealignment.update(values).where(TerritoryRealignment.id == run_id).execute()


def run(realignment_id):
    """The worker's task: apply a queued realignment, batch by batch."""
    run_row = TerritoryRealignment.get_or_none(TerritoryRealignment.id == realignment_id)
    if run_row is None or run_row.state != "queued":
        return
    model = get_model(run_row.model_id)
    if model is None or model.state not in placement.PLACED_STATES:
        _report(run_row.id, state="failed", finished_at=utcnow(), error="model_gone")
        return
    summary = Summary()
    moved = []  # (object, record id, before, after) for crm_territory_realigned
    progress = {"examined": 0}
    started = utcnow()
    _report(run_row.id, state="running", started_at=started, total=_total(PLACED_OBJECTS))

    def on_batch(moves):
        with database.atomic():
            placement.write(moves, started)
            summary.add(moves)
            moved.extend((moves.object_name, record_id, old, new) for record_id, old, new in moves.pairs())
            progress["examined"] += moves.examined
            _report(run_row.id, examined=progress["examined"], moved=summary.moved)

    try:
        totals = compute(model.id, batch_size(), on_batch)
        summary.close(totals)
        with database.atomic():
            for object_name in PLACED_OBJECTS:
                _drop_orphans(model.id, object_name)
            announce("crm_territory_realigned", model=model, moved=moved, actor_id=run_row.created_by_id)
            _report(run_row.id, state="applied", examined=summary.examined, moved=summary.moved,
                    summary=summary.as_json(), finished_at=utcnow())
    except Exception as exc:
        # Never leave a run "running": the batches done are applied; a new run finishes the work.
        log.exception("realignment %s failed", run_row.id)
        _report(run_row.id, state="failed", error="failed", summary=summary.as_json(),
                finished_at=utcnow())
        raise


def _drop_orphans(model_id, object_name):
    """Placements of records that no longer exist at all (purged from the recycle bin)."""
    model = placement.object_model(object_name)
    (TerritoryRecord.delete().where((TerritoryRecord.model_id == model_id)
                                    & (TerritoryRecord.object == object_name)
                                    & TerritoryRecord.record_id.not_in(model.select(model.id)))
     .execute())


# -- reading runs ------------------------------------------------------------------------------------------

def get_run(realignment_id):
    return TerritoryRealignment.get_or_none(TerritoryRealignment.id == realignment_id)


def runs_of(model_id):
    return TerritoryRealignment.select().where(TerritoryRealignment.model_id == model_id)


def territory_names(ids):
    """{id: name} of territories, deleted ones included (a run may name a territory since removed)."""
    ids = sorted({i for i in ids if i is not None})
    names = {}
    for start in range(0, len(ids), placement.CHUNK):
        names.update(Territory.select(Territory.id, Territory.name)
                     .where(Territory.id.in_(ids[start:start + placement.CHUNK])).tuples())
    return names
