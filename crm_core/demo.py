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


def load_demo(password, scale=0, seed=2026, opportunities=0):
    """Create the demo people (idempotent), ``scale`` generated users and ``opportunities``
    generated opportunities (for benchmarks); return counts."""
    created = 0
    for email, name, locale, timezone in DEMO_PEOPLE:
        if find_by_email(email) is None:
            create_user(email, name, password, locale=locale, timezone=timezone)
            created += 1
    departments = _demo_organisation()
    accounts = _demo_accounts()
    leads = _demo_leads()
    from crm_core.customfields import demo as custom_demo

    custom_demo.load(find_by_email(DEMO_PEOPLE[0][0]).id)
    web_forms = _demo_web_forms()
    _demo_assignment()
    from crm_core.opportunities import demo as opportunities_demo

    demo_opportunities = opportunities_demo.load()
    from crm_core.approvals import demo as approvals_demo

    approvals_demo.load()  # after the demo opportunities: one of them waits for approval
    from crm_core.stagegates import demo as stage_gates_demo  # after the demo opportunities

    stage_gates_demo.load(find_by_email(DEMO_PEOPLE[0][0]).id)
    from crm_core.funnel import demo as funnel_demo

    funnel_demo.load(find_by_email(DEMO_PEOPLE[0][0]).id)
    generated = _generate_users(password, scale, seed) if scale else 0
    from crm_core.analysis import demo as analysis_demo

    analysis_demo.load()  # after the demo opportunities: their history, a week-old snapshot
    from crm_core.duplicates.scan import scan

    scan()  # the duplicate groups of the demo data, ready for review
    # After the scan: benchmark accounts by the hundred thousand are no review material.
    from crm_core.opportunities import scale as opportunity_scale

    at_scale = opportunity_scale.load(opportunities, seed) if opportunities else {"opportunities": 0}
    _plugins_demo(seed)
    return {"people": created, "departments": departments, "accounts": accounts, "leads": leads,
            "web_forms": web_forms, "opportunities": demo_opportunities, "generated": generated,
            "generated_opportunities": at_scale["opportunities"]}


def _plugins_demo(seed):
    """``crm_demo_data``: each plugin adds its demo data on top of the core's, in plugin order
    (a plugin after those it requires); an exception stops ``crm demo``."""
    from flask import current_app

    current_app.extensions["crm"].call_in_order("crm_demo_data", app=current_app._get_current_object(),
                                                seed=seed)


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


# The organisation: a sales department per market under one head office; the first
# person of each market heads it (a sales manager), the second is a rep.
DEMO_DEPARTMENTS = [
    ("Phòng kinh doanh Việt Nam", "nguyen.van.an@example.com", "tran.thi.binh@example.com"),
    ("Dział sprzedaży Polska", "anna.kowalska@example.com", "piotr.wisniewski@example.com"),
    ("销售部（中国大陆）", "wang.fang@example.com", "li.wei@example.com"),
    ("業務部（台灣）", "chen.mei.ling@example.com", "lin.chih.hao@example.com"),
    ("Отдел продаж Россия", "ivan.petrov@example.com", "olga.smirnova@example.com"),
]
HEAD_OFFICE = ("Sales head office", "emma.clarke@example.com")

