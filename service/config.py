"""Service configuration: data read once from the environment and handed to the app factory."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# The bundled hooks, rules and demo patients: package data in an installed wheel; in a source
# checkout, symlinks to the top-level hooks/, rules/ and fixtures/ that admins edit.
DEFAULTS = PACKAGE_DIR / "defaults"
# Resolved, so messages name the files admins edit.
DEFAULT_HOOKS_DIR = (DEFAULTS / "hooks").resolve()
DEFAULT_RULES_DIR = (DEFAULTS / "rules").resolve()
DEFAULT_FIXTURES_DIR = (DEFAULTS / "fixtures").resolve()
# The source checkout the package runs from, when it does (tests and development tools only).
PROJECT_ROOT = PACKAGE_DIR.parent

MODES = ("development", "production")
AUDIT_PATIENT_ID_POLICIES = ("store", "hash", "omit")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: Marks the values deploy/secret.yaml ships with; production refuses to start on one.
PLACEHOLDER = "REPLACE-ME"
MIN_SECRET_BYTES = 32
JTI_FALLBACKS = ("cache", "refuse")
#: The FHIR server's bearer token for the admin commands (fixtures load, rules impact): from the
#: environment rather than the command line, which other users of the machine can read.
FHIR_TOKEN_ENV = "SPINEHIP_FHIR_TOKEN"
#: The override reason that silences a routine rule for a patient, and for how many days.
DEFAULT_SNOOZE_REASONS: tuple[tuple[str, int], ...] = (("snooze-30d", 30),)


def read_log_level(env: Mapping[str, str], default: str) -> str:
    """``SPINEHIP_LOG_LEVEL`` in any case, upper-cased; ValueError naming it for any other value.

    The server and the commands read it here, with their own defaults.
    """
    level = env.get("SPINEHIP_LOG_LEVEL", default).upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"SPINEHIP_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    return level


def fhir_token(given: str | None, env: Mapping[str, str] = os.environ) -> str | None:
    """The token given to a command, else ``SPINEHIP_FHIR_TOKEN``; None when neither is set."""
    return given or env.get(FHIR_TOKEN_ENV) or None


def parse_snooze_reasons(raw: str) -> tuple[tuple[str, int], ...]:
    """``snooze-30d=30,snooze-7d=7``: override reason codes and the days each silences a rule."""
    reasons = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        code, _, days = part.partition("=")
        if not code.strip() or not days.strip().isdigit() or int(days) <= 0:
            raise ValueError(f"SPINEHIP_SNOOZE_REASONS entries look like code=days, not {part!r}")
        reasons.append((code.strip(), int(days)))
    return tuple(reasons)


@dataclass(frozen=True)
class Settings:
    """Everything the service can be told; defaults are the embedded development setup."""

    mode: str = "development"
    public_base_url: str | None = None
    database_url: str = "sqlite:///var/spinehip.db"  # under the working directory, never the install
    # DATABASE_URL was given: a one-off command (``spinehip evaluate``) uses the store only then.
    store_configured: bool = False
    hooks_dir: Path = DEFAULT_HOOKS_DIR
    rules_dir: Path = DEFAULT_RULES_DIR
    fixtures_dir: Path = DEFAULT_FIXTURES_DIR
    demo_patients: bool = True
    max_body_bytes: int = 5 * 1024 * 1024
    rules_watch_s: float = 2.0  # 0 turns the file watch off (reload by SIGHUP or admin call)
    fhir_timeout_s: float = 3.0
    fhir_deadline_s: float = 8.0
    fhir_page_cap: int = 20
    fhir_max_workers: int = 8
    fhir_max_response_bytes: int = 4 * 1024 * 1024  # one FHIR answer, once decoded
    fhir_max_total_bytes: int = 16 * 1024 * 1024  # every FHIR answer of one hook call together
    cors_origins: tuple[str, ...] = ("*",)
    trusted_clients_path: Path | None = None
    admin_token: str | None = field(default=None, repr=False)
    audit_patient_id: str = "hash"
    audit_secret: str | None = field(default=None, repr=False)
    snooze_reasons: tuple[tuple[str, int], ...] = DEFAULT_SNOOZE_REASONS
    log_level: str = "INFO"
    # The longest any database operation may hold up a hook call; then the journal takes over.
    db_timeout_s: float = 0.25
    journal_dir: Path = Path("var") / "journal"  # under the working directory, as the SQLite file
    journal_max_bytes: int = 256 * 1024 * 1024
    jti_fallback: str = "cache"  # with the database away: this process's cache, or refuse tokens

    @property
    def production(self) -> bool:
        return self.mode == "production"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``SPINEHIP_*`` and ``DATABASE_URL``; an invalid value raises ValueError naming it."""
        env = os.environ if env is None else env
        mode = env.get("SPINEHIP_MODE", "development")
        if mode not in MODES:
            raise ValueError(f"SPINEHIP_MODE must be one of {', '.join(MODES)}, not {mode!r}")
        defaults = cls()

        def number(name: str, default: float, kind: type = float) -> float:
            raw = env.get(name)
            if raw is None:
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise ValueError(f"{name} must be a number, not {raw!r}") from None
            if value <= 0:
                raise ValueError(f"{name} must be positive, not {raw!r}")
            return value

        def path(name: str, default: Path | None) -> Path | None:
            raw = env.get(name)
            return Path(raw) if raw else default

        audit_patient_id = env.get("SPINEHIP_AUDIT_PATIENT_ID", defaults.audit_patient_id)
        if audit_patient_id not in AUDIT_PATIENT_ID_POLICIES:
            raise ValueError(
                "SPINEHIP_AUDIT_PATIENT_ID must be one of "
                f"{', '.join(AUDIT_PATIENT_ID_POLICIES)}, not {audit_patient_id!r}"
            )
        audit_secret = env.get("SPINEHIP_AUDIT_SECRET") or None
        snooze = env.get("SPINEHIP_SNOOZE_REASONS")
        level = read_log_level(env, defaults.log_level)
        origins = env.get("SPINEHIP_CORS_ORIGINS")
        jti_fallback = env.get("SPINEHIP_JTI_FALLBACK", defaults.jti_fallback)
        if jti_fallback not in JTI_FALLBACKS:
            raise ValueError(
                f"SPINEHIP_JTI_FALLBACK must be one of {', '.join(JTI_FALLBACKS)}, not {jti_fallback!r}"
            )
        settings = cls(
            mode=mode,
            public_base_url=(env.get("SPINEHIP_PUBLIC_BASE_URL") or "").rstrip("/") or None,
            database_url=env.get("DATABASE_URL") or defaults.database_url,
            store_configured=bool(env.get("DATABASE_URL")),
            hooks_dir=path("SPINEHIP_HOOKS_DIR", defaults.hooks_dir),
            rules_dir=path("SPINEHIP_RULES_DIR", defaults.rules_dir),
            fixtures_dir=path("SPINEHIP_FIXTURES_DIR", defaults.fixtures_dir),
            demo_patients=env.get("SPINEHIP_DEMO_PATIENTS", "1" if mode == "development" else "0")
            in ("1", "true", "yes"),
            max_body_bytes=int(number("SPINEHIP_MAX_BODY_BYTES", defaults.max_body_bytes, int)),
            rules_watch_s=0.0
            if env.get("SPINEHIP_RULES_WATCH", "").strip() in ("0", "0.0")
            else number("SPINEHIP_RULES_WATCH", defaults.rules_watch_s),
            fhir_timeout_s=number("SPINEHIP_FHIR_TIMEOUT", defaults.fhir_timeout_s),
            fhir_deadline_s=number("SPINEHIP_FHIR_DEADLINE", defaults.fhir_deadline_s),
            fhir_page_cap=int(number("SPINEHIP_FHIR_PAGE_CAP", defaults.fhir_page_cap, int)),
            fhir_max_response_bytes=int(
                number("SPINEHIP_FHIR_MAX_RESPONSE_BYTES", defaults.fhir_max_response_bytes, int)
            ),
            fhir_max_total_bytes=int(
                number("SPINEHIP_FHIR_MAX_TOTAL_BYTES", defaults.fhir_max_total_bytes, int)
            ),
            cors_origins=tuple(o.strip() for o in origins.split(",") if o.strip())
            if origins
            else defaults.cors_origins,
            trusted_clients_path=path("SPINEHIP_TRUSTED_CLIENTS", None),
            admin_token=env.get("SPINEHIP_ADMIN_TOKEN") or None,
            audit_patient_id=audit_patient_id,
            audit_secret=audit_secret,
            snooze_reasons=parse_snooze_reasons(snooze) if snooze else defaults.snooze_reasons,
            log_level=level,
            db_timeout_s=number("SPINEHIP_DB_TIMEOUT", defaults.db_timeout_s),
            journal_dir=path("SPINEHIP_JOURNAL_DIR", defaults.journal_dir),
            journal_max_bytes=int(number("SPINEHIP_JOURNAL_MAX_BYTES", defaults.journal_max_bytes, int)),
            jti_fallback=jti_fallback,
        )
        check_secrets(settings)
        return settings


