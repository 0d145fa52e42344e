"""CDS Hooks 2.0 conformance; each test name carries the checklist IDs it covers
(../shared/reference/cds-hooks-conformance.md)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import responses

from service import fixtures
from service.config import PROJECT_ROOT, Settings
from service.store import DecisionRecord, InvocationRecord
from service.yamlsource import ConfigFileError
from tests.support.app import make_app
from tests.support.protocol import FHIR, TOKEN

PV = "/cds-services/spinehip-patient-view"
OS = "/cds-services/spinehip-order-select"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def post(client, url, body, **kwargs):
    return client.post(url, data=json.dumps(body), content_type="application/json", **kwargs)


def assert_outcome(response, status, field=None):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    assert issue["severity"] == "error"
    if field:
        assert field in issue["expression"], body
    return body


def empty_members(value, path="$"):
    """Paths of every null, "", [] or {} inside a JSON value."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if item is None or item == "" or item == [] or item == {}:
                found.append(f"{path}.{key}")
            found.extend(empty_members(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if item is None or item == "" or item == [] or item == {}:
                found.append(f"{path}[{i}]")
            found.extend(empty_members(item, f"{path}[{i}]"))
    return found


# --- discovery -------------------------------------------------------------------------------


def test_DISC_01_02_04_05_discovery_lists_one_service_per_hook(client):
    response = client.get("/cds-services")
    assert response.status_code == 200
    services = response.get_json()["services"]
    assert sorted(s["hook"] for s in services) == [
        "encounter-start",
        "order-select",
        "order-sign",
        "patient-view",
    ]
    assert len({s["id"] for s in services}) == 4  # SBX-04: distinct ids
    for service in services:
        assert isinstance(service["description"], str) and service["description"]
        assert isinstance(service["title"], str) and service["title"]


def test_DISC_11_discovery_has_no_empty_members(client):
    assert empty_members(client.get("/cds-services").get_json()) == []


def test_PRE_01_02_03_prefetch_templates_use_only_root_context_tokens(client):
    for service in client.get("/cds-services").get_json()["services"]:
        for template in service["prefetch"].values():
            tokens = re.findall(r"\{\{([^}]*)\}\}", template)
            assert tokens, template
            assert set(tokens) <= {"context.patientId", "context.encounterId", "context.userId"}
            assert not template.startswith("/")


def test_DISC_PRE_03_bad_hooks_file_refuses_start_naming_every_problem(settings):
    bad = Path(__file__).parent / "data" / "bad-hooks"
    with pytest.raises(ConfigFileError) as caught:
        make_app(Settings(**{**settings.__dict__, "hooks_dir": bad}))
    messages = [str(e) for e in caught.value.errors]
    assert any("bad.yaml:9:1" in m and "did you mean `usageRequirements`" in m for m in messages), messages
    assert any("bad.yaml:8:3" in m and "draftOrders" in m for m in messages), messages


def test_PRE_03_draft_orders_token_is_rejected_with_its_line(settings, tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    text = (Path(__file__).parent / "data" / "bad-hooks" / "bad.yaml").read_text()
    (hooks / "bad.yaml").write_text(text.replace("usageRequirement:", "usageRequirements:"))
    with pytest.raises(ConfigFileError) as caught:
        make_app(Settings(**{**settings.__dict__, "hooks_dir": hooks}))
    (error,) = caught.value.errors
    assert (error.line, error.column, error.key) == (8, 3, "prefetch.drafts")
    assert "draftOrders" in error.message


# --- request validation --------------------------------------------------------------------


def test_REQ_10_unparsable_json_is_400_operation_outcome(client):
    response = client.post(PV, data=b"{not json", content_type="application/json")
    assert_outcome(response, 400)


@pytest.mark.parametrize("member", ["hook", "hookInstance", "context"])
def test_REQ_02_03_06_missing_required_member_is_400_naming_it(client, patient_view, member):
    del patient_view[member]
    assert_outcome(post(client, PV, patient_view), 400, member)


@pytest.mark.parametrize("member", ["patientId", "userId"])
def test_REQ_06_missing_context_field_is_400_naming_it(client, patient_view, member):
    del patient_view["context"][member]
    assert_outcome(post(client, PV, patient_view), 400, f"context.{member}")


def test_REQ_04_fhir_authorization_without_fhir_server_is_400(client, patient_view):
    patient_view["fhirAuthorization"] = {
        "access_token": TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "x",
    }
    body = assert_outcome(post(client, PV, patient_view), 400, "fhirServer")
    assert TOKEN not in json.dumps(body)


def test_REQ_10_hook_other_than_the_services_is_400(client, patient_view):
    patient_view["hook"] = "order-sign"
    assert_outcome(post(client, PV, patient_view), 400, "hook")


def test_REQ_01_unknown_service_is_404(client, patient_view):
    assert_outcome(post(client, "/cds-services/nope", patient_view), 404)


def test_REQ_body_above_the_limit_is_413(tmp_path, settings, patient_view):
    app = make_app(Settings(**{**settings.__dict__, "max_body_bytes": 2000}))
    patient_view["extension"] = {"org.example.padding": "x" * 5000}
    assert_outcome(post(app.test_client(), PV, patient_view), 413)


def test_REQ_non_json_content_type_is_415(client, patient_view):
    response = client.post(PV, data=json.dumps(patient_view), content_type="text/plain")
    assert_outcome(response, 415)


def test_REQ_09_unknown_extension_members_are_ignored(client, patient_view):
    patient_view["extension"] = {"com.example.whatever": {"a": 1}}
    patient_view["context"]["extension"] = {"com.example.more": True}
    assert post(client, PV, patient_view).status_code == 200


def test_REQ_patient_id_must_be_a_bare_id(client, patient_view):
    patient_view["context"]["patientId"] = "Patient/proto-1"
    assert_outcome(post(client, PV, patient_view), 400, "context.patientId")


def test_HOOK_02_selection_not_in_draft_orders_is_400(client, order_select):
    order_select["context"]["selections"] = ["ServiceRequest/not-drafted"]
    assert_outcome(post(client, OS, order_select), 400, "context.selections[0]")


def test_HOOK_malformed_draft_order_entries_are_tolerated_and_named(client, order_select):
    response = post(client, OS, order_select)
    assert response.status_code == 200, response.get_json()
    ext = response.get_json()["extension"]["org.spinehip-cds"]
    assert ext["skippedDraftOrders"] == ["context.draftOrders.entry[2]", "context.draftOrders.entry[3]"]


# --- prefetch and FHIR fallback --------------------------------------------------------------


def searchset(*resources, next_url=None):
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def with_fallback(request: dict, *drop: str) -> dict:
    request["fhirServer"] = FHIR
    request["fhirAuthorization"] = {
        "access_token": TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "spinehip",
    }
    for key in drop:
        del request["prefetch"][key]
    return request


def test_PRE_07_FHIR_01_full_prefetch_makes_no_fhir_call(client, patient_view, fhir_mock):
    response = post(client, PV, with_fallback(patient_view))
    assert response.status_code == 200
    assert len(fhir_mock.calls) == 0
    sources = response.get_json()["extension"]["org.spinehip-cds"]["dataSources"]
    assert set(sources.values()) == {"prefetch"}


def test_PRE_09_FHIR_02_missing_key_is_fetched_with_bearer_token(client, patient_view, fhir_mock):
    obs = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "303081002"}]},
        "subject": {"reference": "Patient/proto-1"},
        "valueBoolean": True,
    }
    fhir_mock.get(
        f"{FHIR}/Observation",
        json=searchset(obs),
        match=[responses.matchers.query_param_matcher({"patient": "proto-1", "_count": "200"})],
    )
    response = post(client, PV, with_fallback(patient_view, "observations"))
    assert response.status_code == 200, response.get_json()
    assert len(fhir_mock.calls) == 1
    assert fhir_mock.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
    sources = response.get_json()["extension"]["org.spinehip-cds"]["dataSources"]
    assert sources["observations"] == "fhir"


