"""Pages for administrators: the organisation (departments, people, teams), roles and
their object permissions, organisation-wide defaults and sharing rules, why a user can
see a record, the recycle bin and the security log.

Every change goes through ``crm_core.org.services`` (the functions behind the JSON API,
so both channels obey the same rules); the pages read the forms, check that what they
name exists, and show the services' answers. Forms carry the version they were drawn
from: a stale one is a 409 page that keeps what was typed. Where a change does not move
a version (role and team memberships, object permissions, defaults), the form carries
the state it showed and the page refuses when the stored state is no longer that one.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from crm_core.api.errors import ApiError
from crm_core.audit.models import SecurityEvent
from crm_core.db import database
from crm_core.errors import VersionConflict
from crm_core.org import services
from crm_core.org.models import AccessDefault, Department, Role, SharingRule, Team, TeamMember, UserRole
from crm_core.permissions import DEFAULT_LEVELS, Level, engine
from crm_core.recycle import services as recycle
from crm_core.recycle.models import RecycleGroup
from crm_core.users.models import User
from crm_core.users.services import UserError
from crm_core.web.auth import require_admin

blueprint = Blueprint("org", __name__, url_prefix="/org")

LOG_LIMIT = 200
BIN_LIMIT = 500

# The built-in roles are stored with English names; show them in the reader's language
# (unless an administrator renamed them).
BUILT_IN_ROLE_LABELS = {"administrator": _l("Administrator"), "sales_manager": _l("Sales manager"),
                        "sales_rep": _l("Sales rep"), "auditor": _l("Auditor")}

# Object permissions, in the order of the role_defaults letters (c r e d V M).
PERMISSIONS = (("create", "c", _l("Create")), ("read", "r", _l("Read")), ("edit", "e", _l("Edit")),
               ("delete", "d", _l("Delete")), ("view_all", "V", _l("View all")),
               ("modify_all", "M", _l("Modify all")))
PERMISSION_KEYS = tuple(key for key, _letter, _label in PERMISSIONS)

DEFAULT_CHOICES = (("private", _l("Private")), ("read", _l("Everyone can read")),
                   ("read_write", _l("Everyone can read and edit")))
RULE_LEVELS = (("read", Level.READ, _l("Read")), ("edit", Level.EDIT, _l("Read and edit")))

LEVEL_LABELS = {Level.NONE: _l("No access"), Level.READ: _l("Read"), Level.EDIT: _l("Read and edit"),
                Level.DELETE: _l("Read, edit and delete"),
                Level.TRANSFER: _l("Read, edit, delete and change the owner"),
                Level.ALL: _l("Full access, including sharing")}

GROUP_KINDS = (("user", _l("Users")), ("team", _l("Teams")), ("department", _l("Departments")),
               ("department_tree", _l("Departments with the departments below")))

EVENT_LABELS = {
    "sign_in": _l("Signed in"), "sign_in_failed": _l("Failed sign-in"),
    "sign_in_throttled": _l("Sign-in blocked after too many attempts"), "sign_out": _l("Signed out"),
    "password_reset": _l("Password reset"), "user_enabled": _l("User enabled"),
    "user_disabled": _l("User disabled"), "roles_changed": _l("Roles changed"),
    "object_permissions_changed": _l("Object permissions changed"),
    "default_changed": _l("Organisation-wide default changed"),
    "sharing_rule_created": _l("Sharing rule created"), "record_shared": _l("Record shared"),
    "record_unshared": _l("Record no longer shared"),
    "shares_removed": _l("Shares removed after a change of owner"), "denied": _l("Access denied"),
    "role_created": _l("Role created"), "role_grants_changed": _l("Named permissions of a role changed"),
    "role_reset": _l("Role reset to its built-in defaults"),
    "field_rule_changed": _l("Field security changed"), "team_changed": _l("Team members changed"),
    "department_deleted": _l("Department deleted"), "sharing_rule_deleted": _l("Sharing rule deleted"),
}


@blueprint.before_request
def _administrators_only():
    require_admin()


# -- names, labels and small helpers -----------------------------------------------------------

def _int(value):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def role_label(role):
    built_in = dict(services.BUILT_IN_ROLES)
    if role.key in BUILT_IN_ROLE_LABELS and role.name == built_in.get(role.key):
        return BUILT_IN_ROLE_LABELS[role.key]
    return role.name


def _objects():
    """The kinds of record under the access rules, by label."""
    return sorted(engine().objects.values(), key=lambda obj: (str(obj.label or obj.name), obj.name))


def object_label(name):
    obj = engine().objects.get(name)
    return str(obj.label or obj.name) if obj is not None else name


class Directory:
    """Names of users, teams and departments for one page (deleted ones too, for old rows)."""

    def __init__(self):
        self.users = {u.id: u for u in User.select().order_by(User.name, User.id)}
        self.teams = {t.id: t for t in Team.select().order_by(Team.name, Team.id)}
        self.departments = {d.id: d for d in Department.select().order_by(Department.name, Department.id)}
        self.plugin_groups = {}  # {type: {id: name}} of the plugins' share targets, asked once

    def user(self, user_id):
        user = self.users.get(_int(user_id))
        return user.name if user else ("—" if user_id is None else f"#{user_id}")

    def team(self, team_id):
        team = self.teams.get(_int(team_id))
        return team.name if team else f"#{team_id}"

    def department(self, department_id):
        """The department's path from the top: "Sales / North"."""
        names, seen = [], set()
        current = self.departments.get(_int(department_id))
        if current is None:
            return "—" if department_id is None else f"#{department_id}"
        while current is not None and current.id not in seen:
            seen.add(current.id)
            names.append(current.name)
            current = self.departments.get(current.parent_id)
        return " / ".join(reversed(names))

    def group(self, kind, group_id):
        """A user, team or department (with or without the ones below), in words."""
        if kind == "user":
            return _("User %(name)s", name=self.user(group_id))
        if kind == "team":
            return _("Team %(name)s", name=self.team(group_id))
        if kind == "department":
            return _("Department %(name)s", name=self.department(group_id))
        if kind == "department_tree":
            return _("Department %(name)s and the departments below", name=self.department(group_id))
        target = engine().share_targets.get(kind)
        if target is not None:
            name = self._plugin_names(kind).get(_int(group_id), f"#{group_id}")
            return f"{target.label} {name}"
        return f"{kind} {group_id}"

    def _plugin_names(self, kind):
        """{id: name} of a plugin's share target type, asked once per page."""
        names = self.plugin_groups
        if kind not in names:
            names[kind] = dict(engine().share_targets[kind].names(current_user.id) or ())
        return names[kind]

    def group_choices(self):
        """Option groups for a "user:3" / "team:1" / "department:2" select."""
        people = [(f"user:{u.id}", f"{u.name} <{u.email}>") for u in self.alive_users()]
        teams = [(f"team:{t.id}", t.name) for t in self.teams.values() if t.deleted_at is None]
        departments = [(d.id, self.department(d.id)) for d in self.alive_departments()]
        departments.sort(key=lambda pair: pair[1])
        return [(label, options) for label, options in (
            (GROUP_KINDS[0][1], people), (GROUP_KINDS[1][1], teams),
            (GROUP_KINDS[2][1], [(f"department:{i}", path) for i, path in departments]),
            (GROUP_KINDS[3][1], [(f"department_tree:{i}", path) for i, path in departments]))] + [
            (str(target.label), [(f"{kind}:{i}", name) for i, name in self._plugin_names(kind).items()])
            for kind, target in engine().share_targets.items()]

    def user_options(self, exclude=None):
        """[(id, "Name <email>")] of the users who are not deleted."""
        return [(u.id, f"{u.name} <{u.email}>") for u in self.alive_users() if u.id != exclude]

    def alive_users(self):
        return [u for u in self.users.values() if u.deleted_at is None]

    def alive_departments(self):
        return [d for d in self.departments.values() if d.deleted_at is None]


