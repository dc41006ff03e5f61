"""The rules of approvals, for every kind: the company's policy of a kind, the approver
chain from the organisation tree, asking, deciding, cancelling, superseding, who sees
what, and the audit trail and notifications that go with each step.

Decisions are conditional updates on the request's version: of two approvers deciding at
once, one wins and the other gets a 409 (code ``changed``). The last approval applies the
proposal through its kind's ``apply`` in the same transaction; a request whose record has
moved away from the values it was asked over (its ``base``) is stale and cannot be
approved (409, code ``stale``): reject it, or cancel it and ask again.
"""

from __future__ import annotations

import json

import peewee
from flask_babel import lazy_gettext as _l

from crm_core.approvals.models import ApprovalPolicy, ApprovalRequest, ApprovalStep
from crm_core.approvals.registry import kinds
from crm_core.audit.services import log_security, record_changes
from crm_core.db import database, utcnow
from crm_core.errors import UserError
from crm_core.org.services import Problems
from crm_core.permissions import engine

NOT_PENDING = _l("This request was decided or withdrawn meanwhile.")
LEVELS = (1, 2)  # approvers up the tree: the owner's manager, optionally the next one up
COMMENT_MAX = 2000


def kind_of(request_or_name):
    return kinds()[getattr(request_or_name, "kind", request_or_name)]


def as_json(values):
    """Values as the request stores them (amounts and dates as text)."""
    return json.loads(json.dumps(values, default=str, ensure_ascii=False))


# -- the company's policy of a kind ---------------------------------------------------------------

def policy(kind_name):
    """The stored policy of ``kind_name`` or its defaults (switched off, version 0)."""
    kind_of(kind_name)
    found = ApprovalPolicy.get_or_none(ApprovalPolicy.kind == kind_name)
    return found or ApprovalPolicy(kind=kind_name, active=False, settings="{}", version=0)


def settings_of(kind_name):
    """{"active", "levels", ...the kind's settings}: the defaults under what was saved."""
    stored = policy(kind_name)
    return {"levels": 1, **kind_of(kind_name).default_settings, **json.loads(stored.settings or "{}"),
            "active": stored.active}


def set_policy(kind_name, changes, actor_id=None, expected_version=None):
    """Change the policy (``active`` and any settings) on the version the caller saw."""
    kind = kind_of(kind_name)
    changes = dict(changes)
    active = changes.pop("active", None)
    problems = Problems()
    current = settings_of(kind_name)
    settings = {key: value for key, value in current.items() if key != "active"}
    settings.update(changes)
    for key in sorted(set(settings) - set(kind.default_settings) - {"levels"}):
        problems.add(key, _l("There is no such setting."))
    if type(settings.get("levels")) is not int or settings["levels"] not in LEVELS:
        problems.add("levels", _l("Choose one of: %(choices)s.", choices="1, 2"))
    if kind.check_settings is not None:
        kind.check_settings(settings, problems)
    problems.check()
    with database.atomic():
        stored = policy(kind_name)
        expected = stored.version if expected_version is None else int(expected_version)
        values = {"settings": json.dumps(as_json(settings), sort_keys=True),
                  "active": stored.active if active is None else bool(active),
                  "updated_at": utcnow(), "updated_by_id": actor_id}
        if stored.version == 0:
            if expected != 0 or ApprovalPolicy.select().where(ApprovalPolicy.kind == kind_name).exists():
                raise UserError(_l("Someone else changed this record. Reload it and try again."),
                                code="changed")
            ApprovalPolicy.insert(kind=kind_name, version=1, **values).execute()
        else:
            count = (ApprovalPolicy.update({**values, "version": ApprovalPolicy.version + 1})
                     .where((ApprovalPolicy.kind == kind_name) & (ApprovalPolicy.version == expected))
                     .execute())
            if count != 1:
                raise UserError(_l("Someone else changed this record. Reload it and try again."),
                                code="changed")
        log_security("approval_policy_changed", actor_id=actor_id, subject=kind_name,
                     active=values["active"], settings=json.loads(values["settings"]))
    return policy(kind_name)


