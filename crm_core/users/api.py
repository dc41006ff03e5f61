"""API: tokens for programs (/auth/token...), and users."""

from __future__ import annotations

import marshmallow as ma
from flask import jsonify
from flask.views import MethodView
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from crm_core.api import ApiError, Blueprint, ListQuery, Schema, check_if_match, page_schema, with_etag
from crm_core.config import LOCALES
from crm_core.users import services
from crm_core.users.models import User
from crm_core.web.auth import client_address, csrf_exempt, public, require_admin

auth_blueprint = Blueprint("auth", __name__, url_prefix="/auth",
                           description="API tokens: sign in as a program.")
users_blueprint = Blueprint("users_api", __name__, url_prefix="/users", description="Users.")


class UserSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    version = ma.fields.Integer(dump_only=True)
    email = ma.fields.Email(required=True)
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    password = ma.fields.String(load_only=True, validate=ma.validate.Length(max=256))
    locale = ma.fields.String(allow_none=True, validate=ma.validate.OneOf(LOCALES))
    timezone = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=64))
    active = ma.fields.Boolean(dump_only=True)
    is_admin = ma.fields.Boolean(dump_only=True)
    department_id = ma.fields.Integer(dump_only=True, allow_none=True)
    manager_id = ma.fields.Integer(dump_only=True, allow_none=True)
    roles = ma.fields.Method("role_names", dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)

    def role_names(self, user):
        from crm_core.org.models import Role, UserRole

        return [name for (name,) in Role.select(Role.name).join(UserRole)
                .where(UserRole.user == user.id).order_by(Role.name).tuples()]


class UserCreateSchema(UserSchema):
    password = ma.fields.String(load_only=True, required=True, validate=ma.validate.Length(max=256))
    is_admin = ma.fields.Boolean(load_default=False)


class UserPatchSchema(Schema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    locale = ma.fields.String(allow_none=True, validate=ma.validate.OneOf(LOCALES))
    timezone = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=64))
    active = ma.fields.Boolean()
    department_id = ma.fields.Integer(allow_none=True)
    manager_id = ma.fields.Integer(allow_none=True)
    roles = ma.fields.List(ma.fields.String(), metadata={"description": "role names"})


class PasswordResetSchema(Schema):
    password = ma.fields.String(required=True, load_only=True, validate=ma.validate.Length(max=256))


class TokenRequestSchema(Schema):
    username = ma.fields.String(required=True, metadata={"description": "email of the user"})
    password = ma.fields.String(required=True, load_only=True)
    name = ma.fields.String(load_default="API", validate=ma.validate.Length(max=100),
                            metadata={"description": "to tell your tokens apart"})


class TokenSchema(Schema):
    token = ma.fields.String(required=True, metadata={"description": "shown once"})
    user = ma.fields.Nested(UserSchema, required=True)


class TokenInfoSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    prefix = ma.fields.String()
    created_at = ma.fields.DateTime()
    last_used_at = ma.fields.DateTime(allow_none=True)
    expires_at = ma.fields.DateTime(allow_none=True)


def _place(user, placement, version):
    from crm_core.org.services import place_user

    place_user(user, placement.get("department_id", user.department_id),
               placement.get("manager_id", user.manager_id), actor_id=current_user.id,
               expected_version=version)
    return user.version


def _set_role_names(user, names, version):
    from crm_core.org.services import roles_named, set_roles

    set_roles(user, roles_named(names), actor_id=current_user.id, expected_version=version)
    return user.version


def _user_error(problem):
    return ApiError(409 if problem.code == "duplicate" else 422, problem.code,
                    fields={problem.field or "_schema": [str(problem.message)]})


@auth_blueprint.route("/token")
@public
@csrf_exempt
class TokenIssue(MethodView):
    @auth_blueprint.arguments(TokenRequestSchema)
    @auth_blueprint.response(201, TokenSchema)
    @auth_blueprint.alt_response(401, description="Wrong email or password")
    @auth_blueprint.alt_response(429, description="Too many failed attempts")
    @auth_blueprint.doc(security=[])
    def post(self, data):
        """Exchange an email and password for an API token (throttled like the sign-in page)."""
        try:
            user = services.authenticate(data["username"], data["password"], client_address())
        except services.SignInError as failure:
            if failure.code == "throttled":
                raise ApiError(429, message=_l("Too many failed attempts. Try again later."),
                               headers={"Retry-After": str(failure.retry_after)})
            raise ApiError(401, "invalid_credentials", _l("The email or password is incorrect."))
        raw, _row = services.issue_token(user, data["name"])
        return {"token": raw, "user": user}


