"""Pages: sign in and out, the user's own profile and API tokens, user administration."""

from __future__ import annotations

import zoneinfo
from urllib.parse import urlparse

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import ngettext, refresh
from flask_login import current_user

from crm_core.api.errors import ApiError
from crm_core.db import utcnow
from crm_core.errors import VersionConflict
from crm_core.i18n import current_locale
from crm_core.users import services
from crm_core.users.models import User
from crm_core.users.passwords import MIN_LENGTH
from crm_core.web.auth import SESSION_KEY, client_address, public, require_admin

blueprint = Blueprint("users", __name__)

COMMON_TIMEZONES = sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})


def _safe_next(target):
    """Only a path on this site: never an open redirect to another host."""
    if not target:
        return url_for("core.home")
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("core.home")
    return target


@blueprint.route("/login", methods=["GET", "POST"])
@public
def login():
    next_url = request.args.get("next", "")
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(_safe_next(next_url))
        return render_template("crm_core/users/login.html", next=next_url, email="", error=None)
    email = request.form.get("email", "")
    try:
        user = services.authenticate(email, request.form.get("password", ""), client_address())
    except services.SignInError as failure:
        if failure.code == "throttled":
            minutes = max(1, round(failure.retry_after / 60))
            message = ngettext("Too many failed attempts. Try again in %(num)s minute.",
                               "Too many failed attempts. Try again in %(num)s minutes.", minutes)
            status = 429
        else:
            message = _("The email or password is incorrect.")
            status = 401
        page = render_template("crm_core/users/login.html", next=next_url, email=email, error=message)
        headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
        return page, status, headers
    old_token = session.get(SESSION_KEY)
    if old_token:
        services.end_session(old_token)
    session.clear()  # a new session id at sign-in: nothing from before carries over
    session[SESSION_KEY] = services.start_session(user, client_address(),
                                                  request.headers.get("User-Agent"))
    return redirect(_safe_next(next_url))


@blueprint.post("/logout")
def logout():
    services.end_session(session.get(SESSION_KEY), actor_id=current_user.id)
    session.clear()
    flash(_("You are signed out."), "info")
    return redirect(url_for("users.login"))


def _profile_page(form=None, errors=None, conflict=False, new_token=None, status=200):
    user = current_user.user
    form = form or {"name": user.name, "locale": user.locale or current_locale(),
                    "timezone": user.timezone or current_app.config["CRM_TIMEZONE"]}
    return render_template(
        "crm_core/users/profile.html", user=user, form=form, errors=errors or {},
        conflict=conflict, timezones=COMMON_TIMEZONES, now=utcnow(), min_password=MIN_LENGTH,
        tokens=list(services.tokens_of(user)), new_token=new_token), status


@blueprint.route("/profile", methods=["GET", "POST"])
def profile():
    if request.method == "GET":
        return _profile_page()
    form = {key: request.form.get(key, "") for key in ("name", "locale", "timezone")}
    user = current_user.user  # this request's own copy: a new language applies at once
    try:
        services.update_profile(user, form, actor_id=user.id,
                                expected_version=request.form.get("version", type=int))
    except VersionConflict:
        return _profile_page(form=form, conflict=True, status=409)
    except services.UserError as problem:
        return _profile_page(form=form, errors={problem.field: problem.message}, status=422)
    refresh()  # the message below in the language just chosen
    flash(_("Your profile has been saved."), "success")
    return redirect(url_for("users.profile"))


@blueprint.post("/profile/password")
def change_password():
    try:
        services.change_password(User.get_by_id(current_user.id), request.form.get("current_password", ""),
                                 request.form.get("password", ""), keep_session=session.get(SESSION_KEY))
    except services.UserError as problem:
        return _profile_page(errors={problem.field: problem.message}, status=422)
    flash(_("Your password has been changed. Your other sessions have ended."), "success")
    return redirect(url_for("users.profile"))


@blueprint.post("/profile/tokens")
def create_token():
    raw, _row = services.issue_token(current_user.user, request.form.get("token_name", ""))
    return _profile_page(new_token=raw, status=201)


@blueprint.post("/profile/tokens/<int:token_id>/revoke")
def revoke_token(token_id):
    if not services.revoke_token(current_user.user, token_id):
        raise ApiError(404)
    flash(_("The token has been revoked."), "success")
    return redirect(url_for("users.profile"))


# -- administration -------------------------------------------------------------------

def _user_or_404(user_id):
    user = User.get_or_none((User.id == user_id) & User.deleted_at.is_null())
    if user is None:
        raise ApiError(404)
    return user


@blueprint.get("/users", endpoint="list")
def user_list():
    require_admin()
    return _list_page()


def _list_page(form=None, errors=None, status=200):
    users = list(User.select().where(User.deleted_at.is_null()).order_by(User.name, User.id))
    return render_template("crm_core/users/list.html", users=users,
                           form=form or {"email": "", "name": "", "locale": ""},
                           errors=errors or {}), status


@blueprint.post("/users")
def create():
    require_admin()
    form = {key: request.form.get(key, "") for key in ("email", "name", "locale")}
    try:
        user = services.create_user(form["email"], form["name"], request.form.get("password", ""),
                                    locale=form["locale"] or None, actor_id=current_user.id)
    except services.UserError as problem:
        return _list_page(form, {problem.field or "email": problem.message}, status=422)
    flash(_("%(name)s can now sign in.", name=user.name), "success")
    return redirect(url_for("users.detail", user_id=user.id))


@blueprint.get("/users/<int:user_id>")
def detail(user_id):
    require_admin()
    return render_template("crm_core/users/detail.html", user=_user_or_404(user_id), errors={})


@blueprint.post("/users/<int:user_id>/active")
def set_active(user_id):
    require_admin()
    user = _user_or_404(user_id)
    active = request.form.get("active") == "1"
    if not active and user.id == current_user.id:
        flash(_("You cannot disable yourself."), "error")
        return redirect(url_for("users.detail", user_id=user.id))
    version = request.form.get("version", type=int)
    if version is not None and version != user.version:
        flash(_("Someone else changed this user in the meantime. Check the details and try "
                "again."), "error")
        return redirect(url_for("users.detail", user_id=user.id))
    services.set_active(user, active, actor_id=current_user.id)
    flash(_("%(name)s is enabled.", name=user.name) if active else
          _("%(name)s is disabled and signed out everywhere.", name=user.name), "success")
    return redirect(url_for("users.detail", user_id=user.id))


@blueprint.post("/users/<int:user_id>/password")
def reset_password(user_id):
    require_admin()
    user = _user_or_404(user_id)
    try:
        services.reset_password(user, request.form.get("password", ""), actor_id=current_user.id)
    except services.UserError as problem:
        return render_template("crm_core/users/detail.html", user=user,
                               errors={problem.field: problem.message}), 422
    flash(_("The password of %(name)s has been reset.", name=user.name), "success")
    return redirect(url_for("users.detail", user_id=user.id))
