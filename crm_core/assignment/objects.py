"""What rules can assign: every access object with an owner. Leads count their open
statuses against round-robin capacities; other objects count every live record unless an
entry in ``OPEN_CONDITIONS`` says what "open" means for them (later objects add theirs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from crm_core.errors import UserError
from crm_core.records import BOOKKEEPING


def _open_leads():
    from crm_core.leads.models import Lead

    return Lead.status.in_(("new", "contacted", "qualified"))


OPEN_CONDITIONS: dict[str, Callable] = {"lead": _open_leads}


@dataclass(frozen=True)
class Assignable:
    name: str
    model: type
    open_condition: Callable | None

    @property
    def fields(self):
        """The fields rules may test: the model's columns (references by their ``_id``),
        then the object's custom fields as ``custom.<key>``."""
        from crm_core.assignment.conditions import custom_fields

        names = []
        for name, field in self.model._meta.fields.items():
            if name in BOOKKEEPING or name in ("owner_id", "custom"):
                continue
            names.append(field.column_name if hasattr(field, "rel_model") else name)
        if "custom" in self.model._meta.fields:
            names.extend(custom_fields(self.name))
        return names


def assignable_names():
    from crm_core.permissions import engine

    return sorted(name for name, obj in engine().objects.items() if "owner_id" in obj.model._meta.fields)


def assignable(name):
    from flask_babel import lazy_gettext as _l

    from crm_core.permissions import engine

    obj = engine().objects.get(name)
    if obj is None or "owner_id" not in obj.model._meta.fields:
        raise UserError(_l("Records of this kind cannot be assigned."), field="object")
    return Assignable(name, obj.model, OPEN_CONDITIONS.get(name))