@blueprint.context_processor
def _labels():
    return {"role_label": role_label, "object_label": object_label, "level_labels": LEVEL_LABELS}


def _ref(raw):
    """An id typed in a form: None when empty, 0 (which names nothing) when not a number."""
    return None if not raw else (_int(raw) or 0)


def _form_errors(problem, names=None):
    """A service's refusal as {form input: message}."""
    names = names or {}
    return {names.get(field, field): message for field, message in problem.fields.items()}


def _alive_or_404(model, record_id):
    record = model.get_or_none((model.id == record_id) & model.deleted_at.is_null())
    if record is None:
        raise ApiError(404)
    return record


# -- overview ------------------------------------------------------------------------------

@blueprint.get("", endpoint="overview")
def overview():
    return render_template("crm_core/org/overview.html")


# -- departments -----------------------------------------------------------------------------

def _department_tree(departments):
    """[{"department", "children"}] from the top, each level by name."""
    ids = {d.id for d in departments}
    below = defaultdict(list)
    for department in departments:
        below[department.parent_id if department.parent_id in ids else None].append(department)

    def build(parent_id, seen):
        return [{"department": d, "children": build(d.id, seen | {d.id})}
                for d in below.get(parent_id, ()) if d.id not in seen]

    return build(None, frozenset())


