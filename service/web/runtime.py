"""What the views share, built once by the app factory and never read from globals elsewhere."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from service.cdshooks.services import CdsService
from service.config import Settings
from service.engine import RuleRegistry
from service.fhir_client import FhirClient
from service.store import Store


@dataclass
class Runtime:
    settings: Settings
    services: dict[str, CdsService]
    rules: RuleRegistry
    store: Store
    fhir: FhirClient


def runtime() -> Runtime:
    return current_app.extensions["spinehip"]
