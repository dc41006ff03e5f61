"""Requirement kinds: what a stage gate can ask for. The core registers "field" and
"team_role"; plugins add theirs ("a completed activity of type X", "a quote in state Y")
through ``crm_register_stage_requirements`` and the company configures them per stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from crm_core.plugins import CORE, RegistryError

INPUT_TYPES = ("text", "number", "choice", "boolean")


@dataclass(frozen=True)
class ParamInput:
    """One input of the administrators' page for a kind's params: ``type`` is text, number,
    choice or boolean; ``choices`` is ((value, label), ...) or a function returning them
    (for lists the company changes, such as its custom fields)."""

    name: str
    label: Any
    type: str = "text"
    choices: Any = ()
    required: bool = False

    def options(self):
        return list(self.choices() if callable(self.choices) else self.choices)


@dataclass(frozen=True)
class RequirementKind:
    """A kind of requirement a stage gate may configure.

    ``check(opportunity, values, params)`` returns a translatable message when the
    requirement is not met, else None: ``opportunity`` is None for a new one, ``values``
    its values after the change (API names, custom values under ``custom``), ``params``
    what the gate configured (as ``params_schema`` loaded them). ``params_schema`` is a
    marshmallow schema class: it validates and cleans what an administrator gives (raise
    ``ValidationError`` with translated messages); what it loads must be JSON-serialisable.
    ``inputs`` describe the params for the administrators' page; ``describe(params)`` says
    what a configured gate asks ("Amount more than 0"); ``field(params)`` names the API field
    the message is shown under (``stage_id`` when the requirement is no field).
    """

    key: str
    label: Any
    check: Callable[[Any, dict, dict], Any]
    params_schema: type
    inputs: tuple = ()
    describe: Callable[[dict], Any] | None = None
    field: Callable[[dict], str] | None = None

    def field_of(self, params):
        return self.field(params) if self.field else "stage_id"

    def description(self, params):
        return self.describe(params) if self.describe else self.label


def check_kind(kind, owner):
    if not isinstance(kind, RequirementKind):
        raise RegistryError(f"{owner}: {kind!r} is not a crm_core.stagegates.RequirementKind")
    if owner != CORE and not kind.key.startswith(owner + "."):
        raise RegistryError(f"{owner}: requirement kind {kind.key!r} must start with {owner + '.'!r}")
    if not callable(kind.check) or not isinstance(kind.params_schema, type):
        raise RegistryError(f"{owner}: requirement kind {kind.key!r} needs a check function and a "
                            "marshmallow schema class for its params")
    for item in kind.inputs:
        if not isinstance(item, ParamInput) or item.type not in INPUT_TYPES:
            raise RegistryError(f"{owner}: requirement kind {kind.key!r}: inputs are ParamInput of "
                                f"type {', '.join(INPUT_TYPES)}")


def collect(app, host):
    """Called by create_app: every requirement kind, checked, by key."""
    host.collect("crm_register_stage_requirements", "requirement kind", "stage requirements",
                 lambda kind: kind.key, check_kind, app=app)


def kinds(app=None):
    from flask import current_app

    return (app or current_app).extensions["crm"].registries["stage requirements"]
