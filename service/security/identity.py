"""Who called: the result of a verified CDS client JWT, handed to the views through ``flask.g``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClientIdentity:
    """An authenticated CDS client; ``fhir_servers`` are the FHIR bases its token may be sent to."""

    iss: str
    tenant: str | None
    fhir_servers: tuple[str, ...]
