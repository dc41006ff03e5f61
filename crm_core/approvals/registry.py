"""Kinds of approval, registered through ``crm_register_approval_kinds``: what a kind's
request proposes, how an approval applies it, and the company's policy settings of it.

The core registers ``opportunity_change``; quotes, plans and contracts register theirs
the same way (a plugin's kind names start with ``<plugin>.``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from crm_core.plugins import CORE, RegistryError


def _owner_of(record):
    return getattr(record, "owner_id", None)


def _as_is(field_name, value, record=None):
    return value


def _own_name(field_name):
    return field_name


def _reason_code(reason):
    return reason.get("code") if isinstance(reason, dict) else reason


@dataclass(frozen=True)
class ApprovalKind:
    """One kind of approval.

    - ``name``: stable key ("opportunity_change", "trade_docs.quote");
    - ``object``: the access object of its records ("opportunity"); who may read the
      record may see its requests;
    - ``label``: a lazy translation, shown in lists;
    - ``apply(record, proposed, actor_id)``: called inside the final approval's
      transaction to write the proposal (raise ``UserError`` to refuse: nothing is written
      and the request stays pending);
    - ``current(record, fields)``: the record's values of ``fields`` now (API names), to
      tell a stale request (its ``base`` no longer matches) from a fresh one;
    - ``subject(record)``: the user whose managers approve (default: the record's owner);
    - ``default_settings`` and ``check_settings(settings, problems)``: the kind's policy
      settings (``levels``, 1 or 2 approvers up the tree, is common to every kind);
    - ``show(field, value, record)``: a value as people read it (a stage's name for its
      id, an amount in the record's currency);
    - ``field_label(field)``: a field's name as people read it;
    - ``describe_reason(reason)``: why a request needs approval (one of the ``reasons``
      its kind stored, such as ``{"code": "stage_won"}``), in the reader's language.
    """

    name: str
    object: str
    label: Any
    apply: Callable
    current: Callable
    subject: Callable = _owner_of
    default_settings: dict = field(default_factory=dict)
    check_settings: Callable | None = None
    show: Callable = _as_is
    field_label: Callable = _own_name
    describe_reason: Callable = _reason_code


def collect(app, host):
    """Called by create_app: every registered kind, checked, by name."""
    def check(kind, owner):
        if not isinstance(kind, ApprovalKind):
            raise RegistryError(f"{owner}: {kind!r} is not a crm_core.approvals.ApprovalKind")
        if owner != CORE and not kind.name.startswith(owner + "."):
            raise RegistryError(f"{owner}: approval kind {kind.name!r} must start with {owner + '.'!r}")

    host.collect("crm_register_approval_kinds", "approval kind", "approval_kinds", lambda kind: kind.name,
                 check, app=app)


def kinds(app=None):
    from flask import current_app

    return (app or current_app).extensions["crm"].registries["approval_kinds"]