def test_PRE_07_null_value_means_no_data_and_no_fetch(client, patient_view, fhir_mock):
    patient_view["prefetch"]["observations"] = None
    response = post(client, PV, with_fallback(patient_view))
    assert response.status_code == 200
    assert len(fhir_mock.calls) == 0
    assert response.get_json()["extension"]["org.spinehip-cds"]["dataSources"]["observations"] == "null"


def test_PRE_08_operation_outcome_value_is_fetched(client, patient_view, fhir_mock):
    patient_view["prefetch"]["procedures"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout", "diagnostics": "prefetch timed out"}],
    }
    fhir_mock.get(f"{FHIR}/Procedure", json=searchset())
    response = post(client, PV, with_fallback(patient_view))
    assert response.status_code == 200
    assert [c.request.url.split("?")[0] for c in fhir_mock.calls] == [f"{FHIR}/Procedure"]


def test_FHIR_08_paged_bundle_next_links_are_followed(client, patient_view, fhir_mock):
    page2 = f"{FHIR}/Condition?patient=proto-1&page=2"
    cond = {
        "resourceType": "Condition",
        "id": "c-page2",
        "subject": {"reference": "Patient/proto-1"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "23056005"}]},
    }
    fhir_mock.get(
        f"{FHIR}/Condition",
        json=searchset(next_url=page2),
        match=[responses.matchers.query_param_matcher({"patient": "proto-1", "_count": "100"})],
    )
    fhir_mock.get(
        page2,
        json=searchset(cond),
        match=[responses.matchers.query_param_matcher({"patient": "proto-1", "page": "2"})],
    )
    response = post(client, PV, with_fallback(patient_view, "conditions"))
    assert response.status_code == 200
    assert len(fhir_mock.calls) == 2
    assert all(c.request.headers["Authorization"] == f"Bearer {TOKEN}" for c in fhir_mock.calls)


