"""The test helpers themselves (crm_core.testing): what other tests rely on."""

from argon2 import PasswordHasher

from crm_core.accounts import services as accounts
from crm_core.testing import _children_first, make_sales_team, make_user, reset_database
from crm_core.users import passwords
from crm_core.users.models import User


def test_reset_empties_every_table_and_restarts_the_ids(app, db):
    people = make_sales_team()
    account = accounts.create_account({"name": "Minh An"}, actor_id=people["rita"].id)
    accounts.create_contact({"account_id": account.id, "last_name": "Nguyễn"}, actor_id=people["rita"].id)
    reset_database(db)
    tables = [t for t in db.get_tables() if not t.endswith("_migrations")]
    filled = {t: n for t in tables if (n := db.execute_sql(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0])
              and t != "role"}
    assert not filled
    assert db.execute_sql('SELECT COUNT(*) FROM "role"').fetchone()[0] > 0  # the built-in roles again
    assert make_user().id == 1
    assert accounts.create_account({"name": "Again"}, actor_id=1).id == 1


def test_tables_are_emptied_children_first():
    references = [("contact", "account", ["account_id"], False), ("account", "user", ["owner_id"], False),
                  ("department", "user", ["head_id"], True), ("user", "department", ["department_id"], True)]
    assert _children_first(["account", "contact", "user"], references) == ["contact", "account", "user"]
    assert _children_first(["user", "department"], references) is None  # a cycle
    assert _children_first(["user", "department"], [r for r in references if not r[3]]) is not None


def test_passwords_are_hashed_cheaply_in_tests_and_either_kind_verifies(app):
    assert passwords._hasher.memory_cost < 1024 and passwords._hasher.time_cost == 1
    user = make_user("anna@example.com", password="a long pass phrase 42")
    assert passwords.verify_password(user.password_hash, "a long pass phrase 42")
    # A hash made with the production parameters (by a `crm` child process) verifies here.
    production = PasswordHasher().hash("another pass phrase 77")
    User.update(password_hash=production).where(User.id == user.id).execute()
    assert passwords.verify_password(User.get_by_id(user.id).password_hash, "another pass phrase 77")
    assert not passwords.verify_password(production, "wrong")
