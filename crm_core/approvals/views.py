"""Pages of approvals: the inbox (to decide, made by me, all I may see), one request with
its trail, deciding and withdrawing, the policy form, and the record panel."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.routing import BuildError

from crm_core.approvals import services
from crm_core.approvals.models import ApprovalRequest
from crm_core.approvals.registry import kinds
from crm_core.errors import UserError
from crm_core.permissions import engine
from crm_core.users.models import User

blueprint = Blueprint("approvals", __name__, url_prefix="/approvals")
BOXES = ("decide", "mine", "all")
PAGE = 50


def record_url(object_name, record_id):
    """The record's page, when its kind has one."""
    plural = {"opportunity": "opportunities"}.get(object_name, object_name + "s")
    try:
        return url_for(f"{plural}.detail", record_id=record_id)
    except BuildError:
        return None


def readable_record(request_, reader_id):
    model = engine().objects[request_.object].model
    return engine().query(reader_id, request_.object).where(model.id == request_.record_id).first()


def card(request_, reader_id):
    """What a page shows of one request."""
    from crm_core.approvals.ext import pending_summary

    kind = services.kind_of(request_)
    summary = pending_summary(request_, reader_id)
    steps = services.steps(request_)
    names = dict(User.select(User.id, User.name).where(
        User.id.in_([s.approver_id for s in steps] + [s.decided_by_id for s in steps if s.decided_by_id]
                    + [request_.requested_by_id or 0])).tuples())
    record = readable_record(request_, reader_id)
    changes = [{"label": kind.field_label(name), "current": kind.show(name, summary["current"].get(name), record),
                "proposed": kind.show(name, value, record)}
               for name, value in summary["proposed"].items()
               if name not in ("pipeline_id",) or summary["current"].get(name) != value]
    label = (getattr(record, "name", None) or f"#{record.id}") if record is not None else f"#{request_.record_id}"
    return {"request": request_, "kind_label": kind.label, "label": label,
            "url": record_url(request_.object, request_.record_id), "changes": changes,
            "reasons": summary["reasons"], "steps": steps, "names": names,
            "may_decide": services.may_decide(reader_id, request_),
            "may_cancel": services.may_cancel(reader_id, request_)}


@blueprint.get("", endpoint="inbox")
def inbox():
    box = request.args.get("box", "decide")
    if box not in BOXES:
        abort(404)
    query = services.visible(current_user.id)
    if box == "decide":
        query = query.where((ApprovalRequest.state == "pending") & services.waiting_for(current_user.id))
    elif box == "mine":
        query = query.where(ApprovalRequest.requested_by_id == current_user.id)
    rows = list(query.order_by(ApprovalRequest.requested_at.desc(), ApprovalRequest.id.desc()).limit(PAGE))
    return render_template("crm_core/approvals/inbox.html", box=box, boxes=BOXES,
                           cards=[card(r, current_user.id) for r in rows], total=query.count(),
                           may_manage=engine().has_permission(current_user.id, "approvals.manage"))


def _visible_or_404(approval_id):
    found = services.get_visible(current_user.id, approval_id)
    if found is None:
        abort(404)
    return found


@blueprint.get("/<int:approval_id>", endpoint="detail")
def detail(approval_id):
    return render_template("crm_core/approvals/detail.html", card=card(_visible_or_404(approval_id),
                                                                       current_user.id))


@blueprint.post("/<int:approval_id>/decide", endpoint="decide")
def decide(approval_id):
    """The form's buttons: approve, reject or withdraw; back to the page it came from."""
    found = _visible_or_404(approval_id)
    action = request.form.get("action")
    back = request.form.get("next") or ""
    if not back.startswith("/") or back.startswith("//"):
        back = url_for("approvals.detail", approval_id=found.id)
    version = request.form.get("version", "")
    if found.state != "pending" or (version.isdigit() and int(version) != found.version):
        flash(str(services.NOT_PENDING), "error")
        return redirect(back)
    if action == "cancel":
        if not services.may_cancel(current_user.id, found):
            abort(403)
    elif action in ("approve", "reject"):
        if not services.may_decide(current_user.id, found):
            abort(403)
    else:
        abort(400)
    try:
        if action == "cancel":
            services.cancel(found, current_user.id, expected_version=int(version) if version.isdigit() else None)
            flash(_("The request was withdrawn."), "success")
        else:
            services.decide(found, current_user.id, action == "approve", request.form.get("comment"),
                            expected_version=int(version) if version.isdigit() else None)
            flash(_("The change was approved.") if action == "approve" else _("The change was rejected."),
                  "success")
    except UserError as problem:
        messages = [str(problem.message)] + [str(m) for f, m in problem.fields.items()
                                             if str(m) != str(problem.message)]
        return render_template("crm_core/approvals/detail.html", card=card(found, current_user.id),
                               errors=messages, comment=request.form.get("comment", "")), \
            409 if problem.code in UserError.CONFLICTS else 422
    return redirect(back)


@blueprint.route("/policies/<approval_kind>", methods=["GET", "POST"], endpoint="policy")
def policy(approval_kind):
    from crm_core.approvals.opportunity import SETTING_LABELS

    if not engine().has_permission(current_user.id, "approvals.manage"):
        abort(403)
    if approval_kind not in kinds():
        abort(404)
    kind = kinds()[approval_kind]
    errors, status = {}, 200
    settings = services.settings_of(approval_kind)
    if request.method == "POST":
        form = request.form
        changes = {"active": form.get("active") == "on", "levels": _int(form.get("levels"))}
        for name, default in kind.default_settings.items():
            if isinstance(default, bool):
                changes[name] = form.get(name) == "on"
            elif name == "amount_absolute":
                changes[name] = form.get(name, "").strip() or None
            else:
                changes[name] = _int(form.get(name))
        try:
            services.set_policy(approval_kind, changes, actor_id=current_user.id,
                                expected_version=_int(form.get("version")))
            flash(_("The approval policy is saved."), "success")
            return redirect(url_for("approvals.policy", approval_kind=approval_kind))
        except UserError as problem:
            errors = {f: str(m) for f, m in problem.fields.items()}
            status = 409 if problem.code in UserError.CONFLICTS else 422
            settings = {**settings, **changes}
    return render_template("crm_core/approvals/policy.html", kind=kind, settings=settings, errors=errors,
                           version=services.policy(approval_kind).version,
                           labels=SETTING_LABELS if approval_kind == "opportunity_change" else {}), status


def _int(value):
    value = (value or "").strip()
    if value.lstrip("-").isdigit():
        return int(value)
    return value or None


def menu_label():
    """The menu's entry, with the count of requests waiting for the signed-in user."""
    from flask_babel import lazy_gettext as _l

    count = services.to_decide_count(current_user.id)
    return _l("Approvals (%(num)s)", num=count) if count else _l("Approvals")


def record_panel(actor, object_name, record):
    """The ``record_panels`` slot of a record page: its pending change, to decide or withdraw."""
    from flask import render_template as render
    from markupsafe import Markup

    if actor is None or record is None or not any(k.object == object_name for _, k in kinds().items()):
        return None
    pending = services.pending_of(object_name, record.id)
    if not pending or services.get_visible(actor.id, pending[-1].id) is None:
        return None
    return Markup(render("crm_core/approvals/_panel.html", card=card(pending[-1], actor.id),
                         next=request.path if request else None))