def test_FHIR_08_paged_prefetch_value_is_completed_from_the_server(client, patient_view, fhir_mock):
    page2 = f"{FHIR}/Observation?patient=proto-1&page=2"
    patient_view["prefetch"]["observations"] = searchset(next_url=page2)
    fhir_mock.get(page2, json=searchset())
    response = post(client, PV, with_fallback(patient_view))
    assert response.status_code == 200
    assert len(fhir_mock.calls) == 1


def test_FHIR_08_SEC_14_next_link_to_another_origin_is_refused_with_412(client, patient_view, fhir_mock):
    fhir_mock.get(f"{FHIR}/Condition", json=searchset(next_url="https://evil.example.com/steal?page=2"))
    response = post(client, PV, with_fallback(patient_view, "conditions"))
    body = assert_outcome(response, 412, "prefetch.conditions")
    assert len(fhir_mock.calls) == 1  # the foreign link was never requested
    assert TOKEN not in json.dumps(body)


def test_FHIR_04_05_fhir_server_error_gives_412_naming_the_key(client, patient_view, fhir_mock):
    fhir_mock.get(f"{FHIR}/DiagnosticReport", status=500, json={"resourceType": "OperationOutcome"})
    response = post(client, PV, with_fallback(patient_view, "diagnosticReports"))
    body = assert_outcome(response, 412, "prefetch.diagnosticReports")
    assert "500" in body["issue"][0]["diagnostics"]


def test_FHIR_04_fhir_timeout_gives_412(client, patient_view, fhir_mock):
    fhir_mock.get(f"{FHIR}/ImagingStudy", body=requests.exceptions.ReadTimeout("slow"))
    response = post(client, PV, with_fallback(patient_view, "imagingStudies"))
    assert_outcome(response, 412, "prefetch.imagingStudies")


def test_FHIR_04_rejected_token_gives_412(client, patient_view, fhir_mock):
    fhir_mock.get(f"{FHIR}/Observation", status=401)
    response = post(client, PV, with_fallback(patient_view, "observations"))
    body = assert_outcome(response, 412, "prefetch.observations")
    assert "401" in body["issue"][0]["diagnostics"]


def test_FHIR_04_missing_prefetch_without_fhir_server_gives_412_naming_keys(client, patient_view):
    del patient_view["prefetch"]["observations"]
    del patient_view["prefetch"]["conditions"]
    body = assert_outcome(post(client, PV, patient_view), 412)
    assert "conditions, observations" in body["issue"][0]["diagnostics"]


