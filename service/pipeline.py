"""One hook call from request to response body, without HTTP: used by the web view and the CLI."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.cards import render_cards
from service.cdshooks.prefetch import DemoSource, FhirPolicy, ResolvedData, resolve_prefetch
from service.cdshooks.request import HookRequest
from service.cdshooks.response import EXTENSION_KEY, finalize_response
from service.cdshooks.services import CdsService
from service.engine import Evaluation, RuleSet, evaluate
from service.fhir_client import FhirClient


@dataclass
class HookAnswer:
    body: dict[str, Any]
    evaluation: Evaluation
    data: ResolvedData
    evaluation_ms: float


def answer_hook(
    service: CdsService,
    request: HookRequest,
    *,
    ruleset: RuleSet,
    now: datetime,
    fhir: FhirClient | None,
    demo: DemoSource | None = None,
    fhir_policy: FhirPolicy | None = None,
) -> HookAnswer:
    """Resolve data, evaluate the rules, render cards; raises CdsError for protocol failures."""
    data = resolve_prefetch(service, request, fhir=fhir, demo=demo, fhir_policy=fhir_policy)
    started = time.perf_counter()
    evaluation = evaluate(
        ruleset,
        data.resources,
        now=now,
        hook=request.hook,
        draft_orders=request.draft_orders,
        selections=request.selections,
    )
    rendered = render_cards(evaluation, patient_id=request.patient_id)
    elapsed_ms = (time.perf_counter() - started) * 1000
    extension = {
        EXTENSION_KEY: {
            "rulesetVersion": evaluation.ruleset_version,
            "dataSources": data.sources,
            "skippedDraftOrders": request.skipped_draft_orders,
        }
    }
    return HookAnswer(finalize_response(rendered, extension), evaluation, data, elapsed_ms)
