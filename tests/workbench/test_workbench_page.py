"""/admin/rules as a browser and an attacker meet it: sign-in, cookie, CSRF, headers, trials."""

from __future__ import annotations

import html
import io
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask

from service import fixtures
from service.cdshooks.services import load_services
from service.config import PROJECT_ROOT, Settings
from service.engine import load_ruleset
from service.engine.casetests import run_all
from service.impact import Workload, replay
from service.impact.calls import draft_panel
from service.impact.report import change_rows
from service.impact.sources import demo_records
from service.security.admin_session import AdminSessions
from tests.impact.windows import (
    RULES,
    SIX_WEEKS,
    copy_with_window,
    patients_between,
    r05_with_own_window,
)
from tests.support.app import make_app
from tests.support.rules import hook_ruleset_lines

TOKEN = "workbench-admin-token-7c1d"
R05 = "rules/r05-spine-pattern-mri.yaml"


def make_client(tmp_path: Path, **overrides):
    settings = Settings(**{"database_url": f"sqlite:///{tmp_path / 'store.db'}",
                           "admin_token": TOKEN, **overrides})
    return make_app(settings).test_client()


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def signed_in(client):
    page = client.get("/admin/rules").get_data(as_text=True)
    reply = client.post("/admin/rules/sign-in", data={"csrf": csrf_of(page), "token": TOKEN})
    assert reply.status_code == 303
    return client


def table_rows(page: str, table_id: str) -> list[tuple[str, ...]]:
    body = page.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0].split("<tbody>", 1)[1]
    return [tuple(html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S))
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def test_absent_without_an_admin_token(tmp_path) -> None:
    client = make_client(tmp_path, admin_token=None)
    assert client.get("/admin/rules").status_code == 404
    assert client.post("/admin/rules/try").status_code == 404
    assert client.get("/admin/rules/static/workbench.css").status_code == 404


def test_sign_in_sets_a_strict_http_only_cookie_and_shows_the_served_rules(tmp_path) -> None:
    client = make_client(tmp_path)
    first = client.get("/admin/rules")
    assert first.status_code == 200 and 'name="token"' in first.get_data(as_text=True)
    assert "served-version" not in first.get_data(as_text=True)
    reply = client.post("/admin/rules/sign-in",
                        data={"csrf": csrf_of(first.get_data(as_text=True)), "token": TOKEN})
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # development over plain HTTP
    assert TOKEN not in cookie
    page = client.get("/admin/rules").get_data(as_text=True)
    served = load_ruleset(RULES)
    assert served.full_version in page
    rule_ids = [row[0] for row in table_rows(page, "rules")]
    assert rule_ids == [r.id for r in served.rules]
    statuses = {row[0]: row[2] for row in table_rows(page, "rules")}
    r05 = next(r for r in served.rules if r.id == "spine-pattern-mri")
    assert statuses["spine-pattern-mri"].startswith(r05.spec.status)
    parameters = {row[0]: row[1] for row in table_rows(page, "parameters")}
    assert parameters["imaging_wait"] == "6 weeks"
    assert set(parameters) == set(served.parameters)
    assert "Loaded without errors" in page


def test_the_cookie_is_secure_in_production(tmp_path, monkeypatch) -> None:


    with Flask(__name__).test_request_context():
        from flask import make_response

        response = make_response("")
        AdminSessions(TOKEN, secure=True).issue(response, signed_in=True)
        assert "Secure" in response.headers["Set-Cookie"]


def test_wrong_token_and_missing_csrf_are_refused(tmp_path) -> None:
    client = make_client(tmp_path)
    page = client.get("/admin/rules").get_data(as_text=True)
    wrong = client.post("/admin/rules/sign-in", data={"csrf": csrf_of(page), "token": "guess"})
    assert wrong.status_code == 401 and "not the admin token" in wrong.get_data(as_text=True)
    assert client.post("/admin/rules/sign-in", data={"token": TOKEN}).status_code == 403
    assert client.get("/admin/rules").status_code == 200  # still the sign-in form
    assert "served-version" not in client.get("/admin/rules").get_data(as_text=True)
    # A forged session cookie is no session at all.
    client.set_cookie("spinehip_admin", "eyJpZCI6IngiLCJpbiI6dHJ1ZX0.forged.sig", path="/admin")
    assert "served-version" not in client.get("/admin/rules").get_data(as_text=True)
    assert client.post("/admin/rules/try", data={"csrf": "x"}).status_code == 401


def test_signed_in_forms_need_the_session_csrf_token(tmp_path) -> None:
    client = signed_in(make_client(tmp_path))
    text = (RULES / R05).read_text()
    assert client.post("/admin/rules/try", data={"path": R05, "content": text}).status_code == 403
    other = signed_in(make_client(tmp_path / "other"))
    foreign = csrf_of(other.get("/admin/rules").get_data(as_text=True))
    assert client.post("/admin/rules/try",
                       data={"csrf": foreign, "path": R05, "content": text}).status_code == 403
    assert client.post("/admin/rules/reload-now").status_code == 403
    assert client.post("/admin/rules/sign-out").status_code == 403