def _people_per_department():
    counts = defaultdict(int)
    for (department_id,) in User.select(User.department).where(User.deleted_at.is_null()).tuples():
        counts[department_id] += 1
    return counts


def _department_form():
    return {key: request.form.get(key, "").strip() for key in ("name", "parent_id", "head_id")}


def _departments_page(form=None, errors=None, status=200):
    directory = Directory()
    departments = directory.alive_departments()
    return render_template(
        "crm_core/org/departments.html", tree=_department_tree(departments),
        directory=directory, people=_people_per_department(),
        form=form or {"name": "", "parent_id": "", "head_id": ""}, errors=errors or {},
        parents=sorted(((d.id, directory.department(d.id)) for d in departments), key=lambda p: p[1]),
    ), status


@blueprint.get("/departments", endpoint="departments")
def departments():
    return _departments_page()


@blueprint.post("/departments")
def create_department():
    form = _department_form()
    try:
        department = services.create_department(form["name"], _ref(form["parent_id"]),
                                                 _ref(form["head_id"]), actor_id=current_user.id)
    except UserError as problem:
        return _departments_page(form, _form_errors(problem), 422)
    flash(_("The department “%(name)s” has been created.", name=department.name), "success")
    return redirect(url_for("org.departments"))


def _department_page(department, form=None, errors=None, conflict=False, delete_error=None,
                     status=200):
    department = Department.get_by_id(department.id)  # as stored now
    directory = Directory()
    children = list(Department.alive().where(Department.parent == department.id).order_by(Department.name))
    form = form or {"name": department.name, "parent_id": str(department.parent_id or ""),
                    "head_id": str(department.head_id or "")}
    members = list(User.select().where((User.department == department.id) & User.deleted_at.is_null())
                   .order_by(User.name))
    return render_template(
        "crm_core/org/department.html", department=department, form=form, errors=errors or {},
        conflict=conflict, delete_error=delete_error, directory=directory, children=children,
        members=members,
        parents=_department_choices(directory, exclude=department.id),
    ), status


def _department_choices(directory, exclude=None):
    """(id, label) of every live department, by label, for a select."""
    return sorted(((d.id, directory.department(d.id)) for d in directory.alive_departments()
                   if d.id != exclude), key=lambda pair: pair[1])


@blueprint.get("/departments/<int:department_id>", endpoint="department")
def department_detail(department_id):
    return _department_page(_alive_or_404(Department, department_id))


@blueprint.post("/departments/<int:department_id>")
def update_department(department_id):
    department = _alive_or_404(Department, department_id)
    form = _department_form()
    try:
        services.update_department(
            department, {"name": form["name"], "parent_id": _ref(form["parent_id"]),
                         "head_id": _ref(form["head_id"])},
            actor_id=current_user.id, expected_version=_int(request.form.get("version")) or 0)
    except UserError as problem:
        return _department_page(department, form, _form_errors(problem), status=422)
    except VersionConflict:
        return _department_page(department, form, conflict=True, status=409)
    flash(_("The department “%(name)s” has been saved.", name=form["name"]), "success")
    return redirect(url_for("org.department", department_id=department.id))


@blueprint.post("/departments/<int:department_id>/delete")
def delete_department(department_id):
    department = _alive_or_404(Department, department_id)
    try:
        services.delete_department(department, actor_id=current_user.id,
                                   expected_version=_int(request.form.get("version")) or 0)
    except UserError as problem:
        return _department_page(department, delete_error=problem.message, status=409)
    except VersionConflict:
        return _department_page(department, delete_error=_(
            "Someone else changed this department in the meantime. Check it and try again."),
            status=409)
    flash(_("The department “%(name)s” has been deleted.", name=department.name), "success")
    return redirect(url_for("org.departments"))


# -- people ------------------------------------------------------------------------------------

def _roles_of_users():
    """{user id: [Role]}"""
    by_id = {role.id: role for role in Role.alive().order_by(Role.name)}
    roles = defaultdict(list)
    for user_id, role_id in UserRole.select(UserRole.user, UserRole.role).tuples():
        if role_id in by_id:
            roles[user_id].append(by_id[role_id])
    for user_roles in roles.values():
        user_roles.sort(key=lambda role: str(role_label(role)))
    return roles


