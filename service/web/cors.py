"""CORS for browser clients such as the CDS Hooks sandbox (SBX-06).

Preflights are answered without authentication, and every response, errors included, carries
the CORS headers: otherwise the browser hides a 412 or 401 and the user sees nothing useful.
"""

from __future__ import annotations

from flask import Flask, Response, request

ALLOWED_HEADERS = "Content-Type, Authorization"
ALLOWED_METHODS = "GET, POST, OPTIONS"


def init_app(app: Flask, origins: tuple[str, ...]) -> None:
    any_origin = "*" in origins

    @app.after_request
    def _cors_headers(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if any_origin:
            response.headers["Access-Control-Allow-Origin"] = "*"
        elif origin and origin in origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers.add("Vary", "Origin")
        else:
            return response
        response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Expose-Headers"] = "Location, Content-Location, X-Request-Id"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Max-Age"] = "600"
        return response
