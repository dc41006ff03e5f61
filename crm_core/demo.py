"""`crm demo`: a demo company. Grows with every business object the core gains."""

from __future__ import annotations

import random

from crm_core.db import database, utcnow
from crm_core.users.models import User
from crm_core.users.passwords import hash_password
from crm_core.users.services import create_user, find_by_email

# The sales team of the demo company: people in each of our languages, with their
# own language and time zone, as they would sign in.
DEMO_PEOPLE = [
    ("nguyen.van.an@example.com", "Nguyễn Văn An", "vi", "Asia/Ho_Chi_Minh"),
    ("tran.thi.binh@example.com", "Trần Thị Bình", "vi", "Asia/Ho_Chi_Minh"),
    ("anna.kowalska@example.com", "Anna Kowalska", "pl", "Europe/Warsaw"),
    ("piotr.wisniewski@example.com", "Piotr Wiśniewski", "pl", "Europe/Warsaw"),
    ("wang.fang@example.com", "王芳", "zh", "Asia/Shanghai"),
    ("li.wei@example.com", "李伟", "zh", "Asia/Shanghai"),
    ("chen.mei.ling@example.com", "陳美玲", "zh_TW", "Asia/Taipei"),
    ("lin.chih.hao@example.com", "林志豪", "zh_TW", "Asia/Taipei"),
    ("ivan.petrov@example.com", "Иван Петров", "ru", "Europe/Moscow"),
    ("olga.smirnova@example.com", "Ольга Смирнова", "ru", "Europe/Moscow"),
    ("emma.clarke@example.com", "Emma Clarke", "en", "Europe/London"),
]

_GIVEN = ["An", "Bình", "Anna", "Piotr", "芳", "伟", "美玲", "志豪", "Иван", "Ольга", "Emma", "James"]
_FAMILY = ["Nguyễn", "Trần", "Kowalska", "Wiśniewski", "王", "李", "陳", "林", "Петров", "Смирнова",
           "Clarke", "Taylor"]
_LOCALES = [("vi", "Asia/Ho_Chi_Minh"), ("pl", "Europe/Warsaw"), ("zh", "Asia/Shanghai"),
            ("zh_TW", "Asia/Taipei"), ("ru", "Europe/Moscow"), ("en", "Europe/London")]


def load_demo(password, scale=0, seed=2026):
    """Create the demo people (idempotent) and ``scale`` generated users; return counts."""
    created = 0
    for email, name, locale, timezone in DEMO_PEOPLE:
        if find_by_email(email) is None:
            create_user(email, name, password, locale=locale, timezone=timezone)
            created += 1
    generated = _generate_users(password, scale, seed) if scale else 0
    return {"people": created, "generated": generated}


def _generate_users(password, count, seed):
    """Bulk insert ``count`` users (one password hash shared: hashing is deliberately slow)."""
    rng = random.Random(seed)
    start = User.select().where(User.email.startswith("rep")).count()
    shared_hash = hash_password(password)
    now = utcnow()
    rows = []
    for number in range(start, start + count):
        locale, timezone = _LOCALES[number % len(_LOCALES)]
        rows.append({
            "email": f"rep{number:07d}@demo.example.com",
            "name": f"{rng.choice(_FAMILY)} {rng.choice(_GIVEN)}",
            "password_hash": shared_hash, "locale": locale, "timezone": timezone,
            "active": True, "is_admin": False, "version": 1,
            "created_at": now, "updated_at": now,
        })
    with database.atomic():
        for offset in range(0, len(rows), 500):
            User.insert_many(rows[offset:offset + 500]).execute()
    return len(rows)
