"""Demo change approval: the company's policy switched on with its default thresholds, and
one pending request: Trần Thị Bình raised a deal's amount beyond 20 % and it waits for her
manager, Nguyễn Văn An."""

from __future__ import annotations

from decimal import Decimal

REP = "tran.thi.binh@example.com"
ACCOUNT = "Công ty TNHH Thương mại Minh An"
DEAL = "Kệ kho hàng Minh An — giai đoạn 2"


def load():
    """Create what is missing (idempotent: nothing when the policy exists already)."""
    from crm_core.accounts.models import Account
    from crm_core.approvals import services
    from crm_core.approvals.models import ApprovalPolicy
    from crm_core.opportunities import services as opportunities
    from crm_core.opportunities.models import Opportunity
    from crm_core.users.services import find_by_email

    if ApprovalPolicy.select().where(ApprovalPolicy.kind == "opportunity_change").exists():
        return 0
    services.set_policy("opportunity_change", {"active": True})
    rep = find_by_email(REP)
    account = Account.alive().where(Account.name == ACCOUNT).first()
    if rep is None or account is None:
        return 0
    deal = (Opportunity.alive().where((Opportunity.owner_id == rep.id) & (Opportunity.status == "open")
                                      & Opportunity.amount.is_null(False))
            .order_by(Opportunity.id).first())
    if deal is None:
        deal = opportunities.create_opportunity(
            {"name": DEAL, "account_id": account.id, "currency": "VND", "amount": Decimal("450000000"),
             "next_step": "Gửi báo giá sửa đổi"}, actor_id=rep.id)
    raised = (deal.amount * Decimal("1.35")).quantize(Decimal("1"))
    opportunities.update_opportunity(deal, {"amount": raised}, actor_id=rep.id)
    return len(services.pending_of("opportunity", deal.id))
