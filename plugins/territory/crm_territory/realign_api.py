"""The realignment API: ``models/<id>/realign`` (a job; ``?preview=1`` says what would move
now), the runs (``realignments/<id>``, ``models/<id>/realignments``), and placing a record
by hand (``records/<object>/<id>``). Views parse and render; crm_territory.realign and
crm_territory.placement hold the rules."""

from __future__ import annotations

import json

import marshmallow as ma
from flask import jsonify, url_for
from flask.views import MethodView
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from crm_core.api import Blueprint, ListQuery, Schema, page_schema
from crm_core.api.access import get_readable
from crm_core.api.errors import ApiError
from crm_core.api.resources import ID
from crm_core.permissions import engine
from crm_territory import placement, realign, services
from crm_territory.api import found
from crm_territory.models import PLACED_OBJECTS, REALIGNMENT_STATES, TerritoryRealignment

blueprint = Blueprint("territory_realign_api", __name__, url_prefix="",
                      description="Realignment of a territory model, and placing records by hand.")

ERRORS = {
    "model_gone": _l("The model was deleted or archived before the realignment ran."),
    "failed": _l("The realignment stopped on an error; the batches done are applied. Run it again."),
}


# -- schemas -----------------------------------------------------------------------------------------------

class TerritoryRefSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()


class RealignmentMoveSchema(Schema):
    object = ma.fields.String(metadata={"description": "account or lead"})
    from_territory = ma.fields.Nested(TerritoryRefSchema, allow_none=True, data_key="from",
                                      metadata={"description": "null: not placed before"})
    to_territory = ma.fields.Nested(TerritoryRefSchema, allow_none=True, data_key="to",
                                    metadata={"description": "null: no territory takes it any more"})
    count = ma.fields.Integer()


class RealignmentTotalsSchema(Schema):
    examined = ma.fields.Integer(metadata={"description": "live accounts and leads looked at"})
    moved = ma.fields.Integer(metadata={"description": "records whose territory changes"})
    manual = ma.fields.Integer(metadata={"description": "records placed by hand, which stay"})
    unplaced = ma.fields.Integer(metadata={"description": "records no territory takes"})


class RealignmentSampleSchema(Schema):
    object = ma.fields.String()
    id = ma.fields.Integer()
    label = ma.fields.String()
    from_territory = ma.fields.Nested(TerritoryRefSchema, allow_none=True, data_key="from")
    to_territory = ma.fields.Nested(TerritoryRefSchema, allow_none=True, data_key="to")


class RealignmentSchema(Schema):
    id = ma.fields.Integer()
    model_id = ma.fields.Integer()
    state = ma.fields.String(metadata={"description": " | ".join(REALIGNMENT_STATES)})
    preview_only = ma.fields.Boolean()
    total = ma.fields.Integer(metadata={"description": "records to examine"})
    examined = ma.fields.Integer()
    moved = ma.fields.Integer()
    progress = ma.fields.Float(metadata={"description": "examined / total, 0 to 1"})
    totals = ma.fields.Nested(RealignmentTotalsSchema, allow_none=True)
    moves = ma.fields.List(ma.fields.Nested(RealignmentMoveSchema),
                           metadata={"description": "records moving, per from -> to territory pair"})
    sample = ma.fields.List(ma.fields.Nested(RealignmentSampleSchema),
                            metadata={"description": "a preview's moving records the caller may read (20 at most)"})
    error = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    created_by_id = ma.fields.Integer(allow_none=True)
    started_at = ma.fields.DateTime(allow_none=True)
    finished_at = ma.fields.DateTime(allow_none=True)
    status_url = ma.fields.String()


class RealignQuerySchema(Schema):
    preview = ma.fields.Boolean(load_default=False,
                                metadata={"description": "1: answer what would move now, start nothing"})
    lang = ma.fields.String(load_default=None, load_only=True)


RUNS = ListQuery("TerritoryRealignment", sort={"id": TerritoryRealignment.id,
                                               "created_at": TerritoryRealignment.created_at},
                 filters={"state": (ma.fields.String(validate=ma.validate.OneOf(REALIGNMENT_STATES)),
                                    TerritoryRealignment.state)},
                 default_sort="-id")