@blueprint.get("/people", endpoint="people")
def people():
    directory = Directory()
    org = engine().organisation()
    rows = []
    for user in directory.alive_users():
        manager = org.manager_of(user.id)
        rows.append({"user": user, "department": directory.department(user.department_id)
                     if user.department_id else None,
                     "manager": directory.user(manager) if manager is not None else None,
                     "from_head": manager is not None and user.manager_id is None})
    return render_template("crm_core/org/people.html", rows=rows, roles=_roles_of_users())


def _head_manager(user):
    """Who manages ``user`` when no manager is set: the head of their department (or above)."""
    org = engine().organisation()
    without = dataclasses.replace(org, user_manager={**org.user_manager, user.id: None})
    return without.manager_of(user.id)


def _person_page(user, form=None, errors=None, conflict=False, status=200):
    user = User.get_by_id(user.id)
    directory = Directory()
    current_roles = services.role_ids_of(user)
    form = form or {"department_id": str(user.department_id or ""),
                    "manager_id": str(user.manager_id or ""), "roles": [str(r) for r in current_roles]}
    head = _head_manager(user)
    roles = sorted(Role.alive(), key=lambda role: str(role_label(role)))
    return render_template(
        "crm_core/org/person.html", person=user, form=form, errors=errors or {}, conflict=conflict,
        directory=directory, role_choices=[(r.id, role_label(r)) for r in roles],
        saved_roles=", ".join(str(role_label(r)) for r in roles if r.id in current_roles),
        head=directory.user(head) if head is not None else None,
        departments=_department_choices(directory),
    ), status


@blueprint.get("/people/<int:user_id>", endpoint="person")
def person(user_id):
    return _person_page(_alive_or_404(User, user_id))


@blueprint.post("/people/<int:user_id>")
def update_person(user_id):
    user = _alive_or_404(User, user_id)
    form = {"department_id": request.form.get("department_id", "").strip(),
            "manager_id": request.form.get("manager_id", "").strip(),
            "roles": request.form.getlist("roles")}
    role_ids = [_int(r) or 0 for r in form["roles"]]
    try:
        with database.atomic():
            department_id, manager_id = _ref(form["department_id"]), _ref(form["manager_id"])
            version = _int(request.form.get("version")) or 0
            if (department_id, manager_id) != (user.department_id, user.manager_id):
                services.place_user(user, department_id, manager_id, actor_id=current_user.id,
                                    expected_version=version)
                version = user.version
            if sorted(set(role_ids)) != services.role_ids_of(user):
                services.set_roles(user, role_ids, actor_id=current_user.id, expected_version=version)
            elif version != user.version:
                raise VersionConflict(User, user.id, version)
    except UserError as problem:
        return _person_page(User.get_by_id(user.id), form, _form_errors(problem), status=422)
    except VersionConflict:
        return _person_page(User.get_by_id(user.id), form, conflict=True, status=409)
    flash(_("The changes to %(name)s have been saved.", name=user.name), "success")
    return redirect(url_for("org.person", user_id=user.id))


# -- teams ----------------------------------------------------------------------------------------

def _members():
    members = defaultdict(list)
    for team_id, user_id in TeamMember.select(TeamMember.team, TeamMember.user).tuples():
        members[team_id].append(user_id)
    return members


def _team_form():
    return {"name": request.form.get("name", "").strip(), "members": request.form.getlist("members")}


def _teams_page(form=None, errors=None, status=200):
    directory = Directory()
    members = _members()
    teams = [{"team": t, "members": sorted((directory.user(u) for u in members.get(t.id, ())), key=str)}
             for t in Team.alive().order_by(Team.name)]
    return render_template("crm_core/org/teams.html", teams=teams, directory=directory,
                           form=form or {"name": "", "members": []}, errors=errors or {}), status


@blueprint.get("/teams", endpoint="teams")
def teams():
    return _teams_page()


@blueprint.post("/teams")
def create_team():
    form = _team_form()
    try:
        team = services.create_team(form["name"], [_int(m) or 0 for m in form["members"]],
                                    actor_id=current_user.id)
    except UserError as problem:
        return _teams_page(form, _form_errors(problem, TEAM_INPUTS), 422)
    flash(_("The team “%(name)s” has been created.", name=team.name), "success")
    return redirect(url_for("org.team", team_id=team.id))


TEAM_INPUTS = {"member_ids": "members"}


def _team_page(team, form=None, errors=None, conflict=False, status=200):
    team = Team.get_by_id(team.id)
    current = services.team_member_ids(team)
    directory = Directory()
    form = form or {"name": team.name, "members": [str(u) for u in current]}
    return render_template("crm_core/org/team.html", team=team, form=form, errors=errors or {},
                           conflict=conflict, directory=directory,
                           saved_members=", ".join(sorted(directory.user(u) for u in current))), status