@auth_blueprint.route("/tokens")
class Tokens(MethodView):
    @auth_blueprint.response(200, TokenInfoSchema(many=True))
    def get(self):
        """Your live API tokens (never the tokens themselves)."""
        return list(services.tokens_of(current_user.user))


@auth_blueprint.route("/tokens/<int:token_id>")
class TokenItem(MethodView):
    @auth_blueprint.response(204)
    def delete(self, token_id):
        """Revoke one of your tokens; it stops working at once."""
        if not services.revoke_token(current_user.user, token_id):
            raise ApiError(404)


users_list = ListQuery(
    "User",
    sort={"id": User.id, "name": User.name, "email": User.email, "created_at": User.created_at},
    filters={"email": (ma.fields.String(), User.email), "active": (ma.fields.Boolean(), User.active),
             "locale": (ma.fields.String(), User.locale)},
    default_sort="name")


def _get_user(user_id):
    user = User.get_or_none((User.id == user_id) & User.deleted_at.is_null())
    if user is None:
        raise ApiError(404)
    return user


@users_blueprint.route("")
class Users(MethodView):
    @users_blueprint.arguments(users_list.schema, location="query")
    @users_blueprint.response(200, page_schema(UserSchema))
    def get(self, args):
        """Colleagues: every signed-in user may see names and emails."""
        return users_list.page(User.select().where(User.deleted_at.is_null()), args)

    @users_blueprint.arguments(UserCreateSchema)
    @users_blueprint.response(201, UserSchema)
    def post(self, data):
        """Add a user (administrators)."""
        require_admin()
        try:
            return services.create_user(data["email"], data["name"], data["password"],
                                        is_admin=data.get("is_admin", False), locale=data.get("locale"),
                                        timezone=data.get("timezone"), actor_id=current_user.id)
        except services.UserError as problem:
            raise _user_error(problem)


@users_blueprint.route("/me")
class Me(MethodView):
    @users_blueprint.response(200, UserSchema)
    def get(self):
        """The signed-in user."""
        user = User.get_by_id(current_user.id)
        return with_etag(jsonify(UserSchema().dump(user)), user)


@users_blueprint.route("/<int:user_id>")
class UserItem(MethodView):
    @users_blueprint.response(200, UserSchema)
    def get(self, user_id):
        user = _get_user(user_id)
        return with_etag(jsonify(UserSchema().dump(user)), user)

    @users_blueprint.arguments(UserPatchSchema)
    @users_blueprint.response(200, UserSchema)
    @users_blueprint.doc(parameters=[{"in": "header", "name": "If-Match", "required": True,
                                      "schema": {"type": "string"}}])
    def patch(self, data, user_id):
        """Change a user: yourself (name, language, time zone) or anyone (administrators)."""
        user = _get_user(user_id)
        if user.id != current_user.id or {"active", "department_id", "manager_id", "roles"} & set(data):
            require_admin()
        version = check_if_match(user)
        placement = {key: data.pop(key) for key in ("department_id", "manager_id") if key in data}
        role_names = data.pop("roles", None)
        try:
            if placement:
                version = _place(user, placement, version)
            if role_names is not None:
                version = _set_role_names(user, role_names, version)
            if "active" in data and data["active"] != user.active:
                if not data["active"] and user.id == current_user.id:
                    raise ApiError(422, "cannot_disable_self",
                                   fields={"active": [str(_l("You cannot disable yourself."))]})
                if user.version != version:
                    raise ApiError(412)
                services.set_active(user, data.pop("active"), actor_id=current_user.id)
                version = user.version
            data.pop("active", None)
            services.update_profile(user, data, actor_id=current_user.id, expected_version=version)
        except services.UserError as problem:
            raise _user_error(problem)
        return with_etag(jsonify(UserSchema().dump(user)), user)


@users_blueprint.route("/<int:user_id>/password")
class UserPassword(MethodView):
    @users_blueprint.arguments(PasswordResetSchema)
    @users_blueprint.response(204)
    def post(self, data, user_id):
        """Set a new password (administrators); the user's sessions end."""
        require_admin()
        try:
            services.reset_password(_get_user(user_id), data["password"], actor_id=current_user.id)
        except services.UserError as problem:
            raise _user_error(problem)
