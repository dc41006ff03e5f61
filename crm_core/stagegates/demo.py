"""Demo stage gates: a proposal needs an amount and an expected close date, a won deal a
contact — on the core's sales pipeline and on the demo's second pipeline when it is there.

Called after the demo opportunities exist: gates apply to moves, so the deals already in
those stages stay as they are, and later demo runs add nothing (a stage with gates is left
alone)."""

from __future__ import annotations

# (pipeline key, stage key) -> requirements as (kind, params)
PROPOSAL = (("field", {"field": "amount", "minimum": "0", "exclusive": True}),
            ("field", {"field": "expected_close_date"}))
WON = (("field", {"field": "contact_id"}),)
GATES = {("sales", "proposal_submitted"): PROPOSAL, ("sales", "sale_agreed"): WON}
# The second demo pipeline (Prospecting ... Contract / Lost), whatever its key: by stage key.
OTHER_PIPELINES = {"proposal": PROPOSAL, "contract": WON}


def load(actor_id=None):
    """Create what is missing; returns how many gates were added."""
    from crm_core.opportunities import services as opportunities
    from crm_core.stagegates import services
    from crm_core.stagegates.models import StageGate

    added = 0
    for pipeline in opportunities.pipelines():
        for stage in opportunities.stages(pipeline):
            wanted = GATES.get((pipeline.key, stage.key)) or (
                OTHER_PIPELINES.get(stage.key) if pipeline.key != "sales" else None)
            if not wanted or StageGate.select().where(StageGate.stage == stage.id).exists():
                continue
            for kind, params in wanted:
                services.create_gate({"stage_id": stage.id, "kind": kind, "params": params}, actor_id=actor_id)
                added += 1
    return added
