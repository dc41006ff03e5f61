"""Demo territories for ``crm demo``: the model "Sales regions 2026" with World -> Asia ->
Vietnam (North / South by province), Greater China, Europe -> Poland, Russia; the demo
people as members and managers; the demo accounts and leads placed by the criteria.

Idempotent: the model is made once (found again by its name); placing again by the same
rules moves nothing.
"""

from __future__ import annotations

from crm_core.users.services import find_by_email
from crm_territory import placement, services

MODEL_NAME = "Sales regions 2026"

NORTH_VIETNAM = [
    "Hà Nội", "Hải Phòng", "Quảng Ninh", "Bắc Ninh", "Hải Dương", "Hưng Yên", "Thái Bình", "Nam Định",
    "Ninh Bình", "Hà Nam", "Vĩnh Phúc", "Phú Thọ", "Thái Nguyên", "Bắc Giang", "Lạng Sơn", "Cao Bằng",
    "Hà Giang", "Tuyên Quang", "Lào Cai", "Yên Bái", "Điện Biên", "Lai Châu", "Sơn La", "Hòa Bình",
    "Bắc Kạn", "Thanh Hóa", "Nghệ An", "Hà Tĩnh", "Quảng Bình", "Quảng Trị", "Thừa Thiên Huế",
]
SOUTH_VIETNAM = [
    "Đà Nẵng", "Quảng Nam", "Quảng Ngãi", "Bình Định", "Phú Yên", "Khánh Hòa", "Ninh Thuận", "Bình Thuận",
    "Kon Tum", "Gia Lai", "Đắk Lắk", "Đắk Nông", "Lâm Đồng", "Thành phố Hồ Chí Minh", "Hồ Chí Minh",
    "Bình Dương", "Đồng Nai", "Bà Rịa - Vũng Tàu", "Tây Ninh", "Bình Phước", "Long An", "Tiền Giang",
    "Bến Tre", "Trà Vinh", "Vĩnh Long", "Đồng Tháp", "An Giang", "Kiên Giang", "Cần Thơ", "Hậu Giang",
    "Sóc Trăng", "Bạc Liêu", "Cà Mau",
]

# (name, criteria, access level, manager e-mail, member e-mails, children)
TREE = [
    ("World", {}, "read", "emma.clarke@example.com", [], [
        ("Asia", {"country": ["VN", "CN", "TW", "HK", "MO"]}, "edit", None, [], [
            ("Vietnam", {"country": ["VN"]}, "edit", "nguyen.van.an@example.com", [], [
                ("North Vietnam", {"region": NORTH_VIETNAM}, "edit", None, ["tran.thi.binh@example.com"], []),
                ("South Vietnam", {"region": SOUTH_VIETNAM}, "edit", None, ["nguyen.van.an@example.com"], []),
            ]),
            ("Greater China", {"country": ["CN", "TW", "HK", "MO"]}, "edit", "wang.fang@example.com",
             ["li.wei@example.com", "chen.mei.ling@example.com", "lin.chih.hao@example.com"], []),
        ]),
        ("Europe", {"country": ["PL", "RU"]}, "edit", None, [], [
            ("Poland", {"country": ["PL"]}, "edit", "anna.kowalska@example.com",
             ["piotr.wisniewski@example.com"], []),
            ("Russia", {"country": ["RU"]}, "read", "ivan.petrov@example.com", ["olga.smirnova@example.com"], []),
        ]),
    ]),
]


def _user_id(email):
    user = find_by_email(email) if email else None
    return user.id if user is not None else None


def _build(model, nodes, parent_id, actor_id):
    for position, (name, criteria, level, manager, members, children) in enumerate(nodes):
        territory = services.create_territory(model.id, name, parent_id=parent_id, criteria=criteria,
                                              access_level=level, manager_id=_user_id(manager),
                                              position=position, actor_id=actor_id)
        for email in members:
            user_id = _user_id(email)
            if user_id is not None:
                services.add_member(territory, user_id, actor_id=actor_id)
        _build(model, children, territory.id, actor_id)


def _vietnamese_regions(actor_id):
    """The core's demo accounts in Vietnam give their province-level city but no region: the
    province is the region there, and the North/South split reads it."""
    from crm_core.accounts.models import Account
    from crm_core.accounts.services import update_account

    provinces = {name.casefold() for name in NORTH_VIETNAM + SOUTH_VIETNAM}
    for account in Account.alive().where((Account.country == "VN") & (Account.region.is_null()
                                                                     | (Account.region == ""))):
        if account.city and account.city.strip().casefold() in provinces:
            update_account(account, {"region": account.city.strip()}, actor_id=actor_id)


def place(model):
    """Place every live account and lead in ``model`` by its rules (placements made by hand
    stay); returns how many records moved."""
    from crm_territory.models import PLACED_OBJECTS

    moved = 0
    for object_name in PLACED_OBJECTS:
        record_model = placement.object_model(object_name)
        ids = [i for (i,) in record_model.alive(record_model.id).order_by(record_model.id).tuples()]
        # One placer for every chunk: the tree is read and compiled once per object.
        placers = [placement.Placer(model.id, object_name)]
        for start in range(0, len(ids), placement.CHUNK):
            for moves in placement.place_records(object_name, ids[start:start + placement.CHUNK],
                                                 placers=placers):
                moved += moves.moved
    return moved


def load(seed=None):
    """Make the demo model (once), activate it when no model is active, and place the demo
    records. ``seed`` is not needed: nothing here is random."""
    actor_id = _user_id("emma.clarke@example.com")
    model = next((m for m in services.list_models() if m.name == MODEL_NAME), None)
    if model is None:
        model = services.create_model(MODEL_NAME, "North and South Vietnam, Greater China, Poland and Russia.",
                                      actor_id=actor_id)
        _build(model, TREE, None, actor_id)
    _vietnamese_regions(actor_id)
    place(model)
    if model.state == "planning" and services.active_model() is None:
        services.activate_model(model, actor_id=actor_id)
    return model