@blueprint.get("/teams/<int:team_id>", endpoint="team")
def team_detail(team_id):
    return _team_page(_alive_or_404(Team, team_id))


@blueprint.post("/teams/<int:team_id>")
def update_team(team_id):
    team = _alive_or_404(Team, team_id)
    form = _team_form()
    try:
        services.update_team(team, form["name"], [_int(m) or 0 for m in form["members"]],
                             actor_id=current_user.id,
                             expected_version=_int(request.form.get("version")) or 0)
    except UserError as problem:
        return _team_page(team, form, _form_errors(problem, TEAM_INPUTS), status=422)
    except VersionConflict:
        return _team_page(team, form, conflict=True, status=409)
    flash(_("The team “%(name)s” has been saved.", name=form["name"]), "success")
    return redirect(url_for("org.team", team_id=team.id))


# -- roles and object permissions ---------------------------------------------------------------

def _roles_page(form=None, errors=None, status=200):
    counts = defaultdict(int)
    for (role_id,) in UserRole.select(UserRole.role).join(User).where(User.deleted_at.is_null()).tuples():
        counts[role_id] += 1
    return render_template("crm_core/org/roles.html", roles=list(Role.alive().order_by(Role.name)),
                           counts=counts, form=form or {"name": ""}, errors=errors or {}), status


@blueprint.get("/roles", endpoint="roles")
def roles():
    return _roles_page()


@blueprint.post("/roles")
def create_role():
    form = {"name": request.form.get("name", "").strip()}
    try:
        role = services.create_role(form["name"], actor_id=current_user.id)
    except UserError as problem:
        return _roles_page(form, _form_errors(problem), 422)
    flash(_("The role “%(name)s” has been created.", name=role.name), "success")
    return redirect(url_for("org.role", role_id=role.id))


def _permission_labels():
    """[(name, label)] of the named permissions, by label."""
    return sorted(((name, str(p.label or name)) for name, p in engine().permissions.items()),
                  key=lambda pair: (pair[1], pair[0]))


def _role_page(role, submitted=None, errors=None, conflict=False, status=200, grants=None):
    role = Role.get_by_id(role.id)
    permissions = services.object_permissions_of(role)
    shown = submitted or {name: flags for name, (flags, _set) in permissions.items()}
    rows = [{"object": obj, "flags": shown.get(obj.name, {}), "set_here": permissions[obj.name][1]}
            for obj in _objects()]
    held = services.role_grants_of(role)
    return render_template(
        "crm_core/org/role.html", role=role, rows=rows, permissions=PERMISSIONS,
        errors=errors or {}, conflict=conflict, grant_choices=_permission_labels(),
        grants=grants if grants is not None else held, field_rule_count=len(services.field_rules_of(role)),
        customised=role.grants_set or any(set_here for _flags, set_here in permissions.values())
        or bool(services.field_rules_of(role))), status


@blueprint.get("/roles/<int:role_id>", endpoint="role")
def role_detail(role_id):
    return _role_page(_alive_or_404(Role, role_id))


def _version():
    return _int(request.form.get("version")) or 0


@blueprint.post("/roles/<int:role_id>")
def update_role(role_id):
    role = _alive_or_404(Role, role_id)
    submitted = {}
    for name in request.form.getlist("object"):
        chosen = request.form.getlist(f"perm-{name}")
        submitted[name] = {key: key in chosen for key in PERMISSION_KEYS}
    unknown_flags = any(set(request.form.getlist(f"perm-{name}")) - set(PERMISSION_KEYS)
                        for name in submitted)
    current = services.object_permissions_of(role)
    changed = {name: flags for name, flags in submitted.items()
               if name not in current or flags != current[name][0]}
    try:
        if unknown_flags:
            raise UserError(_l("This value is not valid."), field="permissions")
        if changed:
            services.set_role_permissions(role, changed, actor_id=current_user.id,
                                          expected_version=_version())
        elif _version() != role.version:
            raise VersionConflict(Role, role.id, _version())
    except UserError as problem:
        return _role_page(role, submitted, {"permissions": problem.message}, status=422)
    except VersionConflict:
        return _role_page(role, submitted, conflict=True, status=409)
    flash(_("The permissions of the role “%(name)s” have been saved.", name=role_label(role)), "success")
    return redirect(url_for("org.role", role_id=role.id))


