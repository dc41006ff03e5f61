"""Demo custom fields (a contact's interests, a lead's budget), values on the demo
contacts, and a segment shared with everyone: "contacts whose interests include tennis"."""

from __future__ import annotations

INTERESTS = [("tennis", {"en": "Tennis", "vi": "Quần vợt", "pl": "Tenis", "zh": "网球", "zh_TW": "網球",
                         "ru": "Теннис"}),
             ("golf", {"en": "Golf", "vi": "Gôn", "pl": "Golf", "zh": "高尔夫", "zh_TW": "高爾夫", "ru": "Гольф"}),
             ("sailing", {"en": "Sailing", "vi": "Đi thuyền buồm", "pl": "Żeglarstwo", "zh": "帆船",
                          "zh_TW": "帆船", "ru": "Парусный спорт"}),
             ("wine", {"en": "Wine", "vi": "Rượu vang", "pl": "Wino", "zh": "葡萄酒", "zh_TW": "葡萄酒",
                       "ru": "Вино"})]


def load(owner_id):
    """Create what is missing (idempotent); returns how many contacts got interests."""
    from crm_core.accounts.models import Contact
    from crm_core.customfields import services
    from crm_core.customfields.models import CustomField
    from crm_core.records import update_record
    from crm_core.segments.models import Segment
    from crm_core.segments.services import create_segment

    if not CustomField.select().where((CustomField.object == "contact") & (CustomField.key == "interests")).exists():
        services.create_field({"object": "contact", "key": "interests", "type": "multi_choice",
                               "labels": {"en": "Interests", "vi": "Sở thích", "pl": "Zainteresowania",
                                          "zh": "兴趣", "zh_TW": "興趣", "ru": "Интересы"},
                               "choices": [{"value": v, "labels": labels} for v, labels in INTERESTS]},
                              actor_id=owner_id)
    if not CustomField.select().where((CustomField.object == "lead") & (CustomField.key == "budget")).exists():
        services.create_field({"object": "lead", "key": "budget", "type": "money", "currency": "USD",
                               "labels": {"en": "Budget", "vi": "Ngân sách", "pl": "Budżet", "zh": "预算",
                                          "zh_TW": "預算", "ru": "Бюджет"}}, actor_id=owner_id)
    given = 0
    for index, contact in enumerate(Contact.alive().order_by(Contact.id)):
        if contact.custom.get("interests"):
            continue
        chosen = sorted({INTERESTS[index % 4][0], INTERESTS[(index * 7) % 4][0]})
        update_record(contact, {"custom": {**contact.custom, "interests": chosen}}, actor_id=owner_id)
        given += 1
    if not Segment.alive().where(Segment.name == "Tennis").exists():
        create_segment({"name": "Tennis", "object": "contact", "visibility": "everyone",
                        "conditions": {"field": "custom.interests", "op": "includes", "value": "tennis"}},
                       owner_id)
    return given