def test_page_headers_allow_only_what_the_page_needs(tmp_path) -> None:
    client = signed_in(make_client(tmp_path))
    reply = client.get("/admin/rules")
    csp = reply.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "style-src 'self'" in csp and "form-action 'self'" in csp
    assert "script-src" not in csp and "unsafe-inline" not in csp
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Cache-Control"] == "no-store"
    page = reply.get_data(as_text=True)
    assert "<script" not in page and "http://" not in page.split("<main>")[0]
    assert client.get("/admin/rules/static/workbench.css").status_code == 200


def test_an_edit_shows_the_same_changes_as_the_command_and_serves_nothing(tmp_path) -> None:
    client = signed_in(make_client(tmp_path))
    page = client.get("/admin/rules").get_data(as_text=True)
    served = load_ruleset(RULES).full_version
    copy = copy_with_window(tmp_path, 49)  # the window is defined once, in ruleset.yaml
    reply = client.post("/admin/rules/try", data={
        "csrf": csrf_of(page), "path": "ruleset.yaml", "content": (copy / "ruleset.yaml").read_text()})
    assert reply.status_code == 200
    shown = reply.get_data(as_text=True)
    # The same edit through the command's library, on the whole copied directory.
    now = datetime.now(UTC)
    workload = Workload(load_ruleset(RULES), load_ruleset(copy),
                        tuple(load_services(PROJECT_ROOT / "hooks")), now,
                        draft_panel(PROJECT_ROOT / "fixtures"))
    expected = replay(workload, demo_records(PROJECT_ROOT / "fixtures", now), jobs=1)
    assert set(expected.changed_patients) == patients_between(SIX_WEEKS, 49)
    assert table_rows(shown, "impact-changes") == [tuple(map(str, r)) for r in change_rows(expected)]
    # The window's own boundary cases notice, each named by its id as `rules test` names it.
    failing = {r.case_id for r in run_all(load_ruleset(copy)) if not r.passed}
    assert "spine-pattern-day-43" in failing
    shown_failing = {re.match(r"<code>([a-z0-9-]+)</code> ", row[1]).group(1)
                     for row in table_rows(shown, "cases-failed")}
    assert shown_failing == failing
    assert served in shown
    again = client.get("/admin/rules").get_data(as_text=True)
    assert f'id="served-version">{served}<' in again


def test_one_rule_file_alone_can_be_tried(tmp_path) -> None:
    client = signed_in(make_client(tmp_path))
    page = client.get("/admin/rules").get_data(as_text=True)
    edited = r05_with_own_window(tmp_path, 49).read_text()
    reply = client.post("/admin/rules/try", data={"csrf": csrf_of(page), "path": R05,
                                                  "content": edited})
    rows = table_rows(reply.get_data(as_text=True), "impact-changes")
    assert {r[0] for r in rows} == patients_between(SIX_WEEKS, 49)
    assert {(r[2], r[3]) for r in rows} == {("spine-pattern-mri", "disappeared")}


def test_a_broken_rule_shows_its_file_and_line(tmp_path) -> None:
    client = signed_in(make_client(tmp_path))
    page = client.get("/admin/rules").get_data(as_text=True)
    text = (RULES / R05).read_text().replace("indicator: info", "indicator: loud")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "indicator: loud" in row)
    reply = client.post("/admin/rules/try", data={"csrf": csrf_of(page), "path": R05,
                                                  "content": text})
    assert reply.status_code == 422
    rows = table_rows(reply.get_data(as_text=True), "trial-errors")
    assert rows and rows[0][0].startswith(f"{RULES / R05}:{line}:")
    assert "indicator" in rows[0][1] + rows[0][2]
    assert "impact-changes" not in reply.get_data(as_text=True)


def test_a_trial_renaming_the_rule_set_is_refused_as_a_reload_would_be(tmp_path) -> None:
    """The hooks name the rule set; a renamed one is shown refused at each hook's ``ruleset:``
    line, and the same file with the name kept is tried (its twin)."""
    client = signed_in(make_client(tmp_path))
    page = client.get("/admin/rules").get_data(as_text=True)
    text = (RULES / "ruleset.yaml").read_text()
    renamed = client.post("/admin/rules/try", data={
        "csrf": csrf_of(page), "path": "ruleset.yaml",
        "content": text.replace("ruleset: spine-hip", "ruleset: spine-hip-2")})
    assert renamed.status_code == 422
    rows = table_rows(renamed.get_data(as_text=True), "trial-errors")
    assert {row[0].rsplit(":", 1)[0] for row in rows} == {
        f"{path}:{line}" for path, line in hook_ruleset_lines().items()}
    kept = client.post("/admin/rules/try", data={
        "csrf": csrf_of(page), "path": "ruleset.yaml",
        "content": text.replace("version: 2026.11.0", "version: 2026.11.9")})
    assert kept.status_code == 200, kept.get_data(as_text=True)[:500]
    assert "trial-errors" not in kept.get_data(as_text=True)


