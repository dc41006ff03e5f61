"""Approvals: a change (or a document) waits for the people above its owner in the
organisation tree; quotes, plans and contracts plug in as kinds of approval."""

from crm_core.approvals.registry import ApprovalKind

__all__ = ["ApprovalKind"]
