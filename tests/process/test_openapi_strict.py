"""openapi.yaml describes exactly what a running ``spinehip serve`` answers.

Each case below is a request a real client sends; its live answer must have a status the
document declares for that path and method, the declared content type and headers, and a body
valid against the declared schema made strict: an object member the document does not name
fails. The reverse holds too: every route the service has is described, and every status the
document declares is one some case here receives (the few that need production mode or a
failing database are named in ELSEWHERE, with where they are checked).

To describe a new member or route: add it to openapi.yaml, then a case here that receives it.
"""

from __future__ import annotations

import copy
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import requests
from ruamel.yaml import YAML

from service import fixtures
from service.app import create_app
from service.config import PROJECT_ROOT, Settings
from tests.support.processes import running, spinehip_env, start_spinehip

OPENAPI = YAML(typ="safe").load((PROJECT_ROOT / "openapi.yaml").read_text())
ADMIN_TOKEN = "strict-test-admin-token"
# Declared statuses no case here can receive, and where each is checked instead.
ELSEWHERE = {
    ("/cds-services", "get", "401"): "production JWTs: tests/security/test_openapi_live.py",
    ("/cds-services/{id}", "post", "401"): "production JWTs: tests/security/test_openapi_live.py",
    ("/cds-services/{id}/feedback", "post", "401"): "production JWTs: tests/security/test_openapi_live.py",
    ("/cds-services", "post", "401"): "production JWTs: tests/security/test_openapi_live.py",
    ("/cds-services/{id}", "get", "401"): "production JWTs: tests/security/test_openapi_live.py",
    ("/cds-services/{id}/feedback", "get", "401"): "production JWTs: tests/security/test_openapi_live.py",
    ("/readyz", "get", "503"): "a failing database: tests/protocol/test_conformance.py",
    ("/cds-services/{id}", "post", "503"): "a full journal: tests/faults/test_sqlite_locked.py",
    ("/cds-services/{id}/feedback", "post", "202"): "database stopped: tests/faults/test_postgres_outage.py",
    ("/cds-services/{id}/feedback", "post", "503"): "a full journal: tests/faults (the hook call's handler)",
}
# Routes for people, not for API clients: the rule workbench's HTML pages and their files.
NOT_API = ("/static/", "/admin/rules/static/")


def strict(schema: Any) -> Any:
    """The OpenAPI 3.0 schema as JSON Schema, references inlined, objects closed."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        node: Any = OPENAPI
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        return strict(node)
    out = {k: strict(v) for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable"):
        out["type"] = [schema["type"], "null"]
    if out.get("type") == "object" and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def declared(path: str, method: str, status: int) -> dict[str, Any]:
    responses = OPENAPI["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} answered {status}, not declared"
    response = responses[str(status)]
    return strict(response) if "$ref" in response else response


@dataclass
class Case:
    name: str
    path: str  # the OpenAPI path template
    method: str
    url: str  # the concrete path sent
    status: int
    json: Any = None
    data: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Server:
    url: str
    rules_dir: Path
    card_uuid: str = ""


def hook_body(patient_id: str, **extra: Any) -> dict[str, Any]:
    return {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/demo", "patientId": patient_id}, **extra}


def cases(server: Server) -> list[Case]:
    now = datetime.now(UTC)
    order_select = fixtures.load_request(
        PROJECT_ROOT / "fixtures" / "requests" / "early-sciatica-order-select-mri.json", now)
    feedback = {"feedback": [{"card": server.card_uuid, "outcome": "overridden",
                              "outcomeTimestamp": now.isoformat()}]}
    preflight = {"Origin": "https://sandbox.example.org", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    invoke, fb = "/cds-services/{id}", "/cds-services/{id}/feedback"
    pv = "/cds-services/spinehip-patient-view"
    return [
        Case("discovery", "/cds-services", "get", "/cds-services", 200),
        Case("discovery preflight", "/cds-services", "options", "/cds-services", 200, headers=preflight),
        Case("discovery by POST", "/cds-services", "post", "/cds-services", 405, json={}),
        Case("demo patient, red flag", invoke, "post", pv, 200, json=hook_body("s08-ces-with-hip-oa")),
        Case("order-select with drafts", invoke, "post", "/cds-services/spinehip-order-select", 200,
             json=order_select),
        Case("not JSON", invoke, "post", pv, 400, data=b"{oops",
             headers={"Content-Type": "application/json"}),
        Case("no context", invoke, "post", pv, 400, json={"hook": "patient-view",
                                                           "hookInstance": str(uuid.uuid4())}),
        Case("unknown service", invoke, "post", "/cds-services/patient-view", 404,
             json=hook_body("s01-sciatica-8-weeks")),
        Case("FHIR server refusing connections", invoke, "post", pv, 412,
             json=hook_body("not-a-demo-patient", fhirServer="http://127.0.0.1:9/fhir")),
        Case("too large", invoke, "post", pv, 413, data=b"[" + b"0," * (3 * 1024 * 1024) + b"0]",
             headers={"Content-Type": "application/json"}),
        Case("text/plain", invoke, "post", pv, 415, data=b"hello", headers={"Content-Type": "text/plain"}),
        Case("service preflight", invoke, "options", pv, 200, headers=preflight),
        Case("service by GET", invoke, "get", pv, 405),
        Case("feedback", fb, "post", f"{pv}/feedback", 200, json=feedback),
        Case("empty feedback", fb, "post", f"{pv}/feedback", 400, json={"feedback": []}),
        Case("feedback, unknown service", fb, "post", "/cds-services/nope/feedback", 404, json=feedback),
        Case("feedback too large", fb, "post", f"{pv}/feedback", 413,
             data=b"[" + b"0," * (3 * 1024 * 1024) + b"0]", headers={"Content-Type": "application/json"}),
        Case("feedback as text", fb, "post", f"{pv}/feedback", 415, data=b"x",
             headers={"Content-Type": "text/plain"}),
        Case("feedback preflight", fb, "options", f"{pv}/feedback", 200, headers=preflight),
        Case("feedback by GET", fb, "get", f"{pv}/feedback", 405),
        Case("liveness", "/healthz", "get", "/healthz", 200),
        Case("liveness by POST", "/healthz", "post", "/healthz", 405),
        Case("readiness", "/readyz", "get", "/readyz", 200),
        Case("readiness by POST", "/readyz", "post", "/readyz", 405),
        Case("metrics", "/metrics", "get", "/metrics", 200),
        Case("metrics by POST", "/metrics", "post", "/metrics", 405),
        Case("reload", "/admin/rules/reload", "post", "/admin/rules/reload", 200, headers=admin),
        Case("reload, wrong token", "/admin/rules/reload", "post", "/admin/rules/reload", 401,
             headers={"Authorization": "Bearer wrong"}),
        Case("reload by GET", "/admin/rules/reload", "get", "/admin/rules/reload", 405),
    ]


def check(case: Case, response: requests.Response) -> None:
    """``response`` is what openapi.yaml declares for ``case``'s path, method and status."""
    assert response.status_code == case.status, (case.name, response.status_code, response.text[:300])
    spec = declared(case.path, case.method, response.status_code)
    for name, header in spec.get("headers", {}).items():
        if header.get("required") or name == "Allow":
            assert name in response.headers, f"{case.name}: no {name} header"
    content = spec.get("content")
    if not content:
        assert not response.content, f"{case.name}: a body where none is declared"
        return
    media = response.headers.get("Content-Type", "").split(";")[0]
    assert media in content, f"{case.name}: {media} is not declared ({sorted(content)})"
    if media == "application/json":
        validator = jsonschema_rs.validator_for(strict(content[media]["schema"]))
        problems = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(response.json())]
        assert not problems, f"{case.name}: {problems[:5]}"


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("strict-openapi")
    rules = workdir / "rules"
    shutil.copytree(PROJECT_ROOT / "rules", rules)
    env = spinehip_env(SPINEHIP_MODE="development", DATABASE_URL=f"sqlite:///{workdir / 'store.db'}",
                       SPINEHIP_RULES_DIR=str(rules), SPINEHIP_ADMIN_TOKEN=ADMIN_TOKEN,
                       SPINEHIP_RULES_WATCH="0")
    with running(start_spinehip(env, workdir, workers=1)) as process:
        server = Server(process.base_url, rules)
        answer = requests.post(f"{server.url}/cds-services/spinehip-patient-view",
                               json=hook_body("s01-sciatica-8-weeks"), timeout=30).json()
        server.card_uuid = answer["cards"][0]["uuid"]
        yield server


