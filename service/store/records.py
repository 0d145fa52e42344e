"""What the web layer hands the store after an invocation: plain, typed, free of Flask and FHIR."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

MODES = ("active", "shadow")


@dataclass(frozen=True)
class DecisionRecord:
    """One rule that fired: a returned card (``active``) or a card withheld (``shadow``).

    ``sources`` are the rule's citations and ``evidence`` the FHIR references that matched; together
    they are the source attributes a reviewer needs to see why the card was shown.
    """

    rule_id: str
    indicator: str
    mode: str = "active"
    card_uuid: str | None = None
    suggestion_uuids: tuple[str, ...] = ()
    summary: str = ""
    evidence: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    override_reasons: tuple[str, ...] = ()  # offered on the card, as ``system|code``

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"decision mode must be one of {', '.join(MODES)}, not {self.mode!r}")


@dataclass(frozen=True)
class InvocationRecord:
    """One CDS Hooks call: who asked, about whom, which rule set answered, and how long it took.

    ``patient_id`` is the raw FHIR id; the store keeps, hashes or drops it per the audit policy.
    ``issuer`` and ``tenant`` name the authenticated client; feedback is accepted only from it.
    """

    service_id: str
    hook: str
    hook_instance: str
    ruleset_version: str
    evaluation_ms: float
    patient_id: str | None = None
    user_id: str | None = None
    issuer: str | None = None
    tenant: str | None = None
    decisions: tuple[DecisionRecord, ...] = ()
    at: datetime | None = field(default=None)

    def __post_init__(self) -> None:
        if self.at is not None and self.at.tzinfo is None:
            raise ValueError("invocation time must carry a time zone")