@blueprint.post("/roles/<int:role_id>/grants")
def update_role_grants(role_id):
    role = _alive_or_404(Role, role_id)
    chosen = request.form.getlist("grants")
    try:
        services.set_role_grants(role, chosen, actor_id=current_user.id, expected_version=_version())
    except UserError as problem:
        return _role_page(role, errors={"grants": problem.message}, grants=chosen, status=422)
    except VersionConflict:
        return _role_page(role, grants=chosen, conflict=True, status=409)
    flash(_("The permissions of the role “%(name)s” have been saved.", name=role_label(role)), "success")
    return redirect(url_for("org.role", role_id=role.id))


@blueprint.post("/roles/<int:role_id>/reset")
def reset_role(role_id):
    role = _alive_or_404(Role, role_id)
    try:
        services.reset_role(role, actor_id=current_user.id, expected_version=_version())
    except VersionConflict:
        return _role_page(role, conflict=True, status=409)
    flash(_("The role “%(name)s” is back to its built-in defaults.", name=role_label(role)), "success")
    return redirect(url_for("org.role", role_id=role.id))


# -- field security ---------------------------------------------------------------------------------

FIELD_ACCESS = (("edit", _l("Edit")), ("read", _l("Read only")), ("hidden", _l("Hidden")))


def _field_rows(role, submitted=None):
    """[(object, [(field, access)])] of every object's fields as the role sees them."""
    stored = services.field_rules_of(role)
    names = {value: key for key, value in services.FIELD_LEVELS.items()}
    rows = []
    for obj in _objects():
        fields = []
        for field_name in services.rule_fields(obj.name):
            key = f"{obj.name}.{field_name}"
            access = (submitted or {}).get(key) or names[stored.get((obj.name, field_name), 2)]
            fields.append((field_name, access))
        rows.append((obj, fields))
    return rows


def _fields_page(role, submitted=None, errors=None, conflict=False, status=200):
    role = Role.get_by_id(role.id)
    return render_template("crm_core/org/role_fields.html", role=role,
                           rows=_field_rows(role, submitted), choices=FIELD_ACCESS,
                           errors=errors or {}, conflict=conflict), status


@blueprint.get("/roles/<int:role_id>/fields", endpoint="role_fields")
def role_fields(role_id):
    return _fields_page(_alive_or_404(Role, role_id))


@blueprint.post("/roles/<int:role_id>/fields")
def update_role_fields(role_id):
    role = _alive_or_404(Role, role_id)
    submitted = {key.removeprefix("field-"): value for key, value in request.form.items()
                 if key.startswith("field-")}
    rules = {}
    for key, value in submitted.items():
        object_name, _sep, field_name = key.partition(".")
        rules[(object_name, field_name)] = value
    try:
        services.set_field_rules(role, rules, actor_id=current_user.id, expected_version=_version())
    except UserError as problem:
        return _fields_page(role, submitted, {"_form": problem.message}, status=422)
    except VersionConflict:
        return _fields_page(role, submitted, conflict=True, status=409)
    flash(_("The field security of the role “%(name)s” has been saved.", name=role_label(role)),
          "success")
    return redirect(url_for("org.role_fields", role_id=role.id))


# -- organisation-wide defaults and sharing rules ------------------------------------------------

def _defaults():
    stored = {row.object: row for row in AccessDefault.select()}
    return {obj.name: (stored[obj.name].access, bool(stored[obj.name].managers_inherit))
            if obj.name in stored else ("private", True) for obj in _objects()}


def _defaults_state(defaults):
    return ";".join(f"{name}={access}/{int(inherit)}" for name, (access, inherit) in sorted(defaults.items()))


def _rule_fields():
    """[(object label, [(field, field)])] for the field select."""
    return [(str(obj.label or obj.name), [(f, f) for f in services.criteria_fields(obj.name)])
            for obj in _objects()]


EMPTY_RULE = {"object": "", "name": "", "kind": "owner", "source": "", "field": "", "values": "",
              "target": "", "level": "read"}


