"""FHIR servers that misbehave on purpose, over TLS on loopback, for the hostile-input tests.

Each server has one behaviour and a port of its own (an origin of its own), so one hook call can
be pointed at a server that drips while another goes to a healthy one. The certificate is
self-signed for 127.0.0.1; the service under test trusts it through ``REQUESTS_CA_BUNDLE``.
Every server records what it was asked and when a client hung up on it mid-answer.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

#: How long a dripping server keeps dripping when nobody hangs up on it.
DRIP_FOR_S = 40.0
DRIP_INTERVAL_S = 0.5


def loopback_certificate(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) files of a self-signed CA certificate valid for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "loopback-cert.pem", directory / "loopback-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    return cert_path, key_path


class Exchange:
    """One request as a behaviour sees it, with the means to answer it."""

    def __init__(self, handler: BaseHTTPRequestHandler, server: HostileFhirServer) -> None:
        self.handler = handler
        self.server = server
        parts = urlsplit(handler.path)
        self.path = parts.path.removeprefix(server.base_path)
        self.query = {k: v[0] for k, v in parse_qs(parts.query).items()}

    def send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.handler.send_response(status)
        for name, value in {"Content-Type": "application/fhir+json", **(headers or {})}.items():
            self.handler.send_header(name, value)
        if "Transfer-Encoding" not in (headers or {}):
            self.handler.send_header("Content-Length", str(len(body)))
        self.handler.end_headers()
        self.handler.wfile.write(body)

    def send_json(self, document: Any) -> None:
        self.send(200, json.dumps(document).encode())

    def hung_up(self) -> None:
        self.server.hang_ups.append(time.monotonic())


Behaviour = Callable[[Exchange], None]


class HostileFhirServer:
    """Serves ``behaviour`` under ``https://127.0.0.1:<port>/fhir`` until closed."""

    base_path = "/fhir"

    def __init__(self, behaviour: Behaviour, certificate: tuple[Path, Path]) -> None:
        self.behaviour = behaviour
        self.paths: list[str] = []
        self.hang_ups: list[float] = []
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.paths.append(self.path)
                try:
                    server.behaviour(Exchange(self, server))
                except OSError:
                    server.hang_ups.append(time.monotonic())
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*certificate)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.base_url = f"https://127.0.0.1:{self._httpd.server_address[1]}{self.base_path}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def searchset(resources: Iterable[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle", "type": "searchset",
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def healthy(resources: list[dict[str, Any]]) -> Behaviour:
    """A well-behaved server holding ``resources``: reads by id, searches by type and patient."""

    def answer(exchange: Exchange) -> None:
        kind, _, ident = exchange.path.strip("/").partition("/")
        if ident:
            found = [r for r in resources if r["resourceType"] == kind and r["id"] == ident]
            if found:
                exchange.send_json(found[0])
            else:
                exchange.send(404, b'{"resourceType":"OperationOutcome","issue":[]}')
            return
        exchange.send_json(searchset(r for r in resources if r["resourceType"] == kind))

    return answer


def drip(*, from_status_line: bool) -> Behaviour:
    """One byte every half second, of the status line on or of a body that never ends."""

    def answer(exchange: Exchange) -> None:
        wfile = exchange.handler.wfile
        if from_status_line:
            pending = b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\n" * 1000
        else:
            exchange.handler.send_response(200)
            exchange.handler.send_header("Content-Type", "application/fhir+json")
            exchange.handler.send_header("Content-Length", "1000000")
            exchange.handler.end_headers()
            wfile.flush()
            pending = b'{"resourceType":"Bundle","type":"searchset","entry":[' + b" " * 1000
        started = time.monotonic()
        for byte in pending:
            if exchange.server.stopping.is_set() or time.monotonic() - started > DRIP_FOR_S:
                return
            try:
                wfile.write(bytes([byte]))
                wfile.flush()
            except OSError:
                exchange.hung_up()
                exchange.handler.close_connection = True
                return
            time.sleep(DRIP_INTERVAL_S)

    return answer


@cache
def _padded_bundle(size: int) -> bytes:
    """A valid empty searchset padded with whitespace to ``size`` bytes: harmless once parsed."""
    head, tail = b'{"resourceType":"Bundle","type":"searchset","entry":[]', b"}"
    return head + b" " * (size - len(head) - len(tail)) + tail


@cache
def _compressed(size: int, encoding: str) -> bytes:
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}[encoding]
    compressor = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return compressor.compress(_padded_bundle(size)) + compressor.flush()


def compression_bomb(decoded_size: int, encoding: str = "gzip") -> Behaviour:
    """A small compressed answer that inflates to ``decoded_size`` bytes of valid JSON."""
    body = _compressed(decoded_size, encoding)  # made now: compressing takes a while

    def answer(exchange: Exchange) -> None:
        exchange.send(200, body, {"Content-Encoding": encoding})

    return answer


def huge(size: int, *, chunked: bool) -> Behaviour:
    """A valid searchset of ``size`` bytes, sent with its length or chunked without one."""

    body = _padded_bundle(size)

    def answer(exchange: Exchange) -> None:
        if not chunked:
            exchange.send(200, body)
            return
        exchange.handler.send_response(200)
        exchange.handler.send_header("Content-Type", "application/fhir+json")
        exchange.handler.send_header("Transfer-Encoding", "chunked")
        exchange.handler.end_headers()
        step = 64 * 1024
        for start in range(0, len(body), step):
            piece = body[start:start + step]
            exchange.handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        exchange.handler.wfile.write(b"0\r\n\r\n")

    return answer


def bulky(size: int) -> Behaviour:
    """Every answer a valid searchset of ``size`` bytes: each under a per-answer cap, many over a total."""

    def answer(exchange: Exchange) -> None:
        exchange.send(200, _padded_bundle(size))

    return answer


def random_paging_links(foreign_origin: str | None = None) -> Behaviour:
    """Every page links to a next page at a new random, resource-type-looking path.

    With ``foreign_origin`` the next link points there instead (a token-stealing server).
    """

    def answer(exchange: Exchange) -> None:
        if foreign_origin:
            next_url = f"{foreign_origin}/fhir/Observation?page=2"
        else:
            next_url = f"{exchange.server.base_url}/Zz{uuid.uuid4().hex}?page={uuid.uuid4().hex}"
        exchange.send_json(searchset([], next_url))

    return answer
