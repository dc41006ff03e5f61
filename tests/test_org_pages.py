"""The administrators' pages of the organisation and the access rules (/org/...): each page
renders for an administrator and is a 403 for a rep; each form changes what it should
(checked in the database), refuses bad input with a 422 that keeps the input, answers a
stale version with a 409 that keeps the input, and needs its CSRF token."""

import json
import re
from html import unescape

import pytest
from flask import g

from crm_core.audit.models import SecurityEvent
from crm_core.org import services
from crm_core.org.models import (AccessDefault, Department, FieldRule, Role, RoleGrant, RolePermission,
                                 SharingRule, Team, TeamMember, UserRole)
from crm_core.permissions import Level, engine
from crm_core.records import create_record, update_record
from crm_core.recycle.models import RecycleGroup
from crm_core.recycle.services import move_to_bin
from crm_core.testing import csrf_token_from, make_user, signed_in
from crm_core.testing import page_and_token as form_of
from crm_core.users.models import User
from crm_fx.models import FxAccount, FxContact

pytestmark = pytest.mark.crm_plugins("fx")

PAGES = ["/org", "/org/departments", "/org/people", "/org/teams", "/org/roles", "/org/access",
         "/org/explain", "/org/recycle-bin", "/org/security-log"]


@pytest.fixture
def admin(app):
    return make_user("admin@example.com", "Ada Admin", is_admin=True)


@pytest.fixture
def rep(app):
    user = make_user("rep@example.com", "Rita Rep")
    services.set_roles(user, ["sales_rep"])
    return user


@pytest.fixture
def browser(app, admin):
    return signed_in(app, admin)


def fresh():
    """Forget this request context's access cache (the test shares one app context)."""
    g.pop("_crm_access", None)


def text(response):
    return unescape(response.get_data(as_text=True))


def hidden(html, name):
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden {name}"
    return unescape(match.group(1))


# -- every page ---------------------------------------------------------------------------

def test_every_page_renders_for_an_administrator(app, browser):
    department = services.create_department("Sales")
    team = services.create_team("Key accounts")
    role = Role.get(Role.key == "sales_rep")
    user = User.get(User.email == "admin@example.com")
    for path in PAGES + [f"/org/departments/{department.id}", f"/org/people/{user.id}",
                         f"/org/teams/{team.id}", f"/org/roles/{role.id}", f"/org/roles/{role.id}/fields"]:
        response = browser.get(path)
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        assert '<main id="main">' in html and "<h1>" in html, path
        assert " style=" not in html and "<script" not in html and "<style" not in html, path


def test_every_input_has_a_label(app, browser):
    department = services.create_department("Sales")
    role = Role.get(Role.key == "sales_manager")
    services.create_team("Key accounts")
    for path in PAGES + [f"/org/departments/{department.id}", f"/org/roles/{role.id}",
                         f"/org/roles/{role.id}/fields",
                         f"/org/people/{User.get(User.email == 'admin@example.com').id}"]:
        html = browser.get(path).get_data(as_text=True)
        labelled = set(re.findall(r'<label[^>]* for="([^"]+)"', html))
        for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
            if 'type="hidden"' in tag:
                continue
            ident = re.search(r'id="([^"]+)"', tag)
            assert ident, (path, tag)
            assert ident.group(1) in labelled or "aria-labelledby=" in tag, (path, tag)


def test_the_menu_has_organisation_for_administrators_only(app, browser, rep):
    assert 'href="/org"' in browser.get("/").get_data(as_text=True)
    assert 'href="/org"' not in signed_in(app, rep).get("/").get_data(as_text=True)


def test_a_rep_gets_403_everywhere(app, rep, admin):
    department = services.create_department("Sales")
    team = services.create_team("Team")
    role = Role.get(Role.key == "sales_rep")
    rule = services.create_sharing_rule("fx_account", "R", "user", rep.id, Level.READ, "user", admin.id)
    group = move_to_bin(create_record(FxAccount, name="Gone", owner_id=rep.id), actor_id=rep.id)
    browser = signed_in(app, rep)
    for path in PAGES + [f"/org/departments/{department.id}", f"/org/people/{rep.id}",
                         f"/org/teams/{team.id}", f"/org/roles/{role.id}", f"/org/roles/{role.id}/fields",
                         f"/org/explain?user_id={rep.id}&object=fx_account&record_id=1"]:
        assert browser.get(path).status_code == 403, path
    token = csrf_token_from(browser.get("/profile").get_data(as_text=True))
    posts = [("/org/departments", {"name": "X"}),
             (f"/org/departments/{department.id}", {"name": "X", "version": "1"}),
             (f"/org/departments/{department.id}/delete", {"version": "1"}),
             (f"/org/people/{rep.id}", {"roles": [str(Role.get(Role.key == 'administrator').id)],
                                        "version": str(rep.version)}),
             ("/org/teams", {"name": "Mine"}), (f"/org/teams/{team.id}", {"name": "Y", "version": "1"}),
             ("/org/roles", {"name": "Boss"}),
             (f"/org/roles/{role.id}", {"object": "fx_account", "perm-fx_account": "modify_all"}),
             (f"/org/roles/{role.id}/grants", {"grants": "fx.reassign", "version": "1"}),
             (f"/org/roles/{role.id}/fields", {"field-fx_account.industry": "hidden", "version": "1"}),
             (f"/org/roles/{role.id}/reset", {"version": "1"}),
             ("/org/access/defaults", {"object": "fx_account", "access-fx_account": "read_write"}),
             ("/org/access/rules", {"object": "fx_account", "name": "Mine"}),
             (f"/org/access/rules/{rule.id}/delete", {"version": "1"}),
             (f"/org/recycle-bin/{group.id}/restore", {})]
    for path, data in posts:
        assert browser.post(path, data={**data, "csrf_token": token}).status_code == 403, path
    assert Department.alive().count() == 1 and not Team.select().where(Team.name == "Mine").exists()
    assert not RolePermission.select().exists() and not AccessDefault.select().exists()
    assert not FieldRule.select().exists() and not RoleGrant.select().exists()
    assert SharingRule.alive().count() == 1 and RecycleGroup.select().count() == 1
    assert not User.get_by_id(rep.id).is_admin