def _access_page(defaults_form=None, defaults_errors=None, rule_form=None, rule_errors=None,
                 conflict=False, rule_conflict=None, status=200):
    directory = Directory()
    defaults = _defaults()
    shown = defaults_form or defaults
    rules = []
    for rule in SharingRule.alive().order_by(SharingRule.object, SharingRule.name, SharingRule.id):
        if rule.kind == "owner":
            which = _("Records owned by: %(group)s", group=directory.group(rule.source_type, rule.source_id))
        else:
            values = ", ".join(json.loads(rule.values or "[]"))
            which = _("Records whose %(field)s is one of: %(values)s", field=rule.field, values=values)
        rules.append({"rule": rule, "which": which, "target": directory.group(rule.target_type, rule.target_id),
                      "level": dict((int(lv), label) for _k, lv, label in RULE_LEVELS).get(rule.level, rule.level)})
    return render_template(
        "crm_core/org/access.html", objects=_objects(), defaults=shown, errors=defaults_errors or {},
        state=_defaults_state(defaults), conflict=conflict, choices=DEFAULT_CHOICES, rules=rules,
        rule_form=rule_form or dict(EMPTY_RULE), rule_errors=rule_errors or {},
        rule_conflict=rule_conflict, groups=directory.group_choices(), fields=_rule_fields(),
        object_options=[(obj.name, str(obj.label or obj.name)) for obj in _objects()],
        level_options=[(key, label) for key, _level, label in RULE_LEVELS]), status


@blueprint.get("/access", endpoint="access")
def access():
    return _access_page()


@blueprint.post("/access/defaults")
def save_defaults():
    objects = engine().objects
    names = request.form.getlist("object")
    submitted = {name: (request.form.get(f"access-{name}", ""), request.form.get(f"inherit-{name}") == "1")
                 for name in names}
    errors = {}
    for name, (level, _inherit) in submitted.items():
        if name not in objects:
            errors["_form"] = _("No such kind of record.")
        elif level not in DEFAULT_LEVELS:
            errors[name] = _("Choose private, read or read-write.")
    current = _defaults()
    shown = {**current, **{n: v for n, v in submitted.items() if n in objects}}
    if request.form.get("state", "") != _defaults_state(current):
        return _access_page(defaults_form=shown, defaults_errors=errors, conflict=True, status=409)
    if errors:
        return _access_page(defaults_form=shown, defaults_errors=errors, status=422)
    try:
        with database.atomic():
            for name, (level, inherit) in submitted.items():
                if (level, inherit) != current[name]:
                    services.set_default(name, level, inherit, actor_id=current_user.id)
    except UserError as problem:  # the service has the last word on what a default may be
        return _access_page(defaults_form=shown, defaults_errors={"_form": problem.message}, status=422)
    flash(_("The organisation-wide defaults have been saved."), "success")
    return redirect(url_for("org.access"))


def _group_ref(raw):
    """("team", 3) from "team:3" (the service says whether it names a live team)."""
    kind, _sep, ident = (raw or "").partition(":")
    return kind or None, _int(ident)


RULE_INPUTS = {"source_id": "source", "source_type": "source", "target_id": "target",
               "target_type": "target", "values": "values"}


@blueprint.post("/access/rules")
def create_rule():
    form = {key: request.form.get(key, EMPTY_RULE[key]).strip() for key in EMPTY_RULE}
    source_type = source_id = field = values = None
    if form["kind"] == "owner":
        source_type, source_id = _group_ref(form["source"])
    else:
        field = form["field"] or None
        values = [line.strip() for line in form["values"].splitlines() if line.strip()]
    target_type, target_id = _group_ref(form["target"])
    level = dict((key, lv) for key, lv, _label in RULE_LEVELS).get(form["level"], Level.NONE)
    try:
        if form["kind"] not in ("owner", "criteria"):
            raise UserError(_l("This value is not valid."), field="kind")
        rule = services.create_sharing_rule(form["object"], form["name"], target_type, target_id,
                                            level, source_type, source_id, field, values,
                                            actor_id=current_user.id, kind=form["kind"])
    except UserError as problem:
        return _access_page(rule_form=form, rule_errors=_form_errors(problem, RULE_INPUTS), status=422)
    flash(_("The sharing rule “%(name)s” has been created.", name=rule.name), "success")
    return redirect(url_for("org.access"))


@blueprint.post("/access/rules/<int:rule_id>/delete")
def delete_rule(rule_id):
    rule = _alive_or_404(SharingRule, rule_id)
    try:
        services.delete_sharing_rule(rule, actor_id=current_user.id, expected_version=_version())
    except VersionConflict:
        return _access_page(rule_conflict=_(
            "Someone else changed this sharing rule in the meantime. Check it and try again."),
            status=409)
    flash(_("The sharing rule “%(name)s” has been deleted.", name=rule.name), "success")
    return redirect(url_for("org.access"))


# -- why can this person see this record ----------------------------------------------------------

