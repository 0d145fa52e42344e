"""How much of a patient's identity the audit trail keeps, and which override reasons snooze a rule."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

from service.codesystems import OVERRIDE_REASON_SYSTEM
from service.config import AUDIT_PATIENT_ID_POLICIES, DEFAULT_SNOOZE_REASONS, Settings

# Used only when no secret is configured (development); production settings require a real one.
DEVELOPMENT_SECRET = "spinehip-development-audit-secret"


@dataclass(frozen=True)
class AuditPolicy:
    """``patient_id``: keep the raw id (``store``), a keyed HMAC of it (``hash``), or nothing.

    The HMAC is also the key snoozes are filed under, so a snooze works under ``store`` and
    ``hash``; under ``omit`` nothing links two calls for one patient and snoozing is off.
    """

    patient_id: str = "hash"
    secret: str = field(default=DEVELOPMENT_SECRET, repr=False)
    snooze_reasons: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_SNOOZE_REASONS))

    def __post_init__(self) -> None:
        if self.patient_id not in AUDIT_PATIENT_ID_POLICIES:
            raise ValueError(
                f"audit patient id policy must be one of {', '.join(AUDIT_PATIENT_ID_POLICIES)}, "
                f"not {self.patient_id!r}"
            )
        if not self.secret:
            raise ValueError("audit secret must not be empty")
        for code, days in self.snooze_reasons.items():
            if days <= 0:
                raise ValueError(f"snooze reason {code!r} needs a positive number of days")

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditPolicy:
        return cls(
            patient_id=settings.audit_patient_id,
            secret=settings.audit_secret or DEVELOPMENT_SECRET,
            snooze_reasons=dict(settings.snooze_reasons),
        )

    def patient_key(self, patient_id: str | None) -> str | None:
        """The keyed hash that identifies a patient across calls without revealing the id."""
        if patient_id is None or self.patient_id == "omit":
            return None
        digest = self._keyed.copy()
        digest.update(patient_id.encode())
        return digest.hexdigest()

    @cached_property
    def _keyed(self) -> hmac.HMAC:
        """The HMAC with the secret already keyed in (two hash blocks); every key copies it."""
        return hmac.new(self.secret.encode(), digestmod=hashlib.sha256)

    def stored_patient_id(self, patient_id: str | None) -> str | None:
        return patient_id if self.patient_id == "store" else None

    def snooze_period(self, reason: Mapping[str, object] | None) -> timedelta | None:
        """The snooze an override reason asks for, or None when it is not a snooze reason."""
        if not isinstance(reason, Mapping) or reason.get("system") != OVERRIDE_REASON_SYSTEM:
            return None
        days = self.snooze_reasons.get(str(reason.get("code")))
        return timedelta(days=days) if days else None