def test_anonymous_visitors_are_sent_to_sign_in(app):
    visitor = app.test_client()
    for path in PAGES:
        response = visitor.get(path)
        assert response.status_code == 302 and "/login?next=" in response.headers["Location"], path


def test_a_form_without_its_csrf_token_is_refused(app, browser):
    department = services.create_department("Sales")
    for path, data in [("/org/departments", {"name": "Forged"}),
                       (f"/org/departments/{department.id}", {"name": "Forged", "version": "1"}),
                       (f"/org/departments/{department.id}/delete", {"version": "1"}),
                       ("/org/teams", {"name": "Forged"}), ("/org/roles", {"name": "Forged"}),
                       ("/org/access/defaults", {"object": "fx_account", "access-fx_account": "read"})]:
        response = browser.post(path, data=data)
        assert response.status_code == 400, path
        assert "The form has expired" in text(response)
    assert [d.name for d in Department.alive()] == ["Sales"]
    assert not Team.select().exists() and not Role.select().where(Role.name == "Forged").exists()
    assert not AccessDefault.select().exists()


# -- departments ---------------------------------------------------------------------------

def test_create_departments_as_a_tree(app, browser, admin):
    html, token = form_of(browser, "/org/departments")
    created = browser.post("/org/departments", data={"name": "Sales", "parent_id": "", "head_id": str(admin.id),
                                                     "csrf_token": token})
    assert created.status_code == 302
    assert "The department “Sales” has been created." in text(browser.get(created.headers["Location"]))
    sales = Department.get(Department.name == "Sales")
    assert sales.head_id == admin.id and sales.parent_id is None
    browser.post("/org/departments", data={"name": "North", "parent_id": str(sales.id), "head_id": "",
                                           "csrf_token": token})
    north = Department.get(Department.name == "North")
    assert north.parent_id == sales.id and north.head_id is None
    page = browser.get("/org/departments").get_data(as_text=True)
    # North is in a list nested inside Sales' item
    assert re.search(r">Sales</a>.*?<ul>\s*<li>\s*<a [^>]*>North</a>", page, re.S)


def test_creating_a_department_refuses_bad_input_and_keeps_it(app, browser):
    html, token = form_of(browser, "/org/departments")
    empty = browser.post("/org/departments", data={"name": "  ", "parent_id": "", "head_id": "",
                                                   "csrf_token": token})
    assert empty.status_code == 422 and "Enter a name." in text(empty)
    missing = browser.post("/org/departments", data={"name": "Ghost town", "parent_id": "999999",
                                                     "head_id": "", "csrf_token": token})
    assert missing.status_code == 422
    assert 'value="Ghost town"' in missing.get_data(as_text=True) and "No such department." in text(missing)
    long_name = browser.post("/org/departments", data={"name": "x" * 201, "csrf_token": token})
    assert long_name.status_code == 422 and "Enter at most 200 characters." in text(long_name)
    assert not Department.select().exists()


def test_rename_move_and_change_the_head(app, browser, admin):
    boss = make_user("boss@example.com", "Boss")
    sales = services.create_department("Sales")
    north = services.create_department("North")
    html, token = form_of(browser, f"/org/departments/{north.id}")
    assert hidden(html, "version") == "1"
    saved = browser.post(f"/org/departments/{north.id}", data={
        "name": "North region", "parent_id": str(sales.id), "head_id": str(boss.id), "version": "1",
        "csrf_token": token})
    assert saved.status_code == 302
    stored = Department.get_by_id(north.id)
    assert (stored.name, stored.parent_id, stored.head_id) == ("North region", sales.id, boss.id)
    assert "has been saved" in text(browser.get(saved.headers["Location"]))


def test_moving_a_department_under_its_own_descendant_shows_the_services_error(app, browser):
    sales = services.create_department("Sales")
    north = services.create_department("North", parent=sales.id)
    html, token = form_of(browser, f"/org/departments/{sales.id}")
    response = browser.post(f"/org/departments/{sales.id}", data={
        "name": "Sales renamed", "parent_id": str(north.id), "head_id": "", "version": hidden(html, "version"),
        "csrf_token": token})
    assert response.status_code == 422
    page = text(response)
    assert "A department cannot be placed under itself." in page
    assert 'value="Sales renamed"' in page
    stored = Department.get_by_id(sales.id)
    assert (stored.name, stored.parent_id, stored.version) == ("Sales", None, 1)