@pytest.mark.parametrize("name", ["../ruleset.yaml", "/etc/passwd.yaml", "notes.txt"])
def test_file_names_outside_the_rules_are_refused(tmp_path, name) -> None:
    client = signed_in(make_client(tmp_path))
    page = client.get("/admin/rules").get_data(as_text=True)
    reply = client.post("/admin/rules/try", data={"csrf": csrf_of(page), "path": name,
                                                  "content": "rules: []\n"})
    assert reply.status_code == 422
    assert "not a rule file name" in reply.get_data(as_text=True)


def test_an_oversized_upload_is_refused_not_truncated(tmp_path) -> None:
    client = signed_in(make_client(tmp_path))
    page = client.get("/admin/rules").get_data(as_text=True)
    big = b"# " + b"x" * (300 * 1024) + b"\n"
    reply = client.post("/admin/rules/try", data={
        "csrf": csrf_of(page), "files": (io.BytesIO(big), "r05-spine-pattern-mri.yaml")},
        content_type="multipart/form-data")
    assert reply.status_code == 422 and "the limit is" in reply.get_data(as_text=True)


def test_audit_rates_come_from_recorded_calls(tmp_path) -> None:
    client = signed_in(make_client(tmp_path))
    body = fixtures.load_request(PROJECT_ROOT / "fixtures/requests/s01-sciatica-8-weeks.json",
                                 datetime.now(UTC))
    for _ in range(2):
        assert client.post("/cds-services/spinehip-patient-view", json=body).status_code == 200
    page = client.get("/admin/rules").get_data(as_text=True)
    assert "2 audited hook calls." in page
    rates = {row[0]: row for row in table_rows(page, "rates")}
    assert rates["spine-pattern-mri"][1:3] == ("2", "100%")


def test_reload_from_the_page_shows_rejected_files_by_line_and_keeps_serving(tmp_path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    client = signed_in(make_client(tmp_path, rules_dir=rules, rules_watch_s=0.0))
    page = client.get("/admin/rules").get_data(as_text=True)
    served = re.search(r'id="served-version">([^<]+)<', page).group(1)
    broken = rules / R05
    good = broken.read_text()
    broken.write_text(good.replace("    selection: at-most-one", "    selecton: at-most-one"))
    line = next(i for i, row in enumerate(broken.read_text().splitlines(), 1) if "selecton" in row)
    reply = client.post("/admin/rules/reload-now", data={"csrf": csrf_of(page)})
    assert reply.status_code == 303
    page = client.get("/admin/rules").get_data(as_text=True)
    [error] = table_rows(page, "reload-errors")
    assert error[0].startswith(f"{broken}:{line}:")
    assert f'id="served-version">{served}<' in page
    broken.write_text(good + "# reviewed\n")
    client.post("/admin/rules/reload-now", data={"csrf": csrf_of(page)})
    page = client.get("/admin/rules").get_data(as_text=True)
    assert "Loaded without errors" in page and f'id="served-version">{served}<' not in page


def test_a_trial_giving_days_to_a_reason_that_does_not_snooze_is_refused_at_its_line(tmp_path) -> None:
    """``{days}`` is the snooze length in force; on a reason that does not snooze it would state
    a length nothing applies. The trial refuses it where it is written; the snooze reason's own
    text is tried and accepted (its twin)."""
    client = signed_in(make_client(tmp_path))
    page = client.get("/admin/rules").get_data(as_text=True)
    text = (RULES / "ruleset.yaml").read_text()
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("  patient-declined:"))
    wrong = client.post("/admin/rules/try", data={
        "csrf": csrf_of(page), "path": "ruleset.yaml",
        "content": text.replace("  patient-declined: Patient declined",
                                "  patient-declined: Patient declined; ask again in {days}")})
    assert wrong.status_code == 422
    [row] = table_rows(wrong.get_data(as_text=True), "trial-errors")
    assert row[0].startswith(f"{RULES / 'ruleset.yaml'}:{line}:") and "patient-declined" in row[1]
    snooze = next(t for t in text.splitlines() if t.startswith("  snooze-30d:"))
    right = client.post("/admin/rules/try", data={
        "csrf": csrf_of(page), "path": "ruleset.yaml",
        "content": text.replace(snooze, "  snooze-30d: Seen to; hidden for {days}")})
    assert right.status_code == 200, right.get_data(as_text=True)[:500]
    assert "trial-errors" not in right.get_data(as_text=True)


def test_the_override_reasons_are_shown_as_cards_offer_them(tmp_path) -> None:
    """The snooze reason's text and length are the settings' (14 days here); the others do not
    snooze."""
    client = signed_in(make_client(tmp_path, snooze_reasons=(("snooze-30d", 14),)))
    rows = {row[0]: row[1:] for row in table_rows(client.get("/admin/rules").get_data(as_text=True),
                                                   "override-reasons")}
    assert rows["snooze-30d"] == ("Addressed already; do not show again for 14 days", "14 days")
    assert rows["patient-declined"] == ("Patient declined", "")
    assert set(rows) == set(load_ruleset(RULES).override_reasons)