def send(server: Server, case: Case) -> requests.Response:
    return requests.request(case.method.upper(), server.url + case.url, json=case.json, data=case.data,
                            headers=case.headers, timeout=30)


def test_every_live_answer_is_the_one_declared(served: Server) -> None:
    for case in cases(served):
        check(case, send(served, case))


def test_a_rejected_reload_and_a_missing_admin_endpoint_are_as_declared(served: Server, server) -> None:
    """``server``: the plain development server, which has no admin token."""
    broken = served.rules_dir / "rules" / "r99-typo.yaml"
    broken.write_text("rules:\n  - id: R99\n    whem: ces_sign\n")
    try:
        reload = Case("rejected reload", "/admin/rules/reload", "post", "/admin/rules/reload", 422,
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        check(reload, send(served, reload))
    finally:
        broken.unlink()
    absent = Case("no admin token configured", "/admin/rules/reload", "post", "/admin/rules/reload", 404)
    check(absent, requests.post(server + absent.url, timeout=30))


def test_an_undeclared_member_fails_the_check(served: Server) -> None:
    """The check can fail: a readiness answer with one member more is refused."""
    case = Case("readiness", "/readyz", "get", "/readyz", 200)
    response = send(served, case)
    body = response.json()
    body["surprise"] = True
    response._content = __import__("json").dumps(body).encode()
    with pytest.raises(AssertionError, match="surprise"):
        check(case, response)


def test_every_declared_status_is_received_by_some_case(served: Server) -> None:
    received = {(c.path, c.method, str(c.status)) for c in cases(served)}
    received |= {("/admin/rules/reload", "post", "422"), ("/admin/rules/reload", "post", "404")}
    declared_all = {(path, method, status) for path, item in OPENAPI["paths"].items()
                    for method, op in item.items() for status in op["responses"]}
    assert declared_all - received - set(ELSEWHERE) == set()
    assert received <= declared_all


def test_every_route_and_method_of_the_service_is_described(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}", admin_token="x"))
    described = {(path, method) for path, item in OPENAPI["paths"].items() for method in item}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(NOT_API) or rule.endpoint.startswith("workbench."):
            continue
        path = rule.rule.replace("<service_id>", "{id}")
        for method in sorted(rule.methods - {"HEAD"} - ({"OPTIONS"} if rule.provide_automatic_options
                                                         and not path.startswith("/cds-services")
                                                         else set())):
            assert (path, method.lower()) in described, f"{method} {path} is not in openapi.yaml"


def test_strict_schemas_close_every_object() -> None:
    schema = strict(copy.deepcopy(OPENAPI["components"]["schemas"]["Readiness"]))
    assert schema["additionalProperties"] is False
    assert schema["properties"]["rules"]["additionalProperties"] is False