class PlacementSchema(Schema):
    model_id = ma.fields.Integer()
    object = ma.fields.String()
    record_id = ma.fields.Integer()
    territory = ma.fields.Nested(TerritoryRefSchema, allow_none=True,
                                 metadata={"description": "null: no territory of the model takes the record"})
    path = ma.fields.List(ma.fields.String(), metadata={"description": "names from the root down"})
    source = ma.fields.String(allow_none=True, metadata={"description": "rule or manual"})
    placed_at = ma.fields.DateTime(allow_none=True)


class PlaceByHandSchema(Schema):
    territory_id = ma.fields.Integer(required=True, validate=ID,
                                     metadata={"description": "the territory (of a planning or active model)"})


class BackToRulesQuerySchema(Schema):
    model_id = ma.fields.Integer(load_default=None, validate=ID,
                                 metadata={"description": "the model (default: the active model)"})
    lang = ma.fields.String(load_default=None, load_only=True)


# -- helpers -----------------------------------------------------------------------------------------------

def _require_realign():
    if not engine().has_permission(current_user.id, services.REALIGN):
        raise ApiError(403)


def _ref(territory_id, names):
    if territory_id is None:
        return None
    return {"id": territory_id, "name": names.get(territory_id, "")}


def _label(object_name, record):
    if object_name == "account":
        return record.name
    person = " ".join(part for part in (record.first_name, record.last_name) if part)
    return f"{person} ({record.company})" if record.company else person


def _pairs(run):
    return json.loads(run.summary or "{}").get("pairs", [])


def run_out(run, sample=None, names=None):
    """The run as the API answers it; ``names``: the territory names, when a list of runs
    read them at once."""
    stored = json.loads(run.summary or "{}")
    pairs = stored.get("pairs", [])
    if names is None:
        names = realign.territory_names([t for _, f, to, _ in pairs for t in (f, to)]
                                        + [t for s in (sample or ()) for t in s[2:]])
    out = {
        "id": run.id, "model_id": run.model_id, "state": run.state, "preview_only": run.preview_only,
        "total": run.total, "examined": run.examined, "moved": run.moved,
        "progress": round(min(1.0, run.examined / run.total), 4) if run.total else
        (1.0 if run.state in ("applied", "previewed") else 0.0),
        "totals": stored.get("totals"),
        "moves": [{"object": o, "from_territory": _ref(f, names), "to_territory": _ref(t, names), "count": n}
                  for o, f, t, n in pairs],
        "error": str(ERRORS.get(run.error, run.error)) if run.error else None,
        "created_at": run.created_at, "created_by_id": run.created_by_id,
        "started_at": run.started_at, "finished_at": run.finished_at,
        "status_url": url_for("territory_realign_api.Realignment", realignment_id=run.id),
    }
    if sample is not None:
        out["sample"] = [{"object": o, "id": r.id, "label": _label(o, r), "from_territory": _ref(f, names),
                          "to_territory": _ref(t, names)} for o, r, f, t in sample]
    return RealignmentSchema().dump(out)


def _placed_object(name):
    if name not in PLACED_OBJECTS:
        raise ApiError(404)
    return name


def placement_out(model_id, object_name, record_id, row):
    if row is None:
        return PlacementSchema().dump({"model_id": model_id, "object": object_name, "record_id": record_id,
                                       "territory": None, "path": [], "source": None, "placed_at": None})
    model_tree = services.tree(model_id)
    territory = model_tree.by_id.get(row.territory_id)
    return PlacementSchema().dump({
        "model_id": model_id, "object": object_name, "record_id": record_id,
        "territory": {"id": row.territory_id, "name": territory.name if territory is not None else ""},
        "path": model_tree.path(row.territory_id), "source": row.source, "placed_at": row.placed_at})


# -- realignment -------------------------------------------------------------------------------------------