def test_a_stale_department_form_is_a_409_that_keeps_the_input(app, browser):
    sales = services.create_department("Sales")
    html, token = form_of(browser, f"/org/departments/{sales.id}")
    update_record(Department.get_by_id(sales.id), {"name": "Changed elsewhere"})
    response = browser.post(f"/org/departments/{sales.id}", data={
        "name": "My name", "parent_id": "", "head_id": "", "version": hidden(html, "version"),
        "csrf_token": token})
    assert response.status_code == 409
    page = text(response)
    assert 'value="My name"' in page and "Changed elsewhere" in page
    assert "Someone else changed this department" in page
    assert hidden(response.get_data(as_text=True), "version") == "2"  # saving again keeps mine
    assert Department.get_by_id(sales.id).name == "Changed elsewhere"
    again = browser.post(f"/org/departments/{sales.id}", data={
        "name": "My name", "parent_id": "", "head_id": "", "version": "2", "csrf_token": token})
    assert again.status_code == 302 and Department.get_by_id(sales.id).name == "My name"


def test_delete_a_leaf_but_not_a_department_with_children(app, browser):
    sales = services.create_department("Sales")
    north = services.create_department("North", parent=sales.id)
    html, token = form_of(browser, f"/org/departments/{sales.id}")
    refused = browser.post(f"/org/departments/{sales.id}/delete", data={"version": "1", "csrf_token": token})
    assert refused.status_code == 409
    assert "Move or delete the departments below first." in text(refused)
    assert Department.get_by_id(sales.id).deleted_at is None
    stale = browser.post(f"/org/departments/{north.id}/delete", data={"version": "7", "csrf_token": token})
    assert stale.status_code == 409 and Department.get_by_id(north.id).deleted_at is None
    deleted = browser.post(f"/org/departments/{north.id}/delete", data={"version": "1", "csrf_token": token})
    assert deleted.status_code == 302
    assert Department.get_by_id(north.id).deleted_at is not None
    assert browser.get(f"/org/departments/{north.id}").status_code == 404


def test_deleting_a_department_moves_its_people_up_and_keeps_it_in_the_bin(app, browser, rep):
    sales = services.create_department("Sales")
    north = services.create_department("North", parent=sales.id)
    services.place_user(User.get_by_id(rep.id), north.id)
    html, token = form_of(browser, f"/org/departments/{north.id}")
    deleted = browser.post(f"/org/departments/{north.id}/delete",
                           data={"version": hidden(html, "version"), "csrf_token": token})
    assert deleted.status_code == 302
    assert User.get_by_id(rep.id).department_id == sales.id
    assert RecycleGroup.get().label == "North"
    assert SecurityEvent.select().where(SecurityEvent.kind == "department_deleted").exists()


# -- people -----------------------------------------------------------------------------------

def test_people_lists_department_manager_and_roles(app, browser, rep):
    boss = make_user("boss@example.com", "Bảo Boss")
    sales = services.create_department("Sales", head=boss.id)
    services.place_user(User.get_by_id(rep.id), sales.id, None)
    page = text(browser.get("/org/people"))
    row = re.search(r">Rita Rep</a>.*?</tr>", page, re.S).group(0)
    assert "Sales" in row and "Bảo Boss" in row and "department head" in row and "Sales rep" in row


def test_place_a_person_and_give_roles(app, browser, rep):
    boss = make_user("boss@example.com", "Boss")
    sales = services.create_department("Sales")
    manager_role = Role.get(Role.key == "sales_manager")
    rep_role = Role.get(Role.key == "sales_rep")
    html, token = form_of(browser, f"/org/people/{rep.id}")
    saved = browser.post(f"/org/people/{rep.id}", data={
        "department_id": str(sales.id), "manager_id": str(boss.id),
        "roles": [str(manager_role.id), str(rep_role.id)], "version": hidden(html, "version"),
        "csrf_token": token})
    assert saved.status_code == 302
    stored = User.get_by_id(rep.id)
    assert (stored.department_id, stored.manager_id) == (sales.id, boss.id)
    assert {r for (r,) in UserRole.select(UserRole.role).where(UserRole.user == rep.id).tuples()} == {
        manager_role.id, rep_role.id}
    # "department head": no explicit manager
    html, token = form_of(browser, f"/org/people/{rep.id}")
    browser.post(f"/org/people/{rep.id}", data={
        "department_id": str(sales.id), "manager_id": "", "roles": [str(rep_role.id)],
        "version": hidden(html, "version"), "csrf_token": token})
    stored = User.get_by_id(rep.id)
    assert stored.manager_id is None and stored.department_id == sales.id
    assert [r for (r,) in UserRole.select(UserRole.role).where(UserRole.user == rep.id).tuples()] == [rep_role.id]


