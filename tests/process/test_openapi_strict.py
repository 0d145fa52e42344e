"""openapi.yaml describes exactly what a running ``spinehip serve`` answers.

Each case below is a request a real client sends; its live answer must have a status the
document declares for that path and method, the declared content type and headers, and a body
valid against the declared schema made strict: an object member the document does not name
fails. The reverse holds too: every route the service has is described, and every status the
document declares is one some case here receives (the few that need production mode or a
failing database are named in ELSEWHERE, with where they are checked).

The rule workbench's pages are HTML: a page is checked for its status, media type and headers,
and every form on it must post exactly the fields the document declares for its action. The
workbench is driven as a browser drives it, with a session cookie and each form's CSRF token.

To describe a new member or route: add it to openapi.yaml, then a case here that receives it.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import requests
from ruamel.yaml import YAML

from service import fixtures
from service.cdshooks import feedback as fb
from service.cdshooks import request as rq
from service.config import PROJECT_ROOT, Settings
from service.engine.binding import FHIR_ID, REFERENCE
from service.engine.hooks import HOOKS
from tests.support.app import make_app
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
#: A form value replaced, when the case is sent, by the CSRF token of its browser's last page.
CSRF = "<the csrf token of the last page>"
R05 = "rules/r05-spine-pattern-mri.yaml"


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
    return strict(responses[str(status)])


def problems(schema: Any, instance: Any) -> list[str]:
    validator = jsonschema_rs.validator_for(strict(schema))
    return [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(instance)]


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
    form: dict[str, str] | None = None  # sent as application/x-www-form-urlencoded
    files: dict[str, tuple[str, bytes]] | None = None  # with ``form``: multipart/form-data
    browser: str | None = None  # the workbench browser (cookie jar) that sends it


@dataclass
class Browser:
    """A cookie jar and the CSRF token of the last page it was shown."""

    session: requests.Session = field(default_factory=requests.Session)
    csrf: str = ""


@dataclass
class Server:
    url: str
    rules_dir: Path
    card_uuid: str = ""
    browsers: dict[str, Browser] = field(default_factory=dict)


def hook_body(patient_id: str, **extra: Any) -> dict[str, Any]:
    return {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/demo", "patientId": patient_id}, **extra}


def cases(server: Server) -> list[Case]:
    now = datetime.now(UTC)
    order_select = fixtures.load_request(
        PROJECT_ROOT / "fixtures" / "requests" / "early-sciatica-order-select-mri.json", now)
    with_null_key = fixtures.load_request(PROJECT_ROOT / "fixtures" / "requests" / "early-sciatica.json", now)
    with_null_key["prefetch"]["procedures"] = None
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
        Case("a prefetch key sent as null", invoke, "post", pv, 200, json=with_null_key),
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
        *workbench_cases(),
    ]


def workbench_cases() -> list[Case]:
    """The workbench as an admin's browser meets it, in order: sign in, look, try, reload, leave.

    ``admin`` signs in; ``visitor`` only ever sees the sign-in form."""
    wb = "/admin/rules"
    r05 = (PROJECT_ROOT / "rules" / R05).read_text()
    broken = r05.replace("indicator: info", "indicator: loud")

    def form(action: str, status: int, browser: str, name: str, /, **fields: str) -> Case:
        return Case(name, action, "post", action, status, browser=browser, form={"csrf": CSRF, **fields})

    def trial(status: int, name: str, /, browser: str = "admin", upload: bytes | None = None,
              **fields: str) -> Case:
        case = form(f"{wb}/try", status, browser, name, **fields)
        # A form with no file chosen still sends the part, with no file name.
        case.files = {"files": (Path(R05).name, upload) if upload is not None else ("", b"")}
        return case

    def forged(case: Case) -> Case:
        case.form = {**(case.form or {}), "csrf": "a-token-of-another-session"}
        return case

    return [
        Case("sign-in form", wb, "get", wb, 200, browser="visitor"),
        Case("sign-in form, admin's browser", wb, "get", wb, 200, browser="admin"),
        form(f"{wb}/sign-in", 401, "admin", "sign in, wrong token", token="not-the-token"),
        forged(form(f"{wb}/sign-in", 403, "admin", "sign in, forged form", token=ADMIN_TOKEN)),
        form(f"{wb}/sign-in", 303, "admin", "sign in", token=ADMIN_TOKEN),
        Case("workbench page", wb, "get", wb, 200, browser="admin"),
        Case("a rule file opened for editing", wb, "get", f"{wb}?edit={R05}", 200, browser="admin"),
        Case("no such rule file to edit", wb, "get", f"{wb}?edit=rules/r99-none.yaml", 404, browser="admin"),
        trial(200, "try an edit", path=R05, content=r05),
        trial(200, "try an uploaded file", upload=r05.encode()),
        trial(422, "try a broken edit", path=R05, content=broken),
        trial(422, "try nothing"),
        trial(413, "try a file over the body limit", upload=b"#" * (6 * 1024 * 1024)),
        trial(401, "try, not signed in", browser="visitor", path=R05, content=r05),
        forged(trial(403, "try, forged form", path=R05, content=r05)),
        form(f"{wb}/reload-now", 303, "admin", "reload from the page"),
        form(f"{wb}/reload-now", 401, "visitor", "reload, not signed in"),
        forged(form(f"{wb}/reload-now", 403, "admin", "reload, forged form")),
        forged(form(f"{wb}/sign-out", 403, "admin", "sign out, forged form")),
        form(f"{wb}/sign-out", 303, "admin", "sign out"),
        Case("style sheet", f"{wb}/static/{{filename}}", "get", f"{wb}/static/workbench.css", 200),
        Case("no such static file", f"{wb}/static/{{filename}}", "get", f"{wb}/static/none.css", 404),
        Case("style sheet by POST", f"{wb}/static/{{filename}}", "post", f"{wb}/static/workbench.css", 405),
        Case("a name no route takes, by POST", f"{wb}/static/{{filename}}", "post",
             f"{wb}/static/a%0Ab.css", 404),
        Case("workbench by POST", wb, "post", wb, 405),
        *(Case(f"{action} by GET", f"{wb}/{action}", "get", f"{wb}/{action}", 405)
          for action in ("sign-in", "sign-out", "try", "reload-now")),
    ]


class Forms(HTMLParser):
    """Each form of a page: (method, action, enctype) -> the names of the fields it posts."""

    def __init__(self, page: str):
        super().__init__()
        self.forms: dict[tuple[str, str, str], set[str]] = {}
        self.values: dict[str, str] = {}
        self._open: set[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            key = ((a.get("method") or "get").lower(), a.get("action") or "",
                   a.get("enctype") or "application/x-www-form-urlencoded")
            self._open = self.forms.setdefault(key, set())
        elif tag in ("input", "select", "textarea") and a.get("name") and self._open is not None:
            self._open.add(a["name"])
            self.values[a["name"]] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def check_forms(page: str, where: str) -> Forms:
    """Every form on ``page`` posts exactly the fields openapi.yaml declares for its action."""
    forms = Forms(page)
    for (method, action, enctype), fields in forms.forms.items():
        operation = OPENAPI["paths"].get(action, {}).get(method)
        assert operation and "requestBody" in operation, f"{where}: form to {method} {action} not described"
        content = operation["requestBody"]["content"]
        assert enctype in content, f"{where}: {action} posted as {enctype}, declared {sorted(content)}"
        schema = strict(content[enctype]["schema"])
        assert fields == set(schema["properties"]), (where, action, fields, sorted(schema["properties"]))
    return forms


def check(case: Case, response: requests.Response) -> Forms | None:
    """``response`` is what openapi.yaml declares for ``case``'s path, method and status; for a
    page, the forms it holds (checked against the document too)."""
    assert response.status_code == case.status, (case.name, response.status_code, response.text[:300])
    spec = declared(case.path, case.method, response.status_code)
    headers = spec.get("headers", {})
    for name, header in headers.items():
        if header.get("required") or name == "Allow":
            assert name in response.headers, f"{case.name}: no {name} header"
        if name in response.headers:
            assert not problems(header["schema"], response.headers[name]), (case.name, name,
                                                                             response.headers[name])
    if "Set-Cookie" in response.headers:
        assert "Set-Cookie" in headers, f"{case.name}: sets a cookie the document does not declare"
    content = spec.get("content")
    if not content:
        assert not response.content, f"{case.name}: a body where none is declared"
        return None
    media = response.headers.get("Content-Type", "").split(";")[0]
    assert media in content, f"{case.name}: {media} is not declared ({sorted(content)})"
    if media == "application/json":
        found = problems(content[media]["schema"], response.json())
        assert not found, f"{case.name}: {found[:5]}"
    if media == "text/html":
        return check_forms(response.text, case.name)
    return None


def check_request(case: Case) -> None:
    """A form case sends what the document declares for the operation, no field more."""
    if case.form is None:
        return
    media = "multipart/form-data" if case.files is not None else "application/x-www-form-urlencoded"
    content = OPENAPI["paths"][case.path][case.method]["requestBody"]["content"]
    assert media in content, f"{case.name}: sent as {media}, declared {sorted(content)}"
    sent: dict[str, Any] = dict(case.form)
    for name in case.files or {}:
        sent[name] = [f"the bytes of {name}"]
    found = problems(content[media]["schema"], sent)
    assert not found, f"{case.name}: {found}"


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
    browser = server.browsers.setdefault(case.browser, Browser()) if case.browser else None
    data: Any = case.data
    if case.form is not None:
        data = {k: (browser.csrf if v == CSRF and browser else v) for k, v in case.form.items()}
    client = browser.session if browser else requests
    return client.request(case.method.upper(), server.url + case.url, json=case.json, data=data,
                          files=case.files, headers=case.headers, timeout=60, allow_redirects=False)


def drive(server: Server, case: Case) -> None:
    """Send ``case``, check the answer; a page shown to a browser gives it its CSRF token."""
    check_request(case)
    forms = check(case, send(server, case))
    if forms is not None and case.browser and "csrf" in forms.values:
        server.browsers[case.browser].csrf = forms.values["csrf"]


def test_every_live_answer_is_the_one_declared(served: Server) -> None:
    for case in cases(served):
        drive(served, case)


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
    for case in (c for c in cases(served) if c.path.startswith("/admin/") and c.status != 405):
        absent = Case(f"{case.name}, no admin token configured", case.path, case.method, case.url,
                      404, form=case.form and {**case.form, "csrf": "x"}, files=case.files)
        drive(Server(server, served.rules_dir), absent)


def test_an_undeclared_member_fails_the_check(served: Server) -> None:
    """The check can fail: a readiness answer with one member more is refused."""
    case = Case("readiness", "/readyz", "get", "/readyz", 200)
    response = send(served, case)
    body = response.json()
    body["surprise"] = True
    response._content = json.dumps(body).encode()
    with pytest.raises(AssertionError, match="surprise"):
        check(case, response)


def test_every_declared_status_is_received_by_some_case(served: Server) -> None:
    received = {(c.path, c.method, str(c.status)) for c in cases(served)}
    received |= {("/admin/rules/reload", "post", "422")}
    received |= {(c.path, c.method, "404") for c in cases(served)
                 if c.path.startswith("/admin/") and c.status != 405}
    declared_all = {(path, method, status) for path, item in OPENAPI["paths"].items()
                    for method, op in item.items() for status in op["responses"]}
    assert declared_all - received - set(ELSEWHERE) == set()
    assert received <= declared_all


def test_every_route_and_method_of_the_service_is_described(tmp_path: Path) -> None:
    app = make_app(Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}", admin_token="x"))
    described = {(path, method) for path, item in OPENAPI["paths"].items() for method in item}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule).replace("{service_id}", "{id}")
        for method in sorted(rule.methods - {"HEAD"} - ({"OPTIONS"} if rule.provide_automatic_options
                                                         and not path.startswith("/cds-services")
                                                         else set())):
            assert (path, method.lower()) in described, f"{method} {path} is not in openapi.yaml"


def test_strict_schemas_close_every_object() -> None:
    schema = strict(copy.deepcopy(OPENAPI["components"]["schemas"]["Readiness"]))
    assert schema["additionalProperties"] is False
    assert schema["properties"]["rules"]["additionalProperties"] is False


# --- Request bodies: each constraint the schemas declare is one the server enforces -----------

#: Keywords that refuse a value (descriptions and `additionalProperties: true` refuse nothing).
REFUSING = ("type", "enum", "pattern", "format", "maxLength", "minLength", "minimum", "maxItems",
            "minItems", "required", "not", "anyOf")


def constraints(name: str) -> set[str]:
    """``Schema.member:keyword`` for each refusing keyword of a request schema and of the schemas
    it uses, each schema counted once however often it is used. The branches of a ``oneOf`` are
    named by the value that selects them (``OrderSelect|order-select``); what a ``not`` or an
    ``anyOf`` holds is one constraint, the keyword's own."""
    found: set[str] = set()
    seen = {name}

    def walk(node: dict[str, Any], where: str) -> None:
        if "$ref" in node:
            target = node["$ref"].removeprefix("#/components/schemas/")
            if target not in seen:
                seen.add(target)
                walk(OPENAPI["components"]["schemas"][target], target)
            return
        for keyword in REFUSING:
            if keyword == "required":
                found.update(f"{where}:required:{member}" for member in node.get("required", ()))
            elif keyword in node:
                found.add(f"{where}:{keyword}")
        for member, sub in node.get("properties", {}).items():
            walk(sub, f"{where}.{member}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict) and node[key]:
                walk(node[key], f"{where}[{key}]")
        for branch in node.get("oneOf", ()):
            selector = next(k for k, v in branch["properties"].items() if set(v) == {"enum"})
            label = branch["properties"][selector]["enum"][0]
            rest = {**branch, "properties": {k: v for k, v in branch["properties"].items() if k != selector}}
            walk(rest, f"{where}|{label}")

    walk(OPENAPI["components"]["schemas"][name], name)
    return found


DROP = object()  # a member removed from the body


@dataclass(frozen=True)
class Violation:
    constraint: str  # as ``constraints`` names it
    base: str  # which conforming request it starts from (``bases``)
    field: str | None  # the member the OperationOutcome must name (None: the body as a whole)
    bad: dict[str, Any]  # member path -> value (or DROP) that breaks the constraint
    twin: dict[str, Any] = field(default_factory=dict)  # what the conforming twin adds to the base
    status: int = 400


def at(body: Any, path: str, value: Any) -> Any:
    """``body`` with the member at ``path`` (``a.b[0].c``; ``""`` the body itself) set or dropped."""
    if not path:
        return value
    body = copy.deepcopy(body)
    parts = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]
    node = body
    for part in parts[:-1]:
        node = node[part]
    if value is DROP:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return body


