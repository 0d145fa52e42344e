"""The service as the tests build it: the real app factory, the bundled rules compiled once."""

from __future__ import annotations

from typing import Any

from flask import Flask

from service.app import create_app
from service.config import Settings
from tests.support.rules import RULES_DIR, bundled_ruleset


def make_app(settings: Settings, **kwargs: Any) -> Flask:
    """``create_app(settings)``, handing it the shared compiled rules when the settings name the
    bundled rules directory (a test with rules of its own gets them compiled as usual)."""
    if settings.rules_dir.resolve() == RULES_DIR.resolve():
        kwargs.setdefault("ruleset", bundled_ruleset())
    return create_app(settings, **kwargs)