def test_placing_a_person_refuses_bad_input(app, browser, rep, admin):
    html, token = form_of(browser, f"/org/people/{rep.id}")
    base = {"version": hidden(html, "version"),
            "csrf_token": token, "department_id": "", "manager_id": ""}
    own = browser.post(f"/org/people/{rep.id}", data={**base, "manager_id": str(rep.id)})
    assert own.status_code == 422 and "A user cannot be their own manager." in text(own)
    ghost = browser.post(f"/org/people/{rep.id}", data={**base, "department_id": "424242"})
    assert ghost.status_code == 422 and "No such department." in text(ghost)
    role = browser.post(f"/org/people/{rep.id}", data={**base, "roles": ["987654"]})
    assert role.status_code == 422 and "No such role" in text(role)
    assert User.get_by_id(rep.id).version == rep.version
    # an administrator cannot take away their own administrator role
    html, token = form_of(browser, f"/org/people/{admin.id}")
    demote = browser.post(f"/org/people/{admin.id}", data={
        "version": hidden(html, "version"),
        "csrf_token": token, "roles": [str(Role.get(Role.key == "sales_rep").id)]})
    assert demote.status_code == 422
    assert "You cannot take away your own administrator role." in text(demote)
    assert User.get_by_id(admin.id).is_admin


def test_a_stale_person_form_is_a_409_that_keeps_the_input(app, browser, rep):
    sales = services.create_department("Sales")
    north = services.create_department("North")
    html, token = form_of(browser, f"/org/people/{rep.id}")
    services.place_user(User.get_by_id(rep.id), north.id, None)  # someone else, meanwhile
    response = browser.post(f"/org/people/{rep.id}", data={
        "department_id": str(sales.id), "manager_id": "", "roles": [],
        "version": hidden(html, "version"), "csrf_token": token})
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert re.search(rf'<option value="{sales.id}" selected>', page)  # my choice is kept
    assert User.get_by_id(rep.id).department_id == north.id
    # roles changed elsewhere do not move the user's version: the form notices them too
    html, token = form_of(browser, f"/org/people/{rep.id}")
    services.set_roles(User.get_by_id(rep.id), ["sales_manager"])
    response = browser.post(f"/org/people/{rep.id}", data={
        "department_id": str(north.id), "manager_id": "", "roles": [],
        "version": hidden(html, "version"), "csrf_token": token})
    assert response.status_code == 409
    assert [r.key for r in Role.select().join(UserRole).where(UserRole.user == rep.id)] == ["sales_manager"]


# -- teams ---------------------------------------------------------------------------------------

def test_create_a_team_and_change_its_members(app, browser, rep, admin):
    html, token = form_of(browser, "/org/teams")
    created = browser.post("/org/teams", data={"name": "Key accounts", "members": [str(rep.id)],
                                               "csrf_token": token})
    assert created.status_code == 302
    team = Team.get(Team.name == "Key accounts")
    assert [u for (u,) in TeamMember.select(TeamMember.user).where(TeamMember.team == team).tuples()] == [rep.id]
    assert "Rita Rep" in text(browser.get("/org/teams"))
    html, token = form_of(browser, f"/org/teams/{team.id}")
    saved = browser.post(f"/org/teams/{team.id}", data={
        "name": "Key accounts", "members": [str(admin.id)], "version": hidden(html, "version"),
        "csrf_token": token})
    assert saved.status_code == 302
    assert [u for (u,) in TeamMember.select(TeamMember.user).where(TeamMember.team == team).tuples()] == [admin.id]


def test_teams_refuse_bad_input_and_stale_forms(app, browser, rep):
    services.create_team("Existing")
    html, token = form_of(browser, "/org/teams")
    duplicate = browser.post("/org/teams", data={"name": "Existing", "members": [str(rep.id)], "csrf_token": token})
    assert duplicate.status_code == 422 and "A team with this name already exists." in text(duplicate)
    assert re.search(rf'value="{rep.id}" checked', duplicate.get_data(as_text=True))
    ghost = browser.post("/org/teams", data={"name": "New", "members": ["999999"], "csrf_token": token})
    assert ghost.status_code == 422 and 'value="New"' in ghost.get_data(as_text=True)
    assert Team.select().count() == 1
    team = services.create_team("Hunters")
    html, token = form_of(browser, f"/org/teams/{team.id}")
    services.set_team_members(team, [rep.id])  # someone else, meanwhile
    stale = browser.post(f"/org/teams/{team.id}", data={
        "name": "Farmers", "members": [], "version": hidden(html, "version"),
        "csrf_token": token})
    assert stale.status_code == 409 and 'value="Farmers"' in stale.get_data(as_text=True)
    assert Team.get_by_id(team.id).name == "Hunters"
    assert TeamMember.select().where(TeamMember.team == team).count() == 1


# -- roles and object permissions -------------------------------------------------------------------

def test_create_a_role(app, browser):
    html, token = form_of(browser, "/org/roles")
    created = browser.post("/org/roles", data={"name": "Partner manager", "csrf_token": token})
    assert created.status_code == 302
    role = Role.get(Role.name == "Partner manager")
    assert role.key is None and created.headers["Location"].endswith(f"/org/roles/{role.id}")
    duplicate = browser.post("/org/roles", data={"name": "Partner manager", "csrf_token": token})
    assert duplicate.status_code == 422 and "A role with this name already exists." in text(duplicate)
    empty = browser.post("/org/roles", data={"name": "", "csrf_token": token})
    assert empty.status_code == 422 and Role.select().where(Role.key.is_null()).count() == 1