def patched(body: Any, changes: dict[str, Any]) -> Any:
    for path, value in changes.items():
        body = at(body, path, value)
    return body


AUTH = {"access_token": "opaque-access-token", "token_type": "Bearer", "expires_in": 300,
        "scope": "patient/*.read", "subject": "spinehip-cds", "patient": "early-sciatica"}
WITH_AUTH = {"fhirServer": "http://127.0.0.1:9/fhir", "fhirAuthorization": AUTH}
ENCOUNTER = {"context.encounterId": "enc-1"}
ACCEPTED = {"feedback[0].outcome": "accepted", "feedback[0].acceptedSuggestions": [{"id": "s-1"}]}
REASON = {"feedback[0].overrideReason": {"reason": {"system": "http://example.org/reasons",
                                                    "code": "other", "display": "Other"},
                                         "userComment": "seen by the team"}}
CONTEXT_TYPES = {"PatientViewContext": "pv", "EncounterStartContext": "es", "OrderSelectContext": "os",
                 "OrderSignContext": "sign"}

VIOLATIONS = [
    Violation("HookRequest:type", "pv", None, {"": ["not", "an", "object"]}),
    *(Violation(f"HookRequest:required:{m}", "pv", m, {m: DROP}) for m in ("hook", "hookInstance",
                                                                           "context")),
    Violation("HookRequest.hook:type", "pv", "hook", {"hook": 7}),
    Violation("HookRequest.hook:enum", "pv", "hook", {"hook": "patient-vue"}),
    Violation("HookRequest.hookInstance:type", "pv", "hookInstance", {"hookInstance": 7}),
    Violation("HookRequest.hookInstance:pattern", "pv", "hookInstance", {"hookInstance": "instance-1"}),
    Violation("HookRequest.hookInstance:format", "pv", "hookInstance",
              {"hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2e"}),
    Violation("HookRequest.fhirServer:type", "pv", "fhirServer", {"fhirServer": 7}, WITH_AUTH),
    Violation("HookRequest.fhirServer:maxLength", "pv", "fhirServer",
              {"fhirServer": "http://127.0.0.1:9/" + "f" * 2048}, WITH_AUTH),
    Violation("HookRequest.fhirServer:pattern", "pv", "fhirServer", {"fhirServer": "http:///fhir"},
              WITH_AUTH),
    Violation("HookRequest:anyOf", "pv", "fhirServer", {"fhirServer": DROP}, WITH_AUTH),
    Violation("HookRequest.context:type", "pv", "context", {"context": "Patient/early-sciatica"}),
    Violation("HookRequest.prefetch:type", "pv", "prefetch", {"prefetch": []}),
    Violation("HookRequest.prefetch[additionalProperties]:type", "pv", "prefetch.patient",
              {"prefetch.patient": "Patient/early-sciatica"}),
    Violation("HookRequest.prefetch[additionalProperties]:required:resourceType", "pv", "prefetch.patient",
              {"prefetch.patient.resourceType": DROP}),
    Violation("HookRequest.prefetch[additionalProperties].resourceType:type", "pv", "prefetch.patient",
              {"prefetch.patient.resourceType": ["Patient"]}),
    Violation("HookRequest.prefetch[additionalProperties].resourceType:minLength", "pv", "prefetch.patient",
              {"prefetch.patient.resourceType": ""}),
    Violation("HookRequest.extension:type", "pv", "extension", {"extension": "org.example"},
              {"extension": {"org.example.trace": {"id": "t-1"}}}),
    Violation("FhirAuthorization:type", "pv", "fhirAuthorization", {"fhirAuthorization": "Bearer x"},
              WITH_AUTH),
    *(Violation(f"FhirAuthorization:required:{m}", "pv", f"fhirAuthorization.{m}",
                {f"fhirAuthorization.{m}": DROP}, WITH_AUTH)
      for m in ("access_token", "token_type", "expires_in", "scope", "subject")),
    *(Violation(f"FhirAuthorization.{m}:type", "pv", f"fhirAuthorization.{m}",
                {f"fhirAuthorization.{m}": ["x"]}, WITH_AUTH)
      for m in ("access_token", "token_type", "expires_in", "scope", "subject", "patient")),
    *(Violation(f"FhirAuthorization.{m}:pattern", "pv", f"fhirAuthorization.{m}",
                {f"fhirAuthorization.{m}": " "}, WITH_AUTH) for m in ("access_token", "scope", "subject")),
    Violation("FhirAuthorization.token_type:pattern", "pv", "fhirAuthorization.token_type",
              {"fhirAuthorization.token_type": "MAC"}, WITH_AUTH),
    Violation("FhirAuthorization.expires_in:minimum", "pv", "fhirAuthorization.expires_in",
              {"fhirAuthorization.expires_in": -1}, WITH_AUTH),
    Violation("FhirAuthorization.patient:pattern", "pv", "fhirAuthorization.patient",
              {"fhirAuthorization.patient": "Patient/early-sciatica"}, WITH_AUTH),
    *(Violation(f"{schema}:type", base, "context", {"context": ["userId"]}) for schema,
      base in CONTEXT_TYPES.items()),
    *(Violation(f"{schema}:required:{m}", base, f"context.{m}", {f"context.{m}": DROP},
                ENCOUNTER if base == "es" else {})
      for schema, base in CONTEXT_TYPES.items()
      for m in OPENAPI["components"]["schemas"][schema]["required"]),
    *(Violation(f"{schema}:not", base, "context.draftOrders",
                {"context.draftOrders": {"resourceType": "Bundle",
                                         "entry": []}}, ENCOUNTER if base == "es" else {})
      for schema, base in CONTEXT_TYPES.items() if base in ("pv", "es")),
    Violation("Reference:type", "pv", "context.userId", {"context.userId": 7}),
    Violation("Reference:pattern", "pv", "context.userId", {"context.userId": "spinehip-demo-clinician"}),
    Violation("FhirId:type", "pv", "context.patientId", {"context.patientId": 7}),
    Violation("FhirId:pattern", "pv", "context.patientId", {"context.patientId": "Patient/early-sciatica"}),
    Violation("OptionalFhirId:type", "pv", "context.encounterId", {"context.encounterId": 7}, ENCOUNTER),
    Violation("OptionalFhirId:pattern", "pv", "context.encounterId", {"context.encounterId": "a b"},
              ENCOUNTER),
    Violation("OrderSelectContext.selections:type", "os", "context.selections",
              {"context.selections": "ServiceRequest/early-sciatica-order-select-mri-mri"}),
    Violation("OrderSelectContext.selections:minItems", "os", "context.selections",
              {"context.selections": []}),
    Violation("DraftOrders:type", "os", "context.draftOrders", {"context.draftOrders": []}),
    Violation("DraftOrders:required:resourceType", "os", "context.draftOrders",
              {"context.draftOrders.resourceType": DROP}),
    Violation("DraftOrders.resourceType:type", "os", "context.draftOrders",
              {"context.draftOrders.resourceType": ["Bundle"]}),
    Violation("DraftOrders.resourceType:enum", "os", "context.draftOrders",
              {"context.draftOrders.resourceType": "Parameters"}),
    Violation("DraftOrders.entry:type", "sign", "context.draftOrders.entry",
              {"context.draftOrders.entry": {}}),
    Violation("DraftOrders.entry:maxItems", "sign", "context.draftOrders.entry",
              {"context.draftOrders.entry": [{}] * 501}),
    # Feedback
    Violation("FeedbackRequest:type", "fb", None, {"": [{"card": "c"}]}),
    Violation("FeedbackRequest:required:feedback", "fb", "feedback", {"feedback": DROP}),
    Violation("FeedbackRequest.feedback:type", "fb", "feedback", {"feedback": {"card": "c"}}),
    Violation("FeedbackRequest.feedback:minItems", "fb", "feedback", {"feedback": []}),
    Violation("FeedbackRequest.feedback:maxItems", "fb", "feedback",
              {"feedback": lambda body: body["feedback"] * 101}, status=413),
    Violation("FeedbackItem:type", "fb", "feedback[0]", {"feedback[0]": "overridden"}),
    *(Violation(f"FeedbackItem:required:{m}", "fb", f"feedback[0].{m}", {f"feedback[0].{m}": DROP})
      for m in ("card", "outcome", "outcomeTimestamp")),
    *(Violation(f"FeedbackItem.{m}:type", "fb", f"feedback[0].{m}", {f"feedback[0].{m}": 7})
      for m in ("card", "outcome", "outcomeTimestamp")),
    Violation("FeedbackItem.card:pattern", "fb", "feedback[0].card", {"feedback[0].card": "  "}),
    Violation("FeedbackItem.outcome:enum", "fb", "feedback[0].outcome", {"feedback[0].outcome": "ignored"}),
    Violation("FeedbackItem.outcomeTimestamp:pattern", "fb", "feedback[0].outcomeTimestamp",
              {"feedback[0].outcomeTimestamp": "2026-03-01T10:15Z"}),
    Violation("FeedbackItem.outcomeTimestamp:format", "fb", "feedback[0].outcomeTimestamp",
              {"feedback[0].outcomeTimestamp": "2026-13-01T10:15:00Z"}),
    Violation("FeedbackItem.acceptedSuggestions:type", "fb", "feedback[0].acceptedSuggestions",
              {"feedback[0].acceptedSuggestions": "s-1"}, ACCEPTED),
    Violation("FeedbackItem.acceptedSuggestions:minItems", "fb", "feedback[0].acceptedSuggestions",
              {"feedback[0].acceptedSuggestions": []}, ACCEPTED),
    Violation("FeedbackItem.acceptedSuggestions[items]:type", "fb", "feedback[0].acceptedSuggestions[0]",
              {"feedback[0].acceptedSuggestions[0]": "s-1"}, ACCEPTED),
    Violation("FeedbackItem.acceptedSuggestions[items]:required:id", "fb",
              "feedback[0].acceptedSuggestions[0].id",
              {"feedback[0].acceptedSuggestions[0].id": DROP}, ACCEPTED),
    Violation("FeedbackItem.acceptedSuggestions[items].id:type", "fb",
              "feedback[0].acceptedSuggestions[0].id",
              {"feedback[0].acceptedSuggestions[0].id": 7}, ACCEPTED),
    Violation("FeedbackItem.acceptedSuggestions[items].id:pattern", "fb",
              "feedback[0].acceptedSuggestions[0].id",
              {"feedback[0].acceptedSuggestions[0].id": ""}, ACCEPTED),
    Violation("FeedbackItem.overrideReason:type", "fb", "feedback[0].overrideReason",
              {"feedback[0].overrideReason": "other"}, REASON),
    Violation("FeedbackItem.overrideReason:anyOf", "fb", "feedback[0].overrideReason",
              {"feedback[0].overrideReason": {}}, REASON),
    Violation("FeedbackItem.overrideReason.reason:type", "fb", "feedback[0].overrideReason.reason",
              {"feedback[0].overrideReason.reason": "other"}, REASON),
    *(Violation(f"FeedbackItem.overrideReason.reason:required:{m}", "fb",
                f"feedback[0].overrideReason.reason.{m}",
                {f"feedback[0].overrideReason.reason.{m}": DROP}, REASON) for m in ("system", "code")),
    *(Violation(f"FeedbackItem.overrideReason.reason.{m}:{kind}", "fb",
                f"feedback[0].overrideReason.reason.{m}",
                {f"feedback[0].overrideReason.reason.{m}": value}, REASON)
      for m in ("system", "code", "display") for kind, value in (("type", 7), ("pattern", " "))),
    Violation("FeedbackItem.overrideReason.userComment:type", "fb", "feedback[0].overrideReason.userComment",
              {"feedback[0].overrideReason.userComment": ["seen"]}, REASON),
    Violation("FeedbackItem.overrideReason.userComment:maxLength", "fb",
              "feedback[0].overrideReason.userComment",
              {"feedback[0].overrideReason.userComment": "x" * 2001}, REASON),
    Violation("FeedbackItem|accepted:required:acceptedSuggestions", "fb", "feedback[0].acceptedSuggestions",
              {"feedback[0].acceptedSuggestions": DROP}, ACCEPTED),
    Violation("FeedbackItem|accepted:not", "fb", "feedback[0].overrideReason", REASON, ACCEPTED),
    Violation("FeedbackItem|overridden:not", "fb", "feedback[0].acceptedSuggestions",
              {"feedback[0].acceptedSuggestions": [{"id": "s-1"}]}),
]