# Customers of each market, owned by its rep: (owner, name, kind, industry, country, city,
# [(first name, last name, title, reports to the first contact?)]).
DEMO_ACCOUNTS = [
    ("tran.thi.binh@example.com", "Công ty TNHH Thương mại Minh An", "customer", "Retail", "VN", "Hà Nội",
     [("Thảo", "Nguyễn Thị", "Giám đốc", False), ("Hùng", "Lê Văn", "Trưởng phòng mua hàng", True)]),
    ("tran.thi.binh@example.com", "Công ty CP Xây dựng Sông Hồng", "prospect", "Construction", "VN",
     "Hải Phòng", [("Dũng", "Phạm Minh", "Phó giám đốc", False)]),
    ("nguyen.van.an@example.com", "Tập đoàn Phương Nam", "customer", "Manufacturing", "VN",
     "Thành phố Hồ Chí Minh", [("Lan", "Võ Thị", "Kế toán trưởng", False)]),
    ("piotr.wisniewski@example.com", "Hurtownia Budowlana Kowalczyk Sp. z o.o.", "customer", "Wholesale",
     "PL", "Kraków", [("Marek", "Kowalczyk", "Prezes zarządu", False),
                      ("Ewa", "Nowak", "Kierownik zakupów", True)]),
    ("anna.kowalska@example.com", "Mleczarnia Mazowsze S.A.", "prospect", "Food", "PL", "Warszawa",
     [("Tomasz", "Zieliński", "Dyrektor handlowy", False)]),
    ("li.wei@example.com", "上海华东机电有限公司", "customer", "Manufacturing", "CN", "上海",
     [("建国", "张", "总经理", False), ("丽", "刘", "采购经理", True)]),
    ("wang.fang@example.com", "深圳前海科技有限公司", "prospect", "Technology", "CN", "深圳",
     [("强", "陈", "技术总监", False)]),
    ("lin.chih.hao@example.com", "台灣精密工業股份有限公司", "customer", "Manufacturing", "TW", "新竹",
     [("志明", "黃", "總經理", False), ("淑芬", "吳", "採購專員", True)]),
    ("olga.smirnova@example.com", "ООО «Сибирские технологии»", "customer", "Technology", "RU",
     "Новосибирск", [("Алексей", "Кузнецов", "Генеральный директор", False),
                     ("Мария", "Соколова", "Менеджер по закупкам", True)]),
    ("ivan.petrov@example.com", "АО «Волжский завод»", "reseller", "Manufacturing", "RU", "Самара",
     [("Дмитрий", "Попов", "Коммерческий директор", False)]),
    ("emma.clarke@example.com", "Northwind Trading Ltd", "vendor", "Wholesale", "GB", "London",
     [("James", "Taylor", "Account director", False)]),
]


def _demo_organisation():
    """Departments, heads and roles of the demo people (skipped when already there)."""
    from crm_core.org.models import Department
    from crm_core.org.services import create_department, place_user, set_roles

    if Department.alive().where(Department.name == HEAD_OFFICE[0]).exists():
        return 0
    top_head = find_by_email(HEAD_OFFICE[1])
    top = create_department(HEAD_OFFICE[0], head=top_head.id)
    place_user(top_head, top.id)
    set_roles(top_head, ["sales_manager"])
    for name, head_email, rep_email in DEMO_DEPARTMENTS:
        head, rep = find_by_email(head_email), find_by_email(rep_email)
        department = create_department(name, parent=top.id, head=head.id)
        for person, role in ((head, "sales_manager"), (rep, "sales_rep")):
            place_user(person, department.id)
            set_roles(person, [role])
    return len(DEMO_DEPARTMENTS) + 1


def _demo_accounts():
    """The demo customers and their people (skipped when already there)."""
    from crm_core.accounts.models import Account
    from crm_core.accounts.services import create_account, create_contact

    created = 0
    for owner_email, name, kind, industry, country, city, people in DEMO_ACCOUNTS:
        if Account.alive().where(Account.name == name).exists():
            continue
        owner = find_by_email(owner_email)
        account = create_account({"name": name, "kind": kind, "industry": industry,
                                  "country": country, "city": city, "owner_id": owner.id},
                                 actor_id=owner.id)
        first = None
        for given, family, title, reports in people:
            contact = create_contact({"account_id": account.id, "first_name": given,
                                      "last_name": family, "title": title, "owner_id": owner.id,
                                      "reports_to_id": first.id if reports and first else None},
                                     actor_id=owner.id)
            first = first or contact
        created += 1
    return created


# Campaigns of the demo company and the leads they brought: (owner, campaign name, channel,
# currency, cost, [(company, first name, last name, email, source, status, country)]).
DEMO_CAMPAIGNS = [
    ("nguyen.van.an@example.com", "Triển lãm Vietbuild 2026", "Trade fair", "VND", "120000000", [
        ("Công ty CP Nội thất Hòa Phát", "Quang", "Đỗ Minh", "quang.do@hoaphat.example.vn", "event", "new", "VN"),
        ("Công ty TNHH Kỹ thuật Bình Minh", "Hà", "Bùi Thu", "ha.bui@binhminh.example.vn", "event", "qualified", "VN"),
    ]),
    ("anna.kowalska@example.com", "Newsletter wiosna 2026", "Newsletter", "PLN", "4500", [
        ("Piekarnia Złoty Kłos", "Katarzyna", "Wójcik", "k.wojcik@zlotyklos.example.pl", "email", "contacted", "PL"),
    ]),
    ("wang.fang@example.com", "华南工业展 2026", "Trade fair", "CNY", "85000", [
        ("广州越秀贸易有限公司", "伟", "黄", "huang.wei@yuexiu.example.cn", "event", "new", "CN"),
    ]),
    ("olga.smirnova@example.com", "Вебинар «Цифровые продажи»", "Webinar", "RUB", "150000", [
        ("ООО «Уральские машины»", "Сергей", "Морозов", "morozov@uralmash.example.ru", "web", "qualified", "RU"),
    ]),
]


