"""Assignment rules: ordered rules per object that give new records an owner (a user or a
round-robin group), applied at once or proposed to a manager."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class AssignmentTarget:
    """A kind of assignee a rule can name (see docs/hooks.md, crm_register_assignment_targets).

    ``compile(object_name, block)`` returns a picker: ``pick(values) -> user id | None``,
    optionally with ``finish()``; ``objects`` names the assignable objects it serves."""

    key: str
    label: Any
    objects: tuple
    compile: Callable