# -- who approves ---------------------------------------------------------------------------------

def managers_above(user_id):
    """The active managers above ``user_id``, nearest first (an inactive one is passed over)."""
    org = engine().organisation()
    chain, seen, current = [], {user_id}, user_id
    while True:
        manager = org.manager_of(current)
        if manager is None or manager in seen:
            return chain
        seen.add(manager)
        if org.user_active.get(manager):
            chain.append(manager)
        current = manager


def approver_chain(subject_id, levels, actor_id=None):
    """Who must approve a change of a record of ``subject_id`` (its owner) made by
    ``actor_id``: the owner's manager, then the next level up when ``levels`` is 2. An
    approver acting themselves needs nobody at or below their own place in the chain, so
    a manager changing a subordinate's record needs only the levels above them (none with
    one level); an owner without a manager needs nobody."""
    above = managers_above(subject_id)
    chain = above[:levels]
    if actor_id in above:
        chain = above[above.index(actor_id) + 1:levels]
    return chain


def needs_approval(actor_id, chain):
    """An administrator's change applies at once; so does one nobody is above."""
    return bool(chain) and not (actor_id is not None and engine().subject(actor_id).is_admin)


# -- asking ---------------------------------------------------------------------------------------

def request_approval(kind_name, record, proposed, base, actor_id, approvers, reasons=(), note=None):
    """A pending request for ``record`` (call inside the change's transaction): the first
    approver is asked now, the others in turn. Pending requests of the same record that
    propose any of the same fields are superseded by it."""
    kind = kind_of(kind_name)
    with database.atomic():
        supersede(kind.object, record.id, proposed, actor_id)
        request = ApprovalRequest.create(
            kind=kind_name, object=kind.object, record_id=record.id,
            proposed=json.dumps(as_json(proposed), sort_keys=True, ensure_ascii=False),
            base=json.dumps(as_json(base), sort_keys=True, ensure_ascii=False),
            reasons=json.dumps(as_json(list(reasons)), ensure_ascii=False), note=note or None,
            state="pending", requested_by_id=actor_id, requested_at=utcnow())
        for position, approver_id in enumerate(approvers):
            ApprovalStep.create(request=request.id, position=position, approver_id=approver_id,
                                state="pending" if position == 0 else "waiting")
        record_changes(ApprovalRequest, request.id, {"state": (None, "pending")}, actor_id)
        log_security("approval_requested", actor_id=actor_id, subject=f"{kind.object}:{record.id}",
                     approval_id=request.id, approval_kind=kind_name, approver_id=approvers[0])
        _notify(approvers[0], "approval_requested", request, actor_id)
    return request


def supersede(object_name, record_id, fields, actor_id):
    """End the pending requests of a record that propose any of ``fields``: the newer
    change speaks for them now. Returns how many ended."""
    ended = 0
    for request in pending_of(object_name, record_id):
        if set(proposal(request)) & set(fields):
            ended += _end(request, "superseded", actor_id)
    return ended


def _end(request, state, actor_id, comment=None):
    count = (ApprovalRequest.update({ApprovalRequest.state: state, ApprovalRequest.decided_at: utcnow(),
                                     ApprovalRequest.decided_by_id: actor_id,
                                     ApprovalRequest.version: ApprovalRequest.version + 1})
             .where((ApprovalRequest.id == request.id) & (ApprovalRequest.state == "pending")).execute())
    if count:
        ApprovalStep.update({ApprovalStep.state: "skipped"}).where(
            (ApprovalStep.request == request.id) & ApprovalStep.state.in_(("pending", "waiting"))).execute()
        record_changes(ApprovalRequest, request.id, {"state": ("pending", state)}, actor_id)
        log_security(f"approval_{state}", actor_id=actor_id, subject=f"{request.object}:{request.record_id}",
                     approval_id=request.id, comment=comment)
    return count


# -- reading --------------------------------------------------------------------------------------

def proposal(request):
    return json.loads(request.proposed or "{}")


def base_of(request):
    return json.loads(request.base or "{}")


def reasons_of(request):
    return json.loads(request.reasons or "[]")


