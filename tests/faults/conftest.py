"""Databases that misbehave as they do in production: locked by another process, stopped."""

from __future__ import annotations

from tests.security.conftest import (  # noqa: F401  (the signed-token fixtures, reused)
    ec_key,
    jwks_server,
    make_token,
    production_settings,
    rsa_key,
    trust_file,
)
from tests.support.databases import sqlite_locked  # noqa: F401  (re-exported for the tests here)
