"""The admin rule workbench at /admin/rules: see the served rules and try an edit on the side.

Thin: sessions come from ``security.admin_session``, everything computed from
``service.workbench``; this module reads forms and renders templates. Absent (404) when no
SPINEHIP_ADMIN_TOKEN is set, like the admin API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from flask import Blueprint, Response, abort, make_response, redirect, render_template, request, url_for
from sqlalchemy.exc import SQLAlchemyError

from service.impact.report import CHANGE_HEADERS, TOTAL_HEADERS, change_rows, total_rows
from service.security.admin_session import AdminSession, AdminSessions
from service.web.runtime import runtime
from service.workbench.overview import audit_rates, rule_rows
from service.workbench.trial import (
    EditRejected,
    Trial,
    TrialFailed,
    rule_files,
    served_files,
    target_path,
    try_edit,
)
from service.yamlsource import MAX_REPORTED_ERRORS, ConfigFileError

bp = Blueprint("workbench", __name__, url_prefix="/admin/rules", template_folder="templates",
               static_folder="static", static_url_path="/static")
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")


def _sessions() -> AdminSessions:
    settings = runtime().settings
    return AdminSessions(settings.admin_token or "", secure=settings.production)


@bp.before_request
def _only_when_configured() -> None:
    if not runtime().settings.admin_token:
        abort(404)


@bp.after_request
def _page_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def _signed_in() -> AdminSession:
    session = _sessions().current(request)
    if session is None or not session.signed_in:
        abort(401)
    return session


def _checked_form(session: AdminSession | None) -> None:
    if not _sessions().csrf_ok(session, request.form.get("csrf")):
        abort(403)


def _sign_in_page(session: AdminSession | None, error: str | None = None, status: int = 200):
    response = make_response("", status)
    if session is None:
        session = _sessions().issue(response, signed_in=False)
    response.set_data(render_template("workbench/sign_in.html", error=error,
                                      csrf=_sessions().csrf_token(session)))
    return response


def _page(session: AdminSession, *, trial: Trial | None = None, edit_path: str = "",
          edit_text: str = "", error: str | None = None, status: int = 200):
    rt = runtime()
    ruleset = rt.rules.current
    try:
        calls, rates = audit_rates(rt.store)
        audit_error = None
    except SQLAlchemyError as exc:
        calls, rates, audit_error = 0, [], f"the audit database cannot be read ({type(exc).__name__})"
    html = render_template(
        "workbench/page.html", csrf=_sessions().csrf_token(session), ruleset=ruleset,
        rules=rule_rows(ruleset), loaded_at=rt.rules.loaded_at,
        last_error=rt.rules.last_error or [], max_errors=MAX_REPORTED_ERRORS, calls=calls,
        rates=rates, audit_error=audit_error,
        files=rule_files(ruleset.rules_dir), edit_path=edit_path, edit_text=edit_text,
        trial=trial, error=error, change_headers=CHANGE_HEADERS, total_headers=TOTAL_HEADERS,
        change_rows=change_rows(trial.impact) if trial and trial.impact else [],
        total_rows=total_rows(trial.impact) if trial and trial.impact else [],
    )
    return html, status


@bp.get("")
def page():
    session = _sessions().current(request)
    if session is None or not session.signed_in:
        return _sign_in_page(session)
    edit_path, edit_text = request.args.get("edit", ""), ""
    if edit_path:
        rules_dir = runtime().rules.current.rules_dir
        try:
            edit_path = target_path(rules_dir, edit_path)
            edit_text = served_files(rules_dir)[edit_path].read_text(encoding="utf-8")
        except (EditRejected, KeyError, OSError, ConfigFileError) as exc:
            return _page(session, error=f"cannot open {edit_path}: {exc}", status=404)
    return _page(session, edit_path=edit_path, edit_text=edit_text)


@bp.post("/sign-in")
def sign_in():
    sessions = _sessions()
    session = sessions.current(request)
    _checked_form(session)
    if not sessions.token_matches(request.form.get("token", "")):
        return _sign_in_page(session, "That is not the admin token.", 401)
    response = redirect(url_for(".page"), 303)
    sessions.issue(response, signed_in=True)
    return response


@bp.post("/sign-out")
def sign_out():
    _checked_form(_sessions().current(request))
    response = redirect(url_for(".page"), 303)
    _sessions().end(response)
    return response


@bp.post("/try")
def try_change():
    session = _signed_in()
    _checked_form(session)
    edits: dict[str, bytes] = {}
    for upload in request.files.getlist("files"):
        if upload.filename:
            edits[Path(upload.filename).name] = upload.read()
    path, text = request.form.get("path", "").strip(), request.form.get("content", "")
    if text.strip():
        if not path:
            return _page(session, edit_text=text, error="Name the file the edited text replaces.",
                         status=422)
        edits[path] = text.replace("\r\n", "\n").encode("utf-8")
    if not edits:
        return _page(session, error="Upload a rule file or paste one to try.", status=422)
    rt = runtime()
    try:
        trial = try_edit(rt.rules.current, edits, loader=rt.rules.loader,
                         services=tuple(rt.services.values()),
                         fixtures_dir=rt.settings.fixtures_dir, now=datetime.now(UTC))
    except (EditRejected, TrialFailed) as exc:
        return _page(session, edit_path=path, edit_text=text, error=str(exc), status=422)
    return _page(session, trial=trial, edit_path=path, edit_text=text,
                 status=422 if trial.errors else 200)


@bp.post("/reload-now")
def reload_now():
    _checked_form(_signed_in())
    runtime().rules.reload()
    return redirect(url_for(".page"), 303)