def _demo_leads():
    """The demo campaigns and their leads (skipped when already there)."""
    from crm_core.leads.models import Campaign
    from crm_core.leads.services import create_campaign, create_lead

    created = 0
    for owner_email, name, channel, currency, cost, leads in DEMO_CAMPAIGNS:
        if Campaign.alive().where(Campaign.name == name).exists():
            continue
        owner = find_by_email(owner_email)
        campaign = create_campaign({"name": name, "channel": channel, "status": "active",
                                    "currency": currency, "cost": cost, "owner_id": owner.id},
                                   actor_id=owner.id)
        for company, given, family, email, source, status, country in leads:
            create_lead({"company": company, "first_name": given, "last_name": family, "email": email,
                         "source": source, "status": status, "country": country,
                         "campaign_id": campaign.id, "owner_id": owner.id}, actor_id=owner.id)
            created += 1
    return created


def _demo_web_forms():
    """The contact form of the demo company's site, for the webinar campaign (skipped when
    already there); its snippet is on the web form's page."""
    from crm_core.leads.models import Campaign
    from crm_core.webforms.models import WebForm
    from crm_core.webforms.services import create_form

    name = "Website contact form"
    if WebForm.alive().where(WebForm.name == name).exists():
        return 0
    owner = find_by_email(HEAD_OFFICE[1])
    campaign = Campaign.alive().where(Campaign.name == DEMO_CAMPAIGNS[3][1]).first()
    create_form({"name": name, "owner_id": owner.id, "target_owner_id": find_by_email(DEMO_CAMPAIGNS[3][0]).id,
                 "campaign_id": campaign.id if campaign else None, "source": "web",
                 "thank_you_url": "https://www.example.com/thank-you",
                 "allowed_origins": ["https://www.example.com"],
                 "fields": [{"name": "first_name", "label": "First name", "required": False},
                            {"name": "last_name", "label": "Last name", "required": True},
                            {"name": "company", "label": "Company", "required": False},
                            {"name": "email", "label": "Email", "required": True},
                            {"name": "phone", "label": "Phone", "required": False},
                            {"name": "description", "label": "How can we help?", "required": False}]},
                actor_id=owner.id)
    return 1
def _demo_assignment():
    """A few assignment rules: Vietnam to a round-robin pair with a capacity, Poland and the
    web form's leads to a person (skipped when rules exist already)."""
    from crm_core.assignment import services as assignment
    from crm_core.assignment.models import AssignmentGroup, AssignmentRule

    if AssignmentRule.select().where(AssignmentRule.object == "lead").exists():
        return
    people = {email: find_by_email(email).id for email, *_ in DEMO_PEOPLE}
    group = AssignmentGroup.get_or_none(AssignmentGroup.name == "Việt Nam")
    if group is None:
        group = assignment.create_group("Việt Nam", [{"user_id": people["nguyen.van.an@example.com"]},
                                                      {"user_id": people["tran.thi.binh@example.com"]}],
                                        capacity=50)
    assignment.create_rule("lead", {"name": "Việt Nam", "group_id": group.id, "conditions": [
        {"field": "country", "op": "equals", "value": "VN"}]})
    assignment.create_rule("lead", {"name": "Polska", "owner_id": people["anna.kowalska@example.com"],
                                    "conditions": [{"field": "country", "op": "equals", "value": "PL"}]})
    assignment.create_rule("lead", {"name": "Taiwan web", "owner_id": people["chen.mei.ling@example.com"],
                                    "conditions": [{"field": "country", "op": "equals", "value": "TW"},
                                                   {"field": "source", "op": "in", "value": ["web", "email"]}]})