def request_bases(server: Server) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """A conforming request per kind: (path it is posted to, its schema, body); each answered 200
    from its own prefetch, so no FHIR server is ever asked."""
    now = datetime.now(UTC)
    requests_dir = PROJECT_ROOT / "fixtures" / "requests"
    pv = fixtures.load_request(requests_dir / "early-sciatica.json", now)
    order_select = fixtures.load_request(requests_dir / "early-sciatica-order-select-mri.json", now)
    order_sign = {**copy.deepcopy(order_select), "hook": "order-sign"}
    del order_sign["context"]["selections"]
    encounter = {**copy.deepcopy(pv), "hook": "encounter-start"}
    encounter["context"]["encounterId"] = "enc-1"
    feedback = {"feedback": [{"card": server.card_uuid, "outcome": "overridden",
                              "outcomeTimestamp": now.isoformat(timespec="milliseconds")}]}
    services = "/cds-services/spinehip-"
    return {"pv": (f"{services}patient-view", "HookRequest", pv),
            "es": (f"{services}encounter-start", "HookRequest", encounter),
            "os": (f"{services}order-select", "HookRequest", order_select),
            "sign": (f"{services}order-sign", "HookRequest", order_sign),
            "fb": (f"{services}patient-view/feedback", "FeedbackRequest", feedback)}