def test_a_role_shows_its_built_in_defaults_until_they_are_set(app, browser):
    auditor = Role.get(Role.key == "auditor")
    page = browser.get(f"/org/roles/{auditor.id}").get_data(as_text=True)
    assert "Built-in default" in page
    # auditor: "rV" (read, view all)
    checked = set(re.findall(r'id="p-fx_account-(\w+)"[^>]* checked', page))
    assert checked == {"read", "view_all"}


def test_set_object_permissions_of_a_role(app, browser, rep):
    role = Role.get(Role.key == "sales_rep")
    html, token = form_of(browser, f"/org/roles/{role.id}")
    saved = browser.post(f"/org/roles/{role.id}", data={
        "object": ["fx_account", "fx_contact"], "perm-fx_account": ["read", "create"],
        "perm-fx_contact": ["create", "read", "edit", "delete"],  # = the built-in default
        "version": hidden(html, "version"), "csrf_token": token})
    assert saved.status_code == 302
    row = RolePermission.get((RolePermission.role == role) & (RolePermission.object == "fx_account"))
    assert (row.can_create, row.can_read, row.can_edit, row.can_delete, row.view_all, row.modify_all) == (
        True, True, False, False, False, False)
    # unchanged from the defaults: no row is written, the defaults still apply
    assert not RolePermission.select().where(RolePermission.object == "fx_contact").exists()
    fresh()
    assert not engine().object_permissions(rep.id, "fx_account").edit
    assert SecurityEvent.select().where(SecurityEvent.kind == "object_permissions_changed").count() == 1
    page = browser.get(f"/org/roles/{role.id}").get_data(as_text=True)
    assert set(re.findall(r'id="p-fx_account-(\w+)"[^>]* checked', page)) == {"create", "read"}


def test_role_permissions_refuse_unknown_objects_and_stale_forms(app, browser):
    role = Role.get(Role.key == "sales_rep")
    html, token = form_of(browser, f"/org/roles/{role.id}")
    unknown = browser.post(f"/org/roles/{role.id}", data={
        "object": ["fx_account", "spaceship"], "perm-fx_account": ["read", "view_all"],
        "version": hidden(html, "version"), "csrf_token": token})
    assert unknown.status_code == 422 and "No such kind of record." in text(unknown)
    kept = set(re.findall(r'id="p-fx_account-(\w+)"[^>]* checked', unknown.get_data(as_text=True)))
    assert kept == {"read", "view_all"}
    services.set_object_permissions(role, "fx_account", read=True)  # someone else, meanwhile
    stale = browser.post(f"/org/roles/{role.id}", data={
        "object": ["fx_account"], "perm-fx_account": ["modify_all"], "version": hidden(html, "version"),
        "csrf_token": token})
    assert stale.status_code == 409
    assert set(re.findall(r'id="p-fx_account-(\w+)"[^>]* checked', stale.get_data(as_text=True))) == {"modify_all"}
    assert not RolePermission.get(RolePermission.object == "fx_account").modify_all


# -- defaults and sharing rules ------------------------------------------------------------------------

def test_grant_named_permissions_on_the_role_page(app, browser, rep):
    role = Role.get(Role.key == "sales_rep")
    html, token = form_of(browser, f"/org/roles/{role.id}")
    assert 'name="grants"' in html and "Not set by an administrator yet" in unescape(html)
    saved = browser.post(f"/org/roles/{role.id}/grants", data={
        "grants": ["fx.reassign"], "version": hidden(html, "version"), "csrf_token": token})
    assert saved.status_code == 302
    fresh()
    assert engine().has_permission(rep.id, "fx.reassign")
    stale = browser.post(f"/org/roles/{role.id}/grants", data={
        "grants": [], "version": hidden(html, "version"), "csrf_token": token})
    assert stale.status_code == 409 and 'value="fx.reassign"' in stale.get_data(as_text=True)
    html, token = form_of(browser, f"/org/roles/{role.id}")
    unknown = browser.post(f"/org/roles/{role.id}/grants", data={
        "grants": ["fx.launch_rockets"], "version": hidden(html, "version"), "csrf_token": token})
    assert unknown.status_code == 422 and "No such permission: fx.launch_rockets." in text(unknown)
    fresh()
    assert engine().has_permission(rep.id, "fx.reassign")


def test_field_security_page_hides_and_protects_fields(app, browser, rep):
    role = Role.get(Role.key == "sales_rep")
    html, token = form_of(browser, f"/org/roles/{role.id}/fields")
    assert re.search(r'name="field-fx_account.industry" value="edit"[^>]* checked', html)
    saved = browser.post(f"/org/roles/{role.id}/fields", data={
        "field-fx_account.industry": "hidden", "field-fx_account.amount": "read",
        "field-fx_account.name": "edit", "version": hidden(html, "version"), "csrf_token": token})
    assert saved.status_code == 302
    fresh()
    assert engine().field_levels(rep.id, "fx_account") == {"industry": 0, "amount": 1}
    page = browser.get(f"/org/roles/{role.id}/fields").get_data(as_text=True)
    assert re.search(r'name="field-fx_account.industry" value="hidden"[^>]* checked', page)
    stale = browser.post(f"/org/roles/{role.id}/fields", data={
        "field-fx_account.industry": "edit", "version": hidden(html, "version"), "csrf_token": token})
    assert stale.status_code == 409
    assert re.search(r'name="field-fx_account.industry" value="edit"[^>]* checked', stale.get_data(as_text=True))
    html, token = form_of(browser, f"/org/roles/{role.id}/fields")
    bad = browser.post(f"/org/roles/{role.id}/fields", data={
        "field-fx_account.colour": "hidden", "version": hidden(html, "version"), "csrf_token": token})
    assert bad.status_code == 422 and "No such field." in text(bad)
    fresh()
    assert engine().field_levels(rep.id, "fx_account") == {"industry": 0, "amount": 1}
    # Reset brings the built-in defaults back: no field rules, no stored permissions.
    html, token = form_of(browser, f"/org/roles/{role.id}")
    reset = browser.post(f"/org/roles/{role.id}/reset", data={"version": hidden(html, "version"),
                                                              "csrf_token": token})
    assert reset.status_code == 302
    fresh()
    assert engine().field_levels(rep.id, "fx_account") == {}
    assert "Reset to the built-in defaults" not in browser.get(f"/org/roles/{role.id}").get_data(as_text=True)