RETENTION = {
    "resourceType": "Observation", "id": "proto-retention", "status": "final",
    "subject": {"reference": "Patient/proto-1"}, "effectiveDateTime": "{{now-1d}}",
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "267064002"}]},
    "valueBoolean": True,
}


def _observations_reply(mode: str) -> dict:
    """A search reply whose one entry is urinary retention (a cauda equina sign) in ``mode``,
    beside an OperationOutcome entry as servers add them."""
    bundle = searchset()
    bundle["entry"] = [
        {"search": {"mode": mode}, "resource": fixtures.render(RETENTION, datetime.now(UTC))},
        {"search": {"mode": "outcome"},
         "resource": {"resourceType": "OperationOutcome",
                      "issue": [{"severity": "warning", "code": "informational"}]}},
    ]
    return bundle


@pytest.mark.parametrize(("mode", "card"), [("outcome", False), ("match", True)])
def test_PRE_07_search_mode_outcome_entries_are_not_data(client, patient_view, fhir_mock, mode, card):
    fhir_mock.get(f"{FHIR}/Observation", json=_observations_reply(mode))
    response = post(client, PV, with_fallback(patient_view, "observations"))
    assert response.status_code == 200
    topics = [c["source"]["topic"]["code"] for c in response.get_json()["cards"]]
    assert ("cauda-equina" in topics) is card
    assert response.get_json()["extension"]["org.spinehip-cds"]["dataSources"]["observations"] == "fhir"


# --- response shape --------------------------------------------------------------------------


def test_RESP_01_05_response_has_cards_and_no_empty_members(client, order_select):
    response = post(client, OS, order_select)
    assert response.status_code == 200
    body = response.get_json()
    assert isinstance(body["cards"], list)
    assert [p for p in empty_members(body) if p != "$.cards"] == []  # cards: [] is the one allowed
    assert response.mimetype == "application/json"


def test_RESP_03_system_actions_are_omitted_when_there_are_none(client, order_select):
    body = post(client, OS, order_select).get_json()  # no patient data: nothing can be rated
    assert "systemActions" not in body
    assert "systemActions" not in body.get("extension", {})


def test_SYS_03_SBX_09_system_actions_are_mirrored_into_the_extension(client):
    path = PROJECT_ROOT / "fixtures" / "requests" / "s03-hip-pattern-left-order-select.json"
    body = post(client, OS, fixtures.load_request(path, datetime.now(UTC))).get_json()
    assert body["systemActions"]  # the hip radiograph draft gets a PAMA rating
    assert body["extension"]["systemActions"] == body["systemActions"]


def test_RESP_rule_set_version_in_extension(client, patient_view):
    body = post(client, PV, patient_view).get_json()
    assert body["extension"]["org.spinehip-cds"]["rulesetVersion"]