@blueprint.route("/models/<int:model_id>/realign")
class Realign(MethodView):
    @blueprint.arguments(RealignQuerySchema, location="query")
    @blueprint.response(202, RealignmentSchema)
    @blueprint.alt_response(200, schema=RealignmentSchema, description="?preview=1: what would move now")
    def post(self, args, model_id):
        """Realign a model: every live account and lead is placed again by the rules (manual
        placements stay). Starts a job and answers 202 with the run and its status URL;
        ``?preview=1`` answers 200 with what would move now and starts nothing. An archived
        model cannot be realigned (409); nor can a model whose realignment is under way."""
        _require_realign()
        model = found(services.get_model(model_id))
        if args["preview"]:
            run, sample = realign.preview(model, current_user.id)
            return jsonify(run_out(run, sample))
        run = realign.start(model, current_user.id)
        response = jsonify(run_out(run))
        response.headers["Location"] = url_for("territory_realign_api.Realignment", realignment_id=run.id)
        return response, 202


@blueprint.route("/models/<int:model_id>/realignments")
class ModelRealignments(MethodView):
    @blueprint.arguments(RUNS.schema, location="query")
    @blueprint.response(200, page_schema(RealignmentSchema))
    def get(self, args, model_id):
        """The realignment runs and previews of a model, newest first."""
        _require_realign()
        model = found(services.get_model(model_id))
        page = RUNS.page(realign.runs_of(model.id), args)
        names = realign.territory_names([t for run in page["items"] for _, f, to, _ in _pairs(run) for t in (f, to)])
        page["items"] = [run_out(run, names=names) for run in page["items"]]
        return jsonify(page)


@blueprint.route("/realignments/<int:realignment_id>")
class Realignment(MethodView):
    @blueprint.response(200, RealignmentSchema)
    def get(self, realignment_id):
        """A realignment run: its state (queued, running, applied, failed; previewed), its
        progress and, once done, the counts per from -> to territory pair."""
        _require_realign()
        return jsonify(run_out(found(realign.get_run(realignment_id))))


# -- placing by hand ---------------------------------------------------------------------------------------

@blueprint.route("/records/<placed_object>/<int:placed_id>")
class RecordPlacement(MethodView):
    @blueprint.arguments(PlaceByHandSchema)
    @blueprint.response(200, PlacementSchema)
    def put(self, data, placed_object, placed_id):
        """Place an account or lead in a territory by hand (in the territory's model): the
        rules and realignment leave it there until it is given back to the rules. Needs
        ``territory.manage`` or to manage the territory (or one above it)."""
        name = _placed_object(placed_object)
        get_readable(name, placed_id)  # a record the caller may not read is a 404
        territory = services.get_territory(data["territory_id"])
        if territory is None:
            raise ApiError(422, fields={"territory_id": [str(_l("No such territory."))]})
        if not placement.may_place_by_hand(current_user.id, territory):
            raise ApiError(403)
        row = placement.place_by_hand(name, placed_id, territory, actor_id=current_user.id)
        return jsonify(placement_out(territory.model_id, name, placed_id, row))

    @blueprint.arguments(BackToRulesQuerySchema, location="query")
    @blueprint.response(200, PlacementSchema)
    def delete(self, args, placed_object, placed_id):
        """Give a record placed by hand back to the rules (in ``?model_id=``, default the
        active model) and answer where the rules place it now. 404 when it is not placed by
        hand there. Needs ``territory.manage`` or to manage the territory it was placed in."""
        name = _placed_object(placed_object)
        get_readable(name, placed_id)
        model_id = args["model_id"] or placement.active_model_id()
        row = placement.placement_of(model_id, name, placed_id) if model_id is not None else None
        if row is None or row.source != "manual":
            raise ApiError(404, message=_l("This record is not placed by hand in this model."))
        territory = services.get_territory(row.territory_id)
        allowed = (placement.may_place_by_hand(current_user.id, territory) if territory is not None
                   else engine().has_permission(current_user.id, services.MANAGE))
        if not allowed:
            raise ApiError(403)
        row = placement.back_to_rules(name, placed_id, model_id, actor_id=current_user.id)
        return jsonify(placement_out(model_id, name, placed_id, row))
