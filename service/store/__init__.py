"""Feedback, audit trail, snoozes and JWT replay protection in SQLite or PostgreSQL."""

from service.store.policy import OVERRIDE_REASON_SYSTEM, AuditPolicy
from service.store.records import DecisionRecord, InvocationRecord
from service.store.store import DecisionActivity, FeedbackActivity, Store

__all__ = [
    "OVERRIDE_REASON_SYSTEM",
    "AuditPolicy",
    "DecisionActivity",
    "DecisionRecord",
    "FeedbackActivity",
    "InvocationRecord",
    "Store",
]
