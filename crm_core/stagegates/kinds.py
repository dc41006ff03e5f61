"""The core's requirement kinds: a field of the opportunity filled (optionally above a
minimum), and a team member with a role. Registered through the same hook as plugins'."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import marshmallow as ma
from flask_babel import lazy_gettext as _l

from crm_core.api.frame import Schema
from crm_core.opportunities.models import MEMBER_ROLES, OpportunityMember
from crm_core.stagegates.registry import ParamInput, RequirementKind

# The opportunity's fields a gate may require (API names), and those that take a minimum.
FIELDS = {"amount": _l("Amount"), "probability": _l("Probability"),
          "expected_close_date": _l("Expected close date"), "contact_id": _l("Contact"),
          "campaign_id": _l("Campaign"), "source": _l("Source"), "competitors": _l("Competitors"),
          "next_step": _l("Next step"), "description": _l("Description")}
NUMERIC = ("amount", "probability")
NUMERIC_CUSTOM = ("number", "money")
ROLE_LABELS = {"owner": _l("Owner"), "presales": _l("Presales"), "executive_sponsor": _l("Executive sponsor"),
               "technical": _l("Technical"), "support": _l("Support"), "other": _l("Other")}


def _custom_specs():
    from crm_core.customfields.registry import by_key

    return by_key("opportunity")


def field_label(name):
    if name.startswith("custom."):
        spec = _custom_specs().get(name[len("custom."):])
        return spec.label() if spec is not None else name
    return FIELDS.get(name, name)


def field_choices():
    return ([(name, label) for name, label in FIELDS.items()]
            + [(spec.name, spec.label()) for spec in _custom_specs().values()])


def _numeric(name):
    if name.startswith("custom."):
        spec = _custom_specs().get(name[len("custom."):])
        return spec is not None and spec.type in NUMERIC_CUSTOM
    return name in NUMERIC


class FieldParams(Schema):
    field = ma.fields.String(required=True, metadata={
        "description": "an opportunity field (amount, expected_close_date, contact_id...) or custom.<key>"})
    minimum = ma.fields.Decimal(allow_none=True, as_string=True, metadata={
        "description": "numbers and money only: the least value accepted"})
    exclusive = ma.fields.Boolean(load_default=False, metadata={
        "description": "the value must be more than the minimum, not equal to it"})

    @ma.pre_load
    def _blank_minimum(self, data, **_kwargs):
        # The page's empty input means "no minimum".
        if isinstance(data, dict) and isinstance(data.get("minimum"), str) and not data["minimum"].strip():
            data = {**data, "minimum": None}
        return data

    @ma.validates_schema
    def _known_field(self, data, **_kwargs):
        name = data.get("field", "")
        known = name in FIELDS or (name.startswith("custom.") and name[len("custom."):] in _custom_specs())
        if not known:
            raise ma.ValidationError(str(_l("Choose a field of opportunities.")), "field")
        if data.get("minimum") is not None and not _numeric(name):
            raise ma.ValidationError(str(_l("Only numbers and amounts take a minimum.")), "minimum")


def _value(values, name):
    if name.startswith("custom."):
        return (values.get("custom") or {}).get(name[len("custom."):])
    return values.get(name)


def _empty(value):
    return value is None or (isinstance(value, str) and not value.strip()) or value in ([], {})


def check_field(opportunity, values, params):
    name = params["field"]
    value = _value(values, name)
    label = field_label(name)
    if _empty(value):
        return _l("Fill in “%(field)s”.", field=label)
    if params.get("minimum") is None:
        return None
    try:
        number, minimum = Decimal(str(value)), Decimal(str(params["minimum"]))
    except InvalidOperation:
        return _l("Fill in “%(field)s”.", field=label)
    if params.get("exclusive") and number <= minimum:
        return _l("“%(field)s” must be more than %(minimum)s.", field=label, minimum=params["minimum"])
    if number < minimum:
        return _l("“%(field)s” must be at least %(minimum)s.", field=label, minimum=params["minimum"])
    return None


def describe_field(params):
    label = field_label(params["field"])
    if params.get("minimum") is None:
        return _l("“%(field)s” filled in", field=label)
    if params.get("exclusive"):
        return _l("“%(field)s” more than %(minimum)s", field=label, minimum=params["minimum"])
    return _l("“%(field)s” at least %(minimum)s", field=label, minimum=params["minimum"])


class TeamRoleParams(Schema):
    role = ma.fields.String(required=True, validate=ma.validate.OneOf(MEMBER_ROLES),
                            metadata={"description": "a team role: " + ", ".join(MEMBER_ROLES)})


def check_team_role(opportunity, values, params):
    role = params["role"]
    if role == "owner" and values.get("owner_id") is not None:
        return None
    if opportunity is not None and OpportunityMember.select().where(
            (OpportunityMember.opportunity == opportunity.id) & (OpportunityMember.role == role)).exists():
        return None
    return _l("Add a team member with the role “%(role)s”.", role=ROLE_LABELS.get(role, role))


def describe_team_role(params):
    return _l("A team member with the role “%(role)s”", role=ROLE_LABELS.get(params["role"], params["role"]))


def core_kinds():
    return [
        RequirementKind("field", _l("A field filled in"), check_field, FieldParams,
                        inputs=(ParamInput("field", _l("Field"), "choice", field_choices, required=True),
                                ParamInput("minimum", _l("Minimum (numbers and amounts)"), "number"),
                                ParamInput("exclusive", _l("More than the minimum, not equal to it"),
                                           "boolean")),
                        describe=describe_field, field=lambda params: params["field"]),
        RequirementKind("team_role", _l("A team member with a role"), check_team_role, TeamRoleParams,
                        inputs=(ParamInput("role", _l("Role"), "choice", tuple(ROLE_LABELS.items()),
                                           required=True),),
                        describe=describe_team_role),
    ]
