"""Protocol errors carried as FHIR OperationOutcomes, so every non-2xx body names what was wrong."""

from __future__ import annotations

from typing import Any

#: Longest piece of request text an error message quotes back.
MAX_ECHO_CHARS = 80


def echo(value: str) -> str:
    """Request text as an error message may quote it: short enough never to grow the answer."""
    return value if len(value) <= MAX_ECHO_CHARS else value[:MAX_ECHO_CHARS] + "..."


class CdsError(Exception):
    """A request the service will not answer with cards; rendered as an OperationOutcome."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        code: str = "invalid",
        issues: list[tuple[str | None, str]] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.issues = issues or [(field, message)]

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues, code=self.code)


def operation_outcome(
    issues: list[tuple[str | None, str]], *, code: str = "invalid", severity: str = "error"
) -> dict[str, Any]:
    """An R4 OperationOutcome with one issue per (field, message); the field goes in ``expression``."""
    out = []
    for field, message in issues:
        issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": message}
        if field:
            issue["expression"] = [field]
            issue["details"] = {"text": f"{field}: {message}"}
        else:
            issue["details"] = {"text": message}
        out.append(issue)
    return {"resourceType": "OperationOutcome", "issue": out}
