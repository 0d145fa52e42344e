"""Admin endpoint: reload the rule files now, authenticated with the admin bearer token.

With no SPINEHIP_ADMIN_TOKEN configured the endpoint does not exist (404), so a deployment
never exposes it by accident. A rejected rule set answers 422 with the located errors (the first
ones, and the count of all) and the version that keeps serving.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, abort, jsonify, request

from service.security.guard import bearer_token
from service.web.runtime import runtime
from service.yamlsource import reported

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _authorised(expected: str) -> bool:
    token = bearer_token(request.headers.get("Authorization")) or ""
    return bool(token) and hmac.compare_digest(token.encode(), expected.encode())


@bp.post("/rules/reload")
def reload_rules():
    rt = runtime()
    token = rt.settings.admin_token
    if not token:
        abort(404)
    if not _authorised(token):
        return jsonify({"error": "admin token required"}), 401, {"WWW-Authenticate": "Bearer"}
    swapped = rt.rules.reload()
    body = {"reloaded": swapped, "version": rt.rules.current.full_version}
    if not swapped:
        errors = rt.rules.last_error or []
        body["errors"] = [e.as_dict() for e in reported(errors)]
        body["errorCount"] = len(errors)
        return jsonify(body), 422
    return jsonify(body), 200