def steps(request):
    return list(ApprovalStep.select().where(ApprovalStep.request == request.id).order_by(ApprovalStep.position))


def current_step(request):
    if request.state != "pending":
        return None
    return (ApprovalStep.select().where((ApprovalStep.request == request.id) & (ApprovalStep.state == "pending"))
            .order_by(ApprovalStep.position).first())


def pending_of(object_name, record_id):
    return list(ApprovalRequest.select().where(
        (ApprovalRequest.object == object_name) & (ApprovalRequest.record_id == record_id)
        & (ApprovalRequest.state == "pending")).order_by(ApprovalRequest.id))


def pending_by_record(object_name, record_ids):
    """{record id: its newest pending request} for a page of records (one query)."""
    ids = sorted({rid for rid in record_ids if rid is not None})
    if not ids:
        return {}
    found = {}
    for request in (ApprovalRequest.select().where(
            (ApprovalRequest.object == object_name) & ApprovalRequest.record_id.in_(ids)
            & (ApprovalRequest.state == "pending")).order_by(ApprovalRequest.id)):
        found[request.record_id] = request
    return found


def visible(user_id, object_name=None):
    """The requests ``user_id`` may see: those of records they may read (a request shows
    what its record would become, so it is as private as the record)."""
    parts = []
    for name in sorted({kind.object for _, kind in kinds().items()}):
        if object_name is not None and name != object_name:
            continue
        if not engine().object_permissions(user_id, name).read:
            continue
        model = engine().objects[name].model
        # Correlated EXISTS: the database probes each request's record by id under the
        # access rules instead of listing every readable record first.
        readable = engine().query(user_id, name, peewee.SQL("1")).where(model.id == ApprovalRequest.record_id)
        parts.append((ApprovalRequest.object == name) & peewee.fn.EXISTS(readable))
    query = ApprovalRequest.select()
    if not parts:
        return query.where(ApprovalRequest.id.is_null())
    condition = parts[0]
    for part in parts[1:]:
        condition = condition | part
    return query.where(condition)


def waiting_for(user_id):
    """Condition: the request's current step is ``user_id``'s to decide."""
    return ApprovalRequest.id.in_(ApprovalStep.select(ApprovalStep.request).where(
        (ApprovalStep.approver_id == user_id) & (ApprovalStep.state == "pending")))


def to_decide_count(user_id):
    """For the menu (every page): pending requests waiting for ``user_id`` that they may
    see; one indexed query when nothing waits, as for most people most of the time."""
    waiting = [request_id for (request_id,) in ApprovalStep.select(ApprovalStep.request).where(
        (ApprovalStep.approver_id == user_id) & (ApprovalStep.state == "pending")).tuples()]
    if not waiting:
        return 0
    return visible(user_id).where((ApprovalRequest.state == "pending")
                                  & ApprovalRequest.id.in_(waiting)).count()


def get_visible(user_id, request_id):
    return visible(user_id).where(ApprovalRequest.id == request_id).first()


def record_of(request):
    """The live record of the request, or None (deleted since)."""
    model = engine().objects[request.object].model
    query = model.alive() if hasattr(model, "alive") else model.select()
    return query.where(model.id == request.record_id).first()


def may_decide(user_id, request):
    """The current step's approver decides; so may anyone above them in the tree (someone
    covering for them) and an administrator. Nobody decides on their own request."""
    step = current_step(request)
    if step is None or user_id is None or user_id == request.requested_by_id:
        return False
    if user_id == step.approver_id or engine().subject(user_id).is_admin:
        return True
    return user_id in managers_above(step.approver_id)


def may_cancel(user_id, request):
    return request.state == "pending" and user_id is not None and user_id == request.requested_by_id


def is_stale(request, record):
    """Has the record moved away from the values the request was asked over?"""
    if record is None:
        return True
    base = base_of(request)
    return as_json(kind_of(request).current(record, list(base))) != base


# -- deciding -------------------------------------------------------------------------------------