def test_set_organisation_wide_defaults(app, browser):
    html, token = form_of(browser, "/org/access")
    saved = browser.post("/org/access/defaults", data={
        "object": ["fx_account", "fx_contact"], "access-fx_account": "read", "inherit-fx_account": "1",
        "access-fx_contact": "private", "state": hidden(html, "state"), "csrf_token": token})
    assert saved.status_code == 302
    stored = {row.object: (row.access, row.managers_inherit) for row in AccessDefault.select()}
    assert stored == {"fx_account": ("read", True), "fx_contact": ("private", False)}
    fresh()
    assert engine().default("fx_account") == (Level.READ, True)


def test_defaults_refuse_bad_levels_and_stale_forms(app, browser):
    html, token = form_of(browser, "/org/access")
    bad = browser.post("/org/access/defaults", data={
        "object": ["fx_account", "fx_contact"], "access-fx_account": "everything", "inherit-fx_account": "1",
        "access-fx_contact": "read_write", "inherit-fx_contact": "1", "state": hidden(html, "state"),
        "csrf_token": token})
    assert bad.status_code == 422 and "Choose private, read or read-write." in text(bad)
    assert re.search(r'name="access-fx_contact"[^>]*>.*?<option value="read_write" selected>',
                     bad.get_data(as_text=True), re.S)
    assert not AccessDefault.select().exists()
    services.set_default("fx_account", "read")  # someone else, meanwhile
    stale = browser.post("/org/access/defaults", data={
        "object": ["fx_account", "fx_contact"], "access-fx_account": "private", "inherit-fx_account": "1",
        "access-fx_contact": "read_write", "inherit-fx_contact": "1", "state": hidden(html, "state"),
        "csrf_token": token})
    assert stale.status_code == 409
    assert re.search(r'name="access-fx_contact"[^>]*>.*?<option value="read_write" selected>',
                     stale.get_data(as_text=True), re.S)
    assert {row.object: row.access for row in AccessDefault.select()} == {"fx_account": "read"}


def test_create_and_delete_sharing_rules(app, browser, rep, admin):
    team = services.create_team("Key accounts", [rep.id])
    sales = services.create_department("Sales")
    html, token = form_of(browser, "/org/access")
    owner_based = browser.post("/org/access/rules", data={
        "object": "fx_account", "name": "Admin's accounts", "kind": "owner", "source": f"user:{admin.id}",
        "target": f"team:{team.id}", "level": "edit", "csrf_token": token})
    assert owner_based.status_code == 302
    criteria = browser.post("/org/access/rules", data={
        "object": "fx_contact", "name": "Retail", "kind": "criteria", "field": "name",
        "values": "Retail\r\n\r\nShops\n", "target": f"department_tree:{sales.id}", "level": "read",
        "csrf_token": token})
    assert criteria.status_code == 302
    rules = {rule.name: rule for rule in SharingRule.alive()}
    first, second = rules["Admin's accounts"], rules["Retail"]
    assert (first.kind, first.source_type, first.source_id, first.target_type, first.target_id, first.level) == (
        "owner", "user", admin.id, "team", team.id, int(Level.EDIT))
    assert (second.kind, second.field, json.loads(second.values), second.target_type, second.level) == (
        "criteria", "name", ["Retail", "Shops"], "department_tree", int(Level.READ))
    account = create_record(FxAccount, name="A", owner_id=admin.id)
    fresh()
    assert engine().level(rep.id, account) == Level.EDIT  # the rule works at once
    page = text(browser.get("/org/access"))
    assert "Team Key accounts" in page and "Department Sales and the departments below" in page
    deleted = browser.post(f"/org/access/rules/{first.id}/delete", data={"version": "1", "csrf_token": token})
    assert deleted.status_code == 302 and SharingRule.get_by_id(first.id).deleted_at is not None
    fresh()
    assert engine().level(rep.id, account) == Level.NONE
    stale = browser.post(f"/org/access/rules/{second.id}/delete", data={"version": "3", "csrf_token": token})
    assert stale.status_code == 409 and SharingRule.get_by_id(second.id).deleted_at is None


