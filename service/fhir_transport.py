"""Bounded HTTP for the FHIR fallback: a call's sockets end at its deadline, answers are capped
once decoded.

A per-read timeout does not bound a server that sends one byte before each timeout, and giving
up on a future does not stop the thread that reads for it: that thread keeps a fetch slot for as
long as the server likes. So every connection a hook call's threads use is recorded on the call's
:class:`CallScope`, and ending the call (deadline passed, or another query failed) shuts those
sockets down, which ends a blocked connect or read at once. Bodies are read raw and inflated here
with an output limit, so a small gzip answer cannot grow past the cap in memory.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

ACCEPT_ENCODING = "gzip, deflate"
_CHUNK_BYTES = 64 * 1024
_INFLATE_ANY_HEADER = zlib.MAX_WBITS | 32  # gzip or zlib framing, detected from the stream
_current = threading.local()


class AnswerRefused(Exception):
    """An answer the service will not read; the message is safe to show and names the limit."""


class CallScope:
    """One hook call's FHIR reads: the deadline, the byte budget, the connections in use."""

    def __init__(self, deadline_s: float, max_total_bytes: int) -> None:
        self.deadline_s = deadline_s
        self.deadline = time.monotonic() + deadline_s
        self.ended: str | None = None
        self._max_total_bytes = max_total_bytes
        self._bytes_left = max_total_bytes
        self._lock = threading.Lock()
        self._connections: set[HTTPConnection] = set()

    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()

    def end(self, reason: str) -> None:
        """Refuse further reads and cut every connection in use; blocked reads return now."""
        with self._lock:
            self.ended = self.ended or reason
            connections = list(self._connections)
        for connection in connections:
            _cut(connection)

    def charge(self, size: int) -> None:
        """Count ``size`` decoded bytes against the call's total."""
        with self._lock:
            self._bytes_left -= size
            over = self._bytes_left < 0
        if over:
            raise AnswerRefused(
                f"the FHIR answers for this hook call exceed {self._max_total_bytes} bytes in total"
            )

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Within this block the connections this thread uses belong to the call."""
        mine: set[HTTPConnection] = set()
        _current.scope, _current.mine = self, mine
        try:
            yield
        finally:
            _current.scope = _current.mine = None
            with self._lock:
                self._connections -= mine

    def _track(self, connection: HTTPConnection, mine: set[HTTPConnection]) -> None:
        with self._lock:
            self._connections.add(connection)
            mine.add(connection)
            ended = self.ended is not None
        if ended:
            _cut(connection)


def _cut(connection: HTTPConnection) -> None:
    """Shut the socket down under TLS, so a read blocked in another thread returns at once."""
    sock = connection.sock
    if sock is None:
        return
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the raw socket: TLS state stays intact


def _track_current(connection: HTTPConnection) -> None:
    scope: CallScope | None = getattr(_current, "scope", None)
    if scope is not None:
        scope._track(connection, _current.mine)


class _ScopedConnection:
    """A urllib3 connection that joins the current thread's call when it connects or sends."""

    def connect(self) -> None:
        _track_current(self)  # type: ignore[arg-type]
        super().connect()  # type: ignore[misc]
        _track_current(self)  # type: ignore[arg-type]  # the call may have ended while connecting

    def request(self, *args: Any, **kwargs: Any) -> None:
        _track_current(self)  # type: ignore[arg-type]
        super().request(*args, **kwargs)  # type: ignore[misc]


class _ScopedHTTPConnection(_ScopedConnection, HTTPConnection):
    pass


class _ScopedHTTPSConnection(_ScopedConnection, HTTPSConnection):
    pass


class _ScopedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _ScopedHTTPConnection


class _ScopedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _ScopedHTTPSConnection


_POOLS = {"http": _ScopedHTTPPool, "https": _ScopedHTTPSPool}


class _ScopedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOLS
        return manager


def scoped_session() -> requests.Session:
    """A keep-alive session whose connections can be cut by the call that uses them."""
    session = requests.Session()
    adapter = _ScopedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["Accept-Encoding"] = ACCEPT_ENCODING
    return session


def read_body(response: requests.Response, max_bytes: int, scope: CallScope) -> bytes:
    """The decoded body of a streamed ``response``; AnswerRefused past ``max_bytes`` or the call's total."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        inflater = None
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > max_bytes:
            raise _too_large(max_bytes)
    elif encoding in ("gzip", "x-gzip", "deflate"):
        inflater = zlib.decompressobj(_INFLATE_ANY_HEADER)
    else:
        raise AnswerRefused("the FHIR server answered in a content encoding other than gzip or deflate")
    body = bytearray()
    try:
        while chunk := response.raw.read(_CHUNK_BYTES, decode_content=False):
            while chunk:
                if inflater is None:
                    piece, chunk = chunk, b""
                else:
                    piece = inflater.decompress(chunk, max_bytes + 1 - len(body))
                    chunk = inflater.unconsumed_tail
                body += piece
                if len(body) > max_bytes:
                    raise _too_large(max_bytes)
                scope.charge(len(piece))
    except zlib.error:
        raise AnswerRefused(f"the FHIR server's {encoding} answer does not inflate") from None
    return bytes(body)


def _too_large(max_bytes: int) -> AnswerRefused:
    return AnswerRefused(f"the FHIR server's answer is larger than the cap of {max_bytes} bytes per answer")