# --- CORS -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/cds-services", PV, f"{PV}/feedback"])
def test_SBX_06_preflight_answered_without_auth(client, path):
    response = client.options(
        path,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_SBX_06_cors_headers_on_errors_too(client):
    response = client.post(
        PV, data=b"{", content_type="application/json", headers={"Origin": "https://sandbox.cds-hooks.org"}
    )
    assert response.status_code == 400
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_SBX_06_configured_origins_only(settings):
    app = make_app(Settings(**{**settings.__dict__, "cors_origins": ("https://ehr.example.org",)}))
    client = app.test_client()
    allowed = client.get("/cds-services", headers={"Origin": "https://ehr.example.org"})
    other = client.get("/cds-services", headers={"Origin": "https://elsewhere.example.com"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://ehr.example.org"
    assert "Access-Control-Allow-Origin" not in other.headers


# --- feedback -------------------------------------------------------------------------------

CARD = "0a6c1d5e-1111-4a2b-8c3d-4e5f6a7b8c9d"
SUGGESTION = "5e6f7a8b-2222-4c3d-9e0f-1a2b3c4d5e6f"
REASON_SYSTEM = "http://spinehip-cds.org/fhir/CodeSystem/override-reason"


def fb(*items):
    return {"feedback": list(items)}


@pytest.fixture
def issued(app):
    """CARD in the audit trail, as the service records it after returning it on patient-view."""
    app.extensions["spinehip"].store.record_invocation(InvocationRecord(
        service_id="spinehip-patient-view",
        hook="patient-view",
        hook_instance="7d2f0b6e-3333-4d5e-9f0a-1b2c3d4e5f60",
        ruleset_version="test",
        evaluation_ms=1.0,
        patient_id="patient-1",
        decisions=(DecisionRecord(
            "spine-pattern-mri", "info", card_uuid=CARD, suggestion_uuids=(SUGGESTION,),
            override_reasons=(f"{REASON_SYSTEM}|already-ordered",),
        ),),
    ))


ACCEPTED = {
    "card": CARD,
    "outcome": "accepted",
    "acceptedSuggestions": [{"id": SUGGESTION}],
    "outcomeTimestamp": "2026-11-20T10:05:31Z",
}
OVERRIDDEN = {
    "card": CARD,
    "outcome": "overridden",
    "outcomeTimestamp": "2026-11-20T10:06:00.123Z",
    "overrideReason": {
        "reason": {
            "system": REASON_SYSTEM,
            "code": "already-ordered",
        },
        "userComment": "MRI done elsewhere",
    },
}


@pytest.mark.parametrize(
    "item",
    [
        ACCEPTED,
        OVERRIDDEN,
        {"card": CARD, "outcome": "overridden", "outcomeTimestamp": "2026-11-20T10:07:00Z"},
        {
            "card": CARD,
            "outcome": "overridden",
            "outcomeTimestamp": "2026-11-20T10:08:00Z",
            "overrideReason": {"userComment": "patient declined"},
        },
    ],
    ids=["accepted", "overridden-with-reason", "overridden-bare", "comment-only"],
)
def test_FB_01_03_04_valid_feedback_is_stored(client, issued, item):
    response = post(client, f"{PV}/feedback", fb(item))
    assert response.status_code == 200
    assert response.get_json()["stored"] == 1


def test_FB_02_06_batches_and_duplicates_are_idempotent(client, issued):
    first = post(client, f"{PV}/feedback", fb(ACCEPTED, OVERRIDDEN))
    again = post(client, f"{PV}/feedback", fb(ACCEPTED, OVERRIDDEN))
    assert first.get_json() == {"received": 2, "stored": 2}
    assert again.status_code == 200
    assert again.get_json() == {
        "received": 2,
        "stored": 0,
        "notStored": [
            {"item": "feedback[0]", "card": CARD, "reason": "already received"},
            {"item": "feedback[1]", "card": CARD, "reason": "already received"},
        ],
    }


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"outcome": "accepted", "outcomeTimestamp": "2026-11-20T10:05:31Z"}, "feedback[0].card"),
        ({**ACCEPTED, "outcome": "ignored"}, "feedback[0].outcome"),
        ({**ACCEPTED, "acceptedSuggestions": []}, "feedback[0].acceptedSuggestions"),
        ({**ACCEPTED, "outcomeTimestamp": "yesterday"}, "feedback[0].outcomeTimestamp"),
        ({**OVERRIDDEN, "overrideReason": {}}, "feedback[0].overrideReason"),
    ],
)
def test_FB_06_malformed_feedback_is_400_naming_the_member(client, item, field):
    assert_outcome(post(client, f"{PV}/feedback", fb(item)), 400, field)


def test_FB_06_feedback_for_unknown_service_is_404(client):
    assert_outcome(post(client, "/cds-services/nope/feedback", fb(ACCEPTED)), 404)


# --- health ---------------------------------------------------------------------------------


def test_healthz_and_readyz(client):
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["database"] == "ok"


def test_readyz_is_degraded_when_the_database_is_unreachable(app, monkeypatch):
    """Cards are still answered (the audit goes to the local journal): degraded, not down."""
    from sqlalchemy.exc import OperationalError

    def unreachable():
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))

    monkeypatch.setattr(app.extensions["spinehip"].store, "ping", unreachable)
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["database"].startswith("unreachable")
    assert "journal" in body["reason"]


def test_readyz_is_503_when_neither_database_nor_journal_can_take_a_record(app, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def unreachable():
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))

    store = app.extensions["spinehip"].store
    monkeypatch.setattr(store, "ping", unreachable)
    monkeypatch.setattr(store.journal, "writable", lambda: False)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "not ready"