def test_sharing_rules_refuse_bad_input_and_keep_it(app, browser, rep):
    html, token = form_of(browser, "/org/access")
    cases = [
        ({"object": "spaceship"}, "No such kind of record."),
        ({"source": ""}, "Choose a user, a team or a department."),
        ({"target": "team:31337"}, "No such team."),
        ({"kind": "criteria", "field": "colour", "values": "red"}, "No such field."),
        ({"kind": "criteria", "field": "industry", "values": "  "}, "Name a field and at least one value."),
        ({"level": "everything"}, "Share for reading or for editing."),
    ]
    good = {"object": "fx_account", "name": "Kept name", "kind": "owner", "source": f"user:{rep.id}",
            "target": f"user:{rep.id}", "level": "read", "csrf_token": token}
    for change, message in cases:
        response = browser.post("/org/access/rules", data={**good, **change})
        assert response.status_code == 422, change
        assert message in text(response), change
        assert 'value="Kept name"' in response.get_data(as_text=True), change
    assert not SharingRule.select().exists()


# -- explain ----------------------------------------------------------------------------------------

def test_explain_shows_the_level_and_every_reason_in_words(app, browser, rep, admin):
    boss = make_user("boss@example.com", "Big Boss")
    services.set_roles(boss, ["sales_manager"])
    services.place_user(User.get_by_id(rep.id), None, boss.id)
    services.set_default("fx_account", "read")
    services.create_sharing_rule("fx_account", "Everything of Rita", "user", boss.id, Level.EDIT, "user", rep.id)
    account = create_record(FxAccount, name="Acme", owner_id=rep.id)
    response = browser.get(f"/org/explain?user_id={boss.id}&object=fx_account&record_id={account.id}")
    assert response.status_code == 200
    page = text(response)
    assert "Full access, including sharing" in page
    assert "They are above the owner, Rita Rep, in the organisation." in page
    assert "The organisation-wide default for this kind of record." in page
    assert "The sharing rule “Everything of Rita”." in page
    owner = text(browser.get(f"/org/explain?user_id={rep.id}&object=fx_account&record_id={account.id}"))
    assert "They own the record." in owner
    admin_page = text(browser.get(f"/org/explain?user_id={admin.id}&object=fx_account&record_id={account.id}"))
    assert "They are an administrator." in admin_page
    stranger = make_user("nobody@example.com", "Nobody")
    none = text(browser.get(f"/org/explain?user_id={stranger.id}&object=fx_account&record_id={account.id}"))
    assert "None of their roles may read this kind of record." in none and "No access" in none


def test_explain_in_another_language(app, browser, rep):
    account = create_record(FxAccount, name="Acme", owner_id=rep.id)
    page = text(browser.get(f"/org/explain?user_id={rep.id}&object=fx_account&record_id={account.id}&lang=pl"))
    assert '<html lang="pl">' in page and "They own the record." not in page
    browser.get("/?lang=en")


def test_explain_refuses_bad_input_and_keeps_it(app, browser, rep):
    response = browser.get(f"/org/explain?user_id={rep.id}&object=fx_account&record_id=424242")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "There is no record with this number." in text(response) and 'value="424242"' in page
    assert re.search(rf'<option value="{rep.id}" selected>', page)
    bad = browser.get("/org/explain?user_id=abc&object=nothing&record_id=x")
    assert bad.status_code == 422
    for message in ("No such user.", "No such kind of record.", "Enter a whole number."):
        assert message in text(bad)


def test_explain_knows_deleted_and_parent_reasons(app, browser, rep):
    other = make_user("other@example.com", "Other")
    services.set_roles(other, ["sales_rep"])
    account = create_record(FxAccount, name="Parent Co", owner_id=rep.id)
    create_record(FxContact, name="Child", owner_id=other.id, account_id=account.id)
    page = text(browser.get(f"/org/explain?user_id={other.id}&object=fx_account&record_id={account.id}"))
    assert "They can read a related record: Contact." in page
    move_to_bin(FxAccount.get_by_id(account.id), actor_id=rep.id)
    page = text(browser.get(f"/org/explain?user_id={rep.id}&object=fx_account&record_id={account.id}"))
    assert "The record is in the recycle bin." in page


# -- recycle bin and security log ------------------------------------------------------------------------

def test_the_recycle_bin_and_restore(app, browser, rep):
    account = create_record(FxAccount, name="Deleted Co", owner_id=rep.id)
    contact = create_record(FxContact, name="Its contact", owner_id=rep.id, account_id=account.id)
    group = move_to_bin(account, children=[contact], actor_id=rep.id)
    html, token = form_of(browser, "/org/recycle-bin")
    assert "Deleted Co" in html and "Rita Rep" in html
    restored = browser.post(f"/org/recycle-bin/{group.id}/restore", data={"csrf_token": token})
    assert restored.status_code == 302
    assert FxAccount.get_by_id(account.id).deleted_at is None
    assert FxContact.get_by_id(contact.id).deleted_at is None
    assert "has been restored" in text(browser.get("/org/recycle-bin"))
    again = browser.post(f"/org/recycle-bin/{group.id}/restore", data={"csrf_token": token})
    assert again.status_code == 302
    assert "no longer in the recycle bin" in text(browser.get("/org/recycle-bin"))
    assert browser.post(f"/org/recycle-bin/{group.id}/restore").status_code == 400  # no CSRF token


