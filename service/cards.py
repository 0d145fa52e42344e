"""CDS Hooks 2.0 cards (and PAMA-style systemActions) from an engine Evaluation.

No web framework here: the web layer adds the envelope extension. Shadow decisions never become
cards. Every ServiceRequest a suggestion would create is validated against FHIR R4B first; one
that fails is dropped and logged rather than sent to an EHR.
"""

from __future__ import annotations

import copy
import functools
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from service.cdshooks.response import prune_empty
from service.codesystems import OVERRIDE_REASON_SYSTEM
from service.engine import Decision, Evaluation
from service.engine.codes import SNOMED
from service.engine.evaluate import PlannedSuggestion
from service.engine.model import SUMMARY_LIMIT

log = logging.getLogger(__name__)

TOPIC_SYSTEM = "http://spinehip-cds.org/fhir/CodeSystem/card-topic"
PAMA_RATING_URL = "http://fhir.org/argonaut/Extension/pama-rating"
PAMA_RATING_SYSTEM = "http://fhir.org/argonaut/CodeSystem/pama-rating"
PAMA_CONSULT_ID_URL = "http://fhir.org/argonaut/Extension/pama-rating-consult-id"
IMAGING_CATEGORY = {"system": SNOMED, "code": "363679005", "display": "Imaging"}
LATERALITY = {
    "right": {"system": SNOMED, "code": "24028007", "display": "Right"},
    "left": {"system": SNOMED, "code": "7771000", "display": "Left"},
    "both": {"system": SNOMED, "code": "51440002", "display": "Right and left"},
}


def warm_up() -> None:
    """Validate one full ServiceRequest at start-up.

    fhir.resources imports the models a ServiceRequest refers to on first use; doing it here
    keeps that quarter-second off the first clinician's request.
    """
    coded = {"coding": [IMAGING_CATEGORY], "text": "warm-up"}
    if not _valid_service_request({
        "resourceType": "ServiceRequest", "status": "draft", "intent": "proposal",
        "category": [coded], "code": coded, "priority": "stat", "bodySite": [coded],
        "subject": {"reference": "Patient/warm-up"}, "reasonCode": [coded],
        "performerType": {"text": "warm-up"}, "note": [{"text": "warm-up"}],
    }):
        raise RuntimeError("fhir.resources rejects the ServiceRequest shape the cards use")


def _valid_service_request(resource: dict[str, Any]) -> bool:
    """Validate against FHIR R4B; a shape seen before is answered from a bounded cache.

    Suggestions repeat the same few order shapes, differing only in the patient reference
    (already checked to be a valid id), so validation is paid once per shape, not per request.
    """
    shape = orjson.dumps({**resource, "subject": None}, option=orjson.OPT_SORT_KEYS)
    valid, error = _validate_shape(shape)
    if not valid:
        log.error("dropping an invalid ServiceRequest suggestion (%s): %s",
                  resource.get("code", {}).get("text"), error)
    return valid


@functools.lru_cache(maxsize=512)
def _validate_shape(shape: bytes) -> tuple[bool, str]:
    from fhir.resources.R4B.servicerequest import ServiceRequest

    resource = orjson.loads(shape)
    resource["subject"] = {"reference": "Patient/shape-check"}
    try:
        ServiceRequest.model_validate(resource)
    except (ValidationError, ValueError) as exc:
        return False, str(exc)
    return True, ""


def service_request(decision: Decision, planned: PlannedSuggestion,
                    patient_id: str) -> dict[str, Any]:
    """The coded draft ServiceRequest a suggestion proposes."""
    order = planned.order
    assert order is not None
    body_sites = []
    if order.body_site is not None:
        body_sites.append({"coding": [order.body_site.model_dump()]})
    if order.lateralised and decision.laterality in LATERALITY:
        body_sites.append({"coding": [LATERALITY[decision.laterality]]})
    reasons = [{"coding": [{"system": s, "code": c, "display": d}], "text": d}
               for s, c, d in decision.reasons]
    return prune_empty({
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "category": [{"coding": [IMAGING_CATEGORY]}] if order.category == "imaging" else None,
        "code": {"coding": [c.model_dump() for c in order.codes], "text": order.title},
        "priority": planned.priority,
        "subject": {"reference": f"Patient/{patient_id}"},
        "bodySite": body_sites,
        "reasonCode": reasons,
        "performerType": {"text": order.performer} if order.performer else None,
        "note": [{"text": order.note}] if order.note else None,
    })


def _suggestion(decision: Decision, planned: PlannedSuggestion,
                patient_id: str) -> dict[str, Any] | None:
    if planned.order is None:
        actions = [{"type": "delete", "description": f"Remove draft order {ref}",
                    "resourceId": ref} for ref in planned.delete_refs]
    else:
        resource = service_request(decision, planned, patient_id)
        if not _valid_service_request(resource):
            return None
        actions = [{"type": "create", "description": f"Order {planned.order.title}",
                    "resource": resource}]
    return {"uuid": str(uuid.uuid4()), "label": planned.label, "actions": actions}


