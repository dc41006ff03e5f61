"""Hooks the territory plugin offers to other plugins (the quota and forecast plugins set
quotas by territory with them). Named ``crm_territory_*``; the docstrings are the
reference, repeated in the plugin's README.

Implement them like any core hook (``@crm_core.hookimpl``); a plugin implementing them
should list ``requires=("territory",)`` in its manifest, or check that the plugin is
enabled, because a hook nobody offers cannot be implemented.
"""

from __future__ import annotations

from typing import Any

from crm_core import hookspec


@hookspec
def crm_territory_model_activated(app: Any, model: Any, previous: Any, actor_id: "int | None") -> None:
    """Notification: territory model ``model`` became the active one; ``previous`` (the
    model that was active, now archived) or None.

    Called inside the switch-over's transaction, after the states changed: quotas kept per
    territory can follow the new alignment in the same commit. Results are ignored; an
    exception rolls the switch-over back.
    """


@hookspec
def crm_territory_members_changed(app: Any, territory: Any, added: "list[int]",
                                  removed: "list[int]", actor_id: "int | None") -> None:
    """Notification: users ``added`` to and ``removed`` from ``territory`` (user ids).

    Called inside the membership change's transaction. Results are ignored; an exception
    rolls the change back.
    """


@hookspec
def crm_territory_realigned(app: Any, model: Any, moved: "list[tuple[str, int, int | None, int | None]]",
                            actor_id: "int | None") -> None:
    """Notification: a realignment of ``model`` was applied; ``moved`` lists
    ``(object, record id, territory id before, territory id after)`` for every account
    and lead whose territory changed (None: not placed).

    Called by the realignment job after its last batch, inside the transaction that marks
    the run applied, so a plugin's own bookkeeping commits with that. Results are
    ignored; an exception marks the run failed (the batches written stay: running the
    realignment again finds nothing left to move and announces an empty list).
    """
