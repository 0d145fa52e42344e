"""May the access token go to this FHIR server? (SEC-14)

``fhirServer`` is request data: without this check a caller could name its own host and receive
the EHR's access token, or make the service probe internal addresses. In production a URL must be
https and lie under a FHIR base the trust file lists for the authenticated issuer; everything else,
private and loopback addresses included, is refused. Development accepts any http(s) server so the
demo and a local FHIR server work.
"""

from __future__ import annotations

from urllib.parse import SplitResult, unquote, urlsplit

from service.config import Settings
from service.security.identity import ClientIdentity

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_and_path(parts: SplitResult) -> tuple[str, str, int | None, str]:
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/")


def _under_base(url: SplitResult, base: str) -> bool:
    """True if ``url`` is the base itself or a path below it, on the same origin."""
    scheme, host, port, path = _origin_and_path(url)
    b_scheme, b_host, b_port, b_path = _origin_and_path(urlsplit(base))
    if (scheme, host, port) != (b_scheme, b_host, b_port):
        return False
    return path == b_path or path.startswith(b_path + "/")


def fhir_server_refusal(url: str, client: ClientIdentity | None, settings: Settings) -> str | None:
    """None if a request carrying the access token may go to ``url``, else the reason why not.

    Call it before every outbound FHIR request, page links included. The reason names the host at
    most, never a token.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "fhirServer is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "fhirServer must be an absolute http(s) URL"
    if parts.username or parts.password:
        return "fhirServer must not carry credentials in the URL"
    if any(unquote(segment) in (".", "..") for segment in parts.path.split("/")):
        return "fhirServer path must not contain dot segments"
    if not settings.production:
        return None
    if parts.scheme != "https":
        return "fhirServer must use https in production"
    if client is None:
        return "no authenticated client to bind the fhirServer to"
    if not any(_under_base(parts, base) for base in client.fhir_servers):
        return f"fhirServer host {parts.hostname} is not allowed for issuer {client.iss}"
    return None