def test_the_security_log_filters_by_kind(app, browser, rep):
    services.set_roles(User.get_by_id(rep.id), ["sales_manager"], actor_id=None)
    page = text(browser.get("/org/security-log"))
    assert "Signed in" in page and "Roles changed" in page
    only = text(browser.get("/org/security-log?kind=roles_changed"))
    table = only[only.index("<table>"):]
    assert "Roles changed" in table and "Signed in" not in table
    assert re.search(r'<option value="roles_changed" selected>', only)
    for number in range(210):
        SecurityEvent.create(kind="denied", subject=f"GET /x/{number}")
    rows = browser.get("/org/security-log").get_data(as_text=True).count("<tr>") - 1
    assert rows == 200


# -- a real browser: a phone's width, and the keyboard alone ---------------------------------------

@pytest.fixture(scope="module")
def org_server(crm_database_url, tmp_path_factory):
    """``crm run`` with the fx plugin, an administrator and a little organisation."""
    import subprocess
    import sys

    from crm_core.testing import (CrmServer, create_postgres_database, drop_postgres_database,
                                  is_postgres, subprocess_env)

    folder = tmp_path_factory.mktemp("org-browser")
    url = (create_postgres_database(crm_database_url, "crm_org_browser") if is_postgres(crm_database_url)
           else "sqlite:///" + str(folder / "crm.sqlite3"))
    env = subprocess_env(CRM_ENV="test", CRM_DATABASE_URL=url, CRM_INSTANCE_PATH=folder / "instance",
                         CRM_SECRET_KEY="org-browser-tests-secret-key-0123456789", CRM_PLUGINS="fx")
    subprocess.run([sys.executable, "-m", "crm_core", "init", "--admin-email", "phone.admin@example.com",
                    "--admin-name", "Nguyễn Thị Phương Thảo Administrator With A Long Name",
                    "--admin-password-stdin"], env=env, input="a phone test pass phrase\n", text=True,
                   check=True, capture_output=True, timeout=120)
    with CrmServer(env, capture=False) as running:
        yield running.base
    if is_postgres(url):
        drop_postgres_database(url)


@pytest.fixture(scope="module")
def chromium():
    import os

    from playwright.sync_api import sync_playwright

    assert os.path.exists("/usr/bin/chromium"), "install Debian's chromium (see README)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                              args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


def _sign_in(tab, base):
    tab.goto(base + "/login")
    tab.locator("#f-email").fill("phone.admin@example.com")
    tab.locator("#f-password").fill("a phone test pass phrase")
    tab.locator("form button[type=submit].primary").click()
    tab.wait_for_url(base + "/")


def _tab_to(tab, element_id, limit=80):
    for _ in range(limit):
        tab.keyboard.press("Tab")
        if tab.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"Tab never reached #{element_id}")


@pytest.mark.slow
def test_the_organisation_is_usable_by_keyboard_alone(chromium, org_server):
    context = chromium.new_context()
    try:
        tab = context.new_page()
        tab.set_default_timeout(15000)
        _sign_in(tab, org_server)
        tab.goto(org_server + "/org/departments")
        _tab_to(tab, "f-name")
        tab.keyboard.type("Phòng kinh doanh miền Bắc")
        with tab.expect_navigation():
            tab.keyboard.press("Enter")
        assert tab.locator("ul.tree a", has_text="Phòng kinh doanh miền Bắc").count() == 1
        # a team, ticking a member with the space bar
        tab.goto(org_server + "/org/teams")
        _tab_to(tab, "f-name")
        tab.keyboard.type("Đội khách hàng lớn")
        tab.keyboard.press("Tab")
        tab.keyboard.press("Space")
        with tab.expect_navigation():
            tab.keyboard.press("Enter")
        assert tab.locator("h1").inner_text() == "Đội khách hàng lớn"
        assert tab.locator("input[name=members]:checked").count() == 1
        # the explain form, by keyboard: choose the person and the kind, type a number
        tab.goto(org_server + "/org/explain")
        _tab_to(tab, "f-user_id")
        tab.keyboard.press("ArrowDown")
        tab.keyboard.press("Tab")
        tab.keyboard.press("ArrowDown")
        tab.keyboard.press("Tab")
        tab.keyboard.type("1")
        with tab.expect_navigation():
            tab.keyboard.press("Enter")
        assert "record_id=1" in tab.url
    finally:
        context.close()


@pytest.mark.slow
def test_the_organisation_pages_fit_a_phone(chromium, org_server):
    context = chromium.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    try:
        tab = context.new_page()
        tab.set_default_timeout(15000)
        _sign_in(tab, org_server)
        tab.goto(org_server + "/org/departments")
        if not tab.locator("ul.tree a").count():
            tab.locator("#f-name").fill("Một phòng ban có cái tên rất dài để thử màn hình điện thoại")
            tab.locator("main form button[type=submit].primary").click()
            tab.wait_for_load_state()
        paths = PAGES + ["/org/explain?user_id=1&object=fx_account&record_id=1"]
        for listing, link in (("/org/departments", "ul.tree a"), ("/org/people", "table a"),
                              ("/org/roles", "table a")):
            tab.goto(org_server + listing)
            paths.append(tab.locator(link).first.get_attribute("href"))
        for path in paths:
            tab.goto(org_server + path)
            width = tab.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, (path, width)
    finally:
        context.close()