def _secret_problem(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if PLACEHOLDER in value:
        return f"{name} still holds the {PLACEHOLDER} placeholder of deploy/secret.yaml"
    if len(value.encode()) < MIN_SECRET_BYTES:
        return f"{name} must be at least {MIN_SECRET_BYTES} bytes in production"
    return None


def check_secrets(settings: Settings) -> None:
    """ValueError naming the variable when production would run on a missing, placeholder or short secret.

    Every command that reads production data checks this; :func:`check_serving` adds what only the
    HTTP service needs.
    """
    if not settings.production:
        return
    problems = [
        _secret_problem("SPINEHIP_AUDIT_SECRET", settings.audit_secret),
        _secret_problem("SPINEHIP_ADMIN_TOKEN", settings.admin_token),
        f"DATABASE_URL still holds the {PLACEHOLDER} placeholder of deploy/secret.yaml"
        if PLACEHOLDER in settings.database_url else None,
    ]
    if settings.audit_patient_id != "omit" and not settings.audit_secret:
        problems.insert(0, "SPINEHIP_AUDIT_SECRET is required in production to key patient ids")
    found = [p for p in problems if p]
    if found:
        raise ValueError("; ".join(found))


def check_serving(settings: Settings) -> None:
    """:func:`check_secrets`, plus what production needs to answer HTTP calls safely."""
    check_secrets(settings)
    if not settings.production:
        return
    if settings.trusted_clients_path is None:
        raise ValueError(
            "SPINEHIP_MODE=production requires SPINEHIP_TRUSTED_CLIENTS (the trusted-clients file)"
        )
    if not settings.public_base_url:
        # aud checked against the request's own Host header would accept a token minted for
        # another service, replayed here with that service's Host.
        raise ValueError(
            "SPINEHIP_MODE=production requires SPINEHIP_PUBLIC_BASE_URL (the URL EHRs call; JWT aud "
            "is checked against it)"
        )