def _claim(request, expected_version):
    """Take the request for this decision (one decider wins; the other sees a conflict)."""
    count = (ApprovalRequest.update({ApprovalRequest.version: ApprovalRequest.version + 1})
             .where((ApprovalRequest.id == request.id) & (ApprovalRequest.version == expected_version)
                    & (ApprovalRequest.state == "pending")).execute())
    if count != 1:
        raise UserError(_l("This request was decided or changed meanwhile. Reload it and try again."),
                        field="version", code="changed")


def decide(request, actor_id, approve, comment=None, expected_version=None):
    """Approve or reject the current step. A rejection needs a comment (the requester is
    owed a reason) and ends the request; an approval passes it to the next approver, and
    the last one applies the proposal (refused with its reasons when the record no
    longer allows it: a stage gate that now fails, a stale request). Returns the request."""
    comment = (comment or "").strip() or None
    problems = Problems()
    if not approve and not comment:
        problems.add("comment", _l("Say why the change is rejected."))
    if comment and len(comment) > COMMENT_MAX:
        problems.add("comment", _l("At most %(max)s characters.", max=COMMENT_MAX))
    problems.check()
    kind = kind_of(request)
    expected = request.version if expected_version is None else int(expected_version)
    now = utcnow()
    with database.atomic():
        _claim(request, expected)
        step = current_step(request)
        ApprovalStep.update({ApprovalStep.state: "approved" if approve else "rejected",
                             ApprovalStep.decided_at: now, ApprovalStep.decided_by_id: actor_id,
                             ApprovalStep.comment: comment}).where(ApprovalStep.id == step.id).execute()
        following = (ApprovalStep.select().where((ApprovalStep.request == request.id)
                                                 & (ApprovalStep.position > step.position))
                     .order_by(ApprovalStep.position).first())
        if approve and following is not None:
            ApprovalStep.update({ApprovalStep.state: "pending"}).where(ApprovalStep.id == following.id).execute()
            log_security("approval_step_approved", actor_id=actor_id,
                         subject=f"{request.object}:{request.record_id}", approval_id=request.id,
                         comment=comment)
            _notify(following.approver_id, "approval_requested", request, actor_id)
        else:
            if approve:
                record = record_of(request)
                if is_stale(request, record):
                    raise UserError(_l("The record changed since this request was made: reject it, "
                                       "or ask for the change again."), field="version", code="stale")
                kind.apply(record, proposal(request), actor_id)
            state = "approved" if approve else "rejected"
            ApprovalRequest.update({ApprovalRequest.state: state, ApprovalRequest.decided_at: now,
                                    ApprovalRequest.decided_by_id: actor_id}).where(
                ApprovalRequest.id == request.id).execute()
            ApprovalStep.update({ApprovalStep.state: "skipped"}).where(
                (ApprovalStep.request == request.id) & (ApprovalStep.state == "waiting")).execute()
            record_changes(ApprovalRequest, request.id, {"state": ("pending", state)}, actor_id)
            log_security(f"approval_{state}", actor_id=actor_id, subject=f"{request.object}:{request.record_id}",
                         approval_id=request.id, comment=comment)
            if request.requested_by_id is not None:
                _notify(request.requested_by_id, f"approval_{state}", request, actor_id)
    send_soon()
    return ApprovalRequest.get_by_id(request.id)


def cancel(request, actor_id, expected_version=None):
    """The requester withdraws a pending request; nothing of it applies."""
    expected = request.version if expected_version is None else int(expected_version)
    with database.atomic():
        _claim(request, expected)
        _end(ApprovalRequest.get_by_id(request.id), "cancelled", actor_id)
    return ApprovalRequest.get_by_id(request.id)


# -- notifications --------------------------------------------------------------------------------

def _notify(user_id, notice, request, actor_id):
    from flask import current_app, has_app_context

    from crm_core.notifications.models import Notification

    if user_id is None or user_id == actor_id:
        return
    Notification.create(user_id=user_id, kind=notice, object=request.object, record_id=request.record_id,
                        actor_id=actor_id, count=1,
                        email="pending" if has_app_context() and current_app.config.get("CRM_SMTP_URL")
                        else "none")


def send_soon():
    from crm_core.notifications.services import send_soon

    send_soon()