def test_every_request_constraint_declared_is_enforced_and_its_twin_accepted(served: Server) -> None:
    """Per constraint of HookRequest and FeedbackRequest: a request breaking it is refused with an
    OperationOutcome naming the member, and its twin, the same request kept within it, is
    answered. Each refused request fails the schema too, so no 400 here is one the document
    does not announce."""
    declared_constraints = constraints("HookRequest") | constraints("FeedbackRequest")
    assert {v.constraint for v in VIOLATIONS} == declared_constraints
    bases = request_bases(served)
    answered: dict[str, int] = {}
    for v in VIOLATIONS:
        url, schema_name, base = bases[v.base]
        schema = {"$ref": f"#/components/schemas/{schema_name}"}
        twin = patched(base, v.twin)
        bad = patched(twin, {path: value(twin) if callable(value) else value for path,
                             value in v.bad.items()})
        assert not problems(schema, twin), (v.constraint, problems(schema, twin))
        assert problems(schema, bad), f"{v.constraint}: the refused request passes the schema"
        key = json.dumps(twin, sort_keys=True)
        if key not in answered:
            answered[key] = requests.post(served.url + url, json=twin, timeout=60).status_code
        assert answered[key] == 200, f"{v.constraint}: the conforming twin got {answered[key]}"
        path = "/cds-services/{id}/feedback" if v.base == "fb" else "/cds-services/{id}"
        reply = requests.post(served.url + url, json=bad, timeout=60)
        check(Case(v.constraint, path, "post", url, v.status), reply)
        named = [e for issue in reply.json()["issue"] for e in issue.get("expression", [])]
        assert (named == [v.field]) if v.field else not named, (v.constraint, reply.json())


