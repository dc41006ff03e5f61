"""The kinds of assignee plugins register (``crm_register_assignment_targets``): a rule may
name one by its key instead of an owner or a round-robin group."""

from __future__ import annotations

import re

from flask import current_app

from crm_core.assignment import AssignmentTarget
from crm_core.errors import RegistryError

KEY = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")


def collect(app, host):
    """Called by create_app: every owner's targets into the ``assignment targets`` registry;
    a key registered twice stops the start."""
    def check(target, owner):
        if not isinstance(target, AssignmentTarget):
            raise RegistryError(f"{owner}: {target!r} is not a crm_core.assignment.AssignmentTarget")
        if not isinstance(target.key, str) or not KEY.match(target.key):
            raise RegistryError(f"{owner}: assignment target key {target.key!r} must be lower-case "
                                "letters, digits, '_' or '.' (at most 64)")
        if not callable(target.compile):
            raise RegistryError(f"{owner}: assignment target {target.key!r} has no compile function")
        if isinstance(target.objects, str) or not all(isinstance(o, str) for o in target.objects):
            raise RegistryError(f"{owner}: assignment target {target.key!r}: objects must be a "
                                "tuple of object names")

    return host.collect("crm_register_assignment_targets", "assignment target", "assignment targets",
                        lambda target: target.key, check, app=app)


def targets(app=None):
    """{key: AssignmentTarget} in registration order (core first, then the plugins)."""
    registry = (app or current_app).extensions["crm"].registries["assignment targets"]
    return dict(registry.items())


def targets_for(object_name, app=None):
    """The targets serving ``object_name``."""
    return {key: target for key, target in targets(app).items() if object_name in target.objects}