def _evidence_line(e: Any) -> str:
    parts = [e.ref]
    if e.date:
        parts.append(e.date)
    line = f"- {e.display} ({', '.join(parts)})"
    if not e.present:
        line += ": recorded as absent"
    if e.tentative:
        line += ": preliminary or unconfirmed, counted for red flags only"
    if e.doubts:
        line += f": uncertain ({', '.join(e.doubts)}), counted for red flags only"
    return line


def detail_markdown(decision: Decision) -> str:
    """The rule's explanation, the evidence with references and dates, and the sources."""
    lines = [decision.detail, "", "**Evidence**"]
    lines += [_evidence_line(e) for e in decision.evidence] or ["- (no single finding)"]
    if decision.tentative:
        lines += ["", "_Some of this data is preliminary or unconfirmed; it is counted because "
                      "a red flag must not be missed. Confirm it._"]
    if decision.uncertain:
        lines += ["", "_Some of this data is uncertain (no usable date, no status, or text "
                      "without a code); it is counted because a red flag must not be missed. "
                      "Check the record named above._"]
    cited = "; ".join(s.title for s in decision.sources)
    lines += ["", f"Sources: {cited}."]
    return "\n".join(lines)


def _links(decision: Decision) -> list[dict[str, str]]:
    links: dict[str, dict[str, str]] = {}
    for link in decision.rule.links:
        links.setdefault(link.url, {"label": link.label, "url": link.url, "type": "absolute"})
    for source in decision.sources:
        if source.kind == "guideline" and source.url:
            links.setdefault(source.url, {"label": source.title, "url": source.url,
                                          "type": "absolute"})
    return list(links.values())


def _summary(text: str) -> str:
    if len(text) <= SUMMARY_LIMIT:
        return text
    log.error("card summary over %d characters was shortened: %r", SUMMARY_LIMIT, text)
    return text[: SUMMARY_LIMIT - 1].rstrip() + "…"


def card(decision: Decision, patient_id: str) -> dict[str, Any]:
    """One CDS Hooks card for an active decision."""
    rule = decision.rule
    guideline_urls = [s.url for s in decision.sources if s.kind == "guideline" and s.url]
    suggestions = [s for p in decision.suggestions
                   if (s := _suggestion(decision, p, patient_id)) is not None]
    return prune_empty({
        "uuid": str(uuid.uuid4()),
        "summary": _summary(decision.summary),
        "indicator": rule.indicator,
        "detail": detail_markdown(decision),
        "source": {
            "label": f"Spine-vs-hip guidance: {', '.join(rule.cite)}",
            "url": guideline_urls[0] if guideline_urls else None,
            "topic": {"system": TOPIC_SYSTEM, "code": rule.id, "display": rule.title},
        },
        "suggestions": suggestions,
        "selectionBehavior": rule.selection if suggestions else None,
        "overrideReasons": [{"system": OVERRIDE_REASON_SYSTEM, "code": c, "display": d}
                            for c, d in decision.override_reasons],
        "links": _links(decision),
    })


def pama_system_actions(evaluation: Evaluation) -> list[dict[str, Any]]:
    """An ``update`` per rated imaging draft that only adds the PAMA rating extensions."""
    actions = []
    for ref, rating in evaluation.pama.items():
        draft = evaluation.drafts.get(ref)
        if draft is None or not draft.get("id"):
            continue
        updated = copy.deepcopy(dict(draft))
        kept = [x for x in updated.get("extension") or []
                if not (isinstance(x, Mapping)
                        and x.get("url") in (PAMA_RATING_URL, PAMA_CONSULT_ID_URL))]
        updated["extension"] = [
            *kept,
            {"url": PAMA_RATING_URL,
             "valueCodeableConcept": {"coding": [{"system": PAMA_RATING_SYSTEM, "code": rating}]}},
            {"url": PAMA_CONSULT_ID_URL, "valueUri": f"urn:uuid:{uuid.uuid4()}"},
        ]
        actions.append({"type": "update", "description": f"PAMA appropriateness rating: {rating}",
                        "resource": updated})
    return actions


@dataclass(frozen=True)
class RenderedCard:
    """A card and the decision it shows: the audit and the metrics read the decision."""

    decision: Decision
    card: dict[str, Any]


@dataclass(frozen=True)
class Rendered:
    """What the EHR will receive, before the envelope: cards with their decisions, systemActions."""

    cards: tuple[RenderedCard, ...]
    system_actions: tuple[dict[str, Any], ...] = ()

    def body(self) -> dict[str, Any]:
        """``{"cards": [...], "systemActions": [...]}``; systemActions only when there are some."""
        body: dict[str, Any] = {"cards": [c.card for c in self.cards]}
        if self.system_actions:
            body["systemActions"] = list(self.system_actions)
        return body


def render(evaluation: Evaluation, *, patient_id: str) -> Rendered:
    """A card per active decision and the PAMA systemActions.

    Hook, draft orders, selections and snoozes were already applied by ``evaluate``.
    """
    cards = tuple(RenderedCard(d, card(d, patient_id)) for d in evaluation.active)
    return Rendered(cards, tuple(pama_system_actions(evaluation)))