def test_the_limits_and_patterns_the_server_checks_are_the_ones_the_schemas_state() -> None:
    """openapi.yaml restates the server's checks; a change to one side fails here."""
    schemas = OPENAPI["components"]["schemas"]
    hook = schemas["HookRequest"]["properties"]
    item = schemas["FeedbackItem"]["properties"]
    anchored = {
        hook["hookInstance"]["pattern"]: rq.UUID.pattern,
        hook["fhirServer"]["pattern"]: rq.FHIR_SERVER.pattern,
        schemas["FhirId"]["pattern"]: FHIR_ID.pattern,
        schemas["OptionalFhirId"]["pattern"]: FHIR_ID.pattern,
        schemas["FhirAuthorization"]["properties"]["patient"]["pattern"]: FHIR_ID.pattern,
        schemas["Reference"]["pattern"]: REFERENCE.pattern,
        item["outcomeTimestamp"]["pattern"]: fb.INSTANT.pattern,
    }
    for stated, checked in anchored.items():
        assert re.compile(stated).pattern.strip("^$") == checked.replace("(?:", "(")
    assert hook["fhirServer"]["maxLength"] == rq.MAX_URL_CHARS
    assert schemas["DraftOrders"]["properties"]["entry"]["maxItems"] == rq.MAX_DRAFT_ORDERS
    assert schemas["FeedbackRequest"]["properties"]["feedback"]["maxItems"] == fb.MAX_FEEDBACK_ITEMS
    assert item["overrideReason"]["properties"]["userComment"]["maxLength"] == fb.MAX_COMMENT_CHARS
    assert set(hook["hook"]["enum"]) == set(HOOKS)
