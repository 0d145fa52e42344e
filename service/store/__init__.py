"""Feedback, audit trail, snoozes and JWT replay protection in SQLite or PostgreSQL, with a local
journal that keeps audit and feedback while the database is away."""

from service.store.bounded import DatabaseUnavailable
from service.store.feedback import FeedbackReceipt
from service.store.journal import JournalUnavailable
from service.store.policy import OVERRIDE_REASON_SYSTEM, AuditPolicy
from service.store.queries import DecisionActivity, FeedbackActivity
from service.store.records import DecisionRecord, InvocationRecord
from service.store.store import Faults, Health, Store

__all__ = [
    "OVERRIDE_REASON_SYSTEM",
    "AuditPolicy",
    "DatabaseUnavailable",
    "DecisionActivity",
    "DecisionRecord",
    "Faults",
    "FeedbackActivity",
    "FeedbackReceipt",
    "Health",
    "InvocationRecord",
    "JournalUnavailable",
    "Store",
]
