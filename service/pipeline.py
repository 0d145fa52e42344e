"""One hook call from request to response body, without HTTP: used by the web view and the CLI.

The path runs one way: the caller binds a data source; the snoozes are read; prefetch is
resolved; the engine evaluates with the snoozed rules silenced; cards are rendered with their
decisions; the audit record is built from those decisions and written before the answer leaves.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.audit import audit_record
from service.cards import RenderedCard, render
from service.cdshooks.prefetch import ResolvedData, resolve_prefetch
from service.cdshooks.request import HookRequest
from service.cdshooks.response import EXTENSION_KEY, finalize_response
from service.cdshooks.services import CdsService
from service.cdshooks.sources import DataSource
from service.engine import Evaluation, RuleSet, evaluate
from service.store import DatabaseUnavailable, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HookAnswer:
    body: dict[str, Any]
    evaluation: Evaluation
    cards: tuple[RenderedCard, ...]
    data: ResolvedData
    evaluation_ms: float
    quality: dict[str, Any]


def _outcome_issues(outcomes: list[dict[str, Any]]) -> Counter[str]:
    """severity/code of every issue in the EHR's OperationOutcomes (no free text: it may
    name the patient)."""
    found: Counter[str] = Counter()
    for outcome in outcomes:
        for issue in outcome.get("issue") or [{}]:
            if isinstance(issue, dict):
                found[f"{issue.get('severity', '?')}/{issue.get('code', '?')}"] += 1
    return found


def data_quality(data: ResolvedData, evaluation: Evaluation) -> dict[str, Any]:
    """What the EHR sent that could not be used as sent, per reason, for the response and logs."""
    excluded = Counter(data.excluded) + Counter(evaluation.data_quality["excluded"])
    quality: dict[str, Any] = {"excluded": dict(sorted(excluded.items())),
                               "uncertain": dict(evaluation.data_quality["uncertain"])}
    if data.outcomes:
        quality["operationOutcomes"] = len(data.outcomes)
    return quality


def _log_quality(quality: Mapping[str, Any], issues: Counter[str]) -> None:
    if quality["excluded"]:
        log.warning("records excluded from evaluation: %s", ", ".join(
            f"{reason}={n}" for reason, n in quality["excluded"].items()))
    if issues:
        log.warning("FHIR OperationOutcome issues from the EHR: %s", ", ".join(
            f"{issue}={n}" for issue, n in sorted(issues.items())))


def answer_hook(
    service: CdsService,
    request: HookRequest,
    *,
    ruleset: RuleSet,
    now: datetime,
    source: DataSource,
    store: Store | None = None,
    issuer: str | None = None,
    tenant: str | None = None,
) -> HookAnswer:
    """Answer one call; with a ``store``, snoozes apply and the call is audited before returning.

    Raises CdsError for protocol failures (nothing is audited then).
    """
    degraded: list[str] = []
    try:
        silenced = (store.snoozed_rules(store.patient_key(request.patient_id), issuer=issuer, tenant=tenant)
                    if store else set())
    except DatabaseUnavailable as exc:  # fail open: every card shown, the answer says why
        silenced = set()
        degraded.append(f"snoozes not applied: {exc}")
    data = resolve_prefetch(service, request, source)
    started = time.perf_counter()
    # Every resource is already bound to the context patient (subject and type) by
    # resolve_prefetch, whatever its source: the engine is not asked to check each one again.
    evaluation = evaluate(
        ruleset,
        data.resources,
        now=now,
        hook=request.hook,
        draft_orders=request.draft_orders,
        selections=request.selections,
        silenced=silenced,
    )
    rendered = render(evaluation, patient_id=request.patient_id)
    elapsed_ms = (time.perf_counter() - started) * 1000
    quality = data_quality(data, evaluation)
    _log_quality(quality, _outcome_issues(data.outcomes))
    extension = {
        EXTENSION_KEY: {
            "rulesetVersion": evaluation.ruleset_version,
            "dataSources": data.sources,
            "skippedDraftOrders": request.skipped_draft_orders,
            "dataQuality": quality,
        }
    }
    if store is not None:
        audited = store.record_invocation(
            audit_record(
                service_id=service.id,
                hook=request.hook,
                hook_instance=request.hook_instance,
                patient_id=request.patient_id,
                evaluation=evaluation,
                cards=rendered.cards,
                evaluation_ms=elapsed_ms,
                user_id=request.user_id,
                issuer=issuer,
                tenant=tenant,
            )
        )
        if not audited:
            degraded.append("audit record kept in the local journal until the database returns")
    if degraded:
        extension[EXTENSION_KEY]["degraded"] = degraded
    body = finalize_response(rendered.body(), extension)
    return HookAnswer(body, evaluation, rendered.cards, data, elapsed_ms, quality)
