"""Browser sessions for the admin pages: sign in once with the admin token, then a cookie.

The cookie holds a signed session id and whether it signed in; nothing else, and never the
token. It is HttpOnly, SameSite=Strict, scoped to ``/admin``, and Secure in production. Every
form carries a CSRF token bound to the session id. A visitor gets an anonymous session first,
so the sign-in form itself is CSRF-protected, and signing in issues a fresh id (no fixation).
The signing key is derived from the admin token: replicas agree, and rotating the token ends
every session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from flask import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "spinehip_admin"
COOKIE_PATH = "/admin"
MAX_AGE_S = 8 * 3600


@dataclass(frozen=True)
class AdminSession:
    id: str
    signed_in: bool


class AdminSessions:
    def __init__(self, admin_token: str, *, secure: bool):
        self._token = admin_token.encode()
        self._key = hmac.new(self._token, b"spinehip admin session key", hashlib.sha256).digest()
        self._signer = URLSafeTimedSerializer(self._key, salt="spinehip-admin-session")
        self.secure = secure

    def token_matches(self, given: str) -> bool:
        return hmac.compare_digest(given.strip().encode(), self._token)

    def current(self, request: Request) -> AdminSession | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self._signer.loads(raw, max_age=MAX_AGE_S)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            return None
        return AdminSession(data["id"], data.get("in") is True)

    def issue(self, response: Response, *, signed_in: bool) -> AdminSession:
        """A new session (new id) set as the cookie on ``response``."""
        session = AdminSession(secrets.token_urlsafe(18), signed_in)
        response.set_cookie(COOKIE, self._signer.dumps({"id": session.id, "in": signed_in}),
                            max_age=MAX_AGE_S, path=COOKIE_PATH, httponly=True,
                            samesite="Strict", secure=self.secure)
        return session

    def end(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="Strict",
                               secure=self.secure)

    def csrf_token(self, session: AdminSession) -> str:
        return hmac.new(self._key, b"csrf:" + session.id.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: AdminSession | None, given: str | None) -> bool:
        return session is not None and isinstance(given, str) and \
            hmac.compare_digest(given.encode(), self.csrf_token(session).encode())