def _reason_text(reason, directory):
    code, detail = reason.code, reason.detail
    if code == "owner":
        return _("They own the record.")
    if code == "manager":
        return _("They are above the owner, %(name)s, in the organisation.", name=directory.user(detail))
    if code == "default":
        return _("The organisation-wide default for this kind of record.")
    if code == "sharing_rule":
        return _("The sharing rule “%(name)s”.", name=detail)
    if code == "share":
        kind, _sep, group_id = detail.partition(" ")
        return _("The record is shared with: %(group)s.", group=directory.group(kind, _int(group_id)))
    if code == "parent":
        return _("They can read a related record: %(kind)s.", kind=object_label(detail))
    if code == "view_all":
        return _("One of their roles has “View all” on this kind of record.")
    if code == "modify_all":
        return _("One of their roles has “Modify all” on this kind of record.")
    if code == "administrator":
        return _("They are an administrator.")
    if code == "deleted":
        return _("The record is in the recycle bin.")
    if code == "restricted":
        return _("A plugin restricts access to it: %(reason)s", reason=detail)
    if code == "inactive":
        return _("Their account is disabled.")
    if code == "no_object_permission":
        return _("None of their roles may read this kind of record.")
    # "plugin" and every code a plugin's grant hook chose
    return _("A plugin grants it: %(reason)s", reason=" ".join(p for p in (code, detail) if p))


@blueprint.get("/explain", endpoint="explain")
def explain():
    form = {key: request.args.get(key, "").strip() for key in ("user_id", "object", "record_id")}
    directory = Directory()
    errors, result, status = {}, None, 200
    if any(form.values()):
        access = engine()
        user_id = _int(form["user_id"])
        if user_id is None or user_id not in directory.users or directory.users[user_id].deleted_at:
            errors["user_id"] = _("No such user.")
        obj = access.objects.get(form["object"])
        if obj is None:
            errors["object"] = _("No such kind of record.")
        record_id = _int(form["record_id"])
        if record_id is None:
            errors["record_id"] = _("Enter a whole number.")
        record = None
        if obj is not None and record_id is not None:
            record = obj.model.get_or_none(obj.model.id == record_id)
            if record is None:
                errors["record_id"] = _("There is no record with this number.")
        if errors:
            status = 422
        else:
            level, reasons = access.explain(user_id, record)
            result = {"level": level, "user": directory.users[user_id],
                      "record": getattr(record, "name", None) or f"#{record.id}",
                      "reasons": [{"level": r.level, "text": _reason_text(r, directory)} for r in reasons]}
    return render_template("crm_core/org/explain.html", form=form, errors=errors, result=result,
                           user_options=directory.user_options(), objects=_objects(),
                           object_options=[(o.name, str(o.label or o.name)) for o in _objects()]), status


# -- recycle bin and security log ------------------------------------------------------------------

@blueprint.get("/recycle-bin", endpoint="recycle_bin")
def recycle_bin():
    directory = Directory()
    tables = {obj.model._meta.table_name: str(obj.label or obj.name) for obj in _objects()}
    groups = list(recycle.visible_groups(current_user.id).limit(BIN_LIMIT))
    return render_template("crm_core/org/recycle_bin.html", groups=groups, tables=tables,
                           directory=directory,
                           retention=current_app.config["CRM_RECYCLE_RETENTION_DAYS"])


@blueprint.post("/recycle-bin/<int:group_id>/restore")
def restore(group_id):
    group = recycle.visible_groups(current_user.id).where(RecycleGroup.id == group_id).first()
    if group is None:
        flash(_("This deletion is no longer in the recycle bin."), "error")
        return redirect(url_for("org.recycle_bin"))
    try:
        recycle.restore(group, actor_id=current_user.id)
    except KeyError:  # a table of a plugin that is not enabled
        flash(_("This cannot be restored while its plugin is disabled."), "error")
        return redirect(url_for("org.recycle_bin"))
    flash(_("“%(name)s” has been restored.", name=group.label), "success")
    return redirect(url_for("org.recycle_bin"))


@blueprint.get("/security-log", endpoint="security_log")
def security_log():
    kind = request.args.get("kind", "").strip()
    kinds = [k for (k,) in SecurityEvent.select(SecurityEvent.kind).distinct().order_by(SecurityEvent.kind).tuples()]
    query = SecurityEvent.select().order_by(SecurityEvent.id.desc())
    if kind:
        query = query.where(SecurityEvent.kind == kind)
    return render_template("crm_core/org/security_log.html", events=list(query.limit(LOG_LIMIT)),
                           kind_options=[(k, EVENT_LABELS.get(k, k)) for k in kinds], kind=kind,
                           labels=EVENT_LABELS, directory=Directory(),
                           limit=LOG_LIMIT)
