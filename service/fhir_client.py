"""Reads what the EHR did not prefetch from its FHIR server, fast and bounded.

One ``requests.Session`` (keep-alive) for the process; the queries of one hook call run in
parallel on a shared pool. Each request has a timeout, each answer a byte cap once decoded, and
the whole hook call a deadline and a byte total (see ``fhir_transport``): when the call ends,
its reads end too, so a slow or hostile FHIR server costs its own EHR a 412 and keeps no fetch
slot from the next call. Paging follows ``next`` links only on the FHIR server's own origin: a
link elsewhere would carry the access token away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
import requests
from urllib3.exceptions import HTTPError, ReadTimeoutError

from service import metrics
from service.config import Settings
from service.fhir_spec import FHIR_JSON
from service.fhir_transport import AnswerRefused, CallScope, read_body, scoped_session

log = logging.getLogger(__name__)

#: After a call ends, how long its cut reads get to return before the call answers anyway.
_END_GRACE_S = 1.0


class FhirFetchError(Exception):
    """A query that could not be answered; the message is safe to show (no token in it)."""


@dataclass
class FetchResult:
    """What one prefetch-equivalent query returned."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0
    outcomes: list[dict[str, Any]] = field(default_factory=list)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _resource_type(base: str, url: str) -> str:
    """The first path segment below the base: a resource type for a well-formed query or link."""
    base_path, path = urlsplit(base).path.rstrip("/"), urlsplit(url).path
    below = path[len(base_path):] if path.startswith(base_path + "/") else path
    return below.lstrip("/").partition("/")[0]


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: requests wraps urllib3, which wraps the socket error."""
    pending: list[Any] = [exc]
    seen: list[BaseException] = []
    while pending and len(seen) < 16:
        current = pending.pop()
        if not isinstance(current, BaseException) or any(current is s for s in seen):
            continue
        seen.append(current)
        yield current
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]


def _no_answer_within(timeout_s: float) -> str:
    return f"FHIR server did not answer within {timeout_s:g} s"


def _unreachable(exc: requests.RequestException, timeout_s: float) -> str:
    """What went wrong reaching the server, in words an integrator can act on."""
    causes = list(_causes(exc))
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "the FHIR server refused the connection"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS with the FHIR server failed (certificate not trusted or not valid for the host)"
    if isinstance(exc, requests.ConnectTimeout):
        return f"could not connect to the FHIR server within {timeout_s:g} s"
    if isinstance(exc, requests.Timeout):
        return _no_answer_within(timeout_s)
    return f"FHIR server unreachable ({type(exc).__name__})"


class MalformedBundle(ValueError):
    """A Bundle whose entries or links are not what FHIR R4 says they are: it cannot be read
    whole, and read in part it could lose a red flag."""

    def __init__(self, member: str, problem: str):
        super().__init__(f"`{member}` {problem}")
        self.member, self.problem = member, problem


def bundle_resources(bundle: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(resources, outcomes) of a Bundle; search-mode ``outcome`` entries are not data.

    Raises MalformedBundle when ``entry`` is not a list of objects, an entry's ``resource`` is
    not an object, or a resource stands where its entry belongs; an entry without a resource
    holds nothing to read (FHIR allows it).
    """
    resources, outcomes = [], []
    entries = bundle.get("entry")
    if entries is None:
        return resources, outcomes
    if type(entries) is not list:
        raise MalformedBundle("entry", "must be a list")
    for entry in entries:
        # The first entry equal to a bad one is the bad one: an equal one before it was raised.
        if type(entry) is not dict:
            raise MalformedBundle(f"entry[{entries.index(entry)}]", "must be an object")
        resource = entry.get("resource")
        if resource is None:
            if "resourceType" in entry:
                raise MalformedBundle(f"entry[{entries.index(entry)}]",
                                      "is a resource: it belongs in the entry's `resource`")
            continue
        if type(resource) is not dict:
            raise MalformedBundle(f"entry[{entries.index(entry)}].resource", "must be an object")
        search = entry.get("search")
        if resource.get("resourceType") == "OperationOutcome" or (
            type(search) is dict and search.get("mode") == "outcome"
        ):
            outcomes.append(resource)
        else:
            resources.append(resource)
    return resources, outcomes


def next_link(bundle: Mapping[str, Any]) -> str | None:
    """The Bundle's ``next`` page; raises MalformedBundle when ``link`` is not a list of objects."""
    links = bundle.get("link")
    if links is None:
        return None
    if type(links) is not list:
        raise MalformedBundle("link", "must be a list")
    for link in links:
        if type(link) is not dict:
            raise MalformedBundle(f"link[{links.index(link)}]", "must be an object")
        if link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None


class FhirClient:
    """Parallel, deadline-bounded, size-capped FHIR reads and searches for the FHIR fallback."""

    def __init__(
        self,
        *,
        timeout_s: float = 3.0,
        deadline_s: float = 8.0,
        page_cap: int = 20,
        max_workers: int = 8,
        max_response_bytes: int = 4 * 1024 * 1024,
        max_total_bytes: int = 16 * 1024 * 1024,
        session: requests.Session | None = None,
    ):
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self.page_cap = page_cap
        self.max_response_bytes = max_response_bytes
        self.max_total_bytes = max_total_bytes
        self.session = session or scoped_session()
        self.session.headers.update({"Accept": FHIR_JSON})
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fhir")

    @classmethod
    def from_settings(cls, settings: Settings) -> FhirClient:
        return cls(
            timeout_s=settings.fhir_timeout_s,
            deadline_s=settings.fhir_deadline_s,
            page_cap=settings.fhir_page_cap,
            max_workers=settings.fhir_max_workers,
            max_response_bytes=settings.fhir_max_response_bytes,
            max_total_bytes=settings.fhir_max_total_bytes,
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.session.close()

    def fetch_all(
        self,
        base_url: str,
        queries: Mapping[str, str],
        token: str | None,
        url_check: Callable[[str], str | None] | None = None,
    ) -> dict[str, FetchResult | FhirFetchError]:
        """Run every query in parallel; each key maps to its result or its error.

        Returns by the deadline, or as soon as one query fails: the call then ends, and with it
        every read still running. ``url_check`` vets every paging link before the token is sent
        to it (None = allowed).
        """
        scope = CallScope(self.deadline_s, self.max_total_bytes)
        futures = {
            key: self._pool.submit(self._fetch, scope, base_url, query, token, url_check)
            for key, query in queries.items()
        }
        done, pending = wait(futures.values(), timeout=max(0.0, scope.remaining_s()),
                             return_when=FIRST_EXCEPTION)
        if pending:
            failure = next((f.exception() for f in done if f.exception() is not None), None)
            scope.end(
                f"abandoned after another query failed: {failure}" if isinstance(failure, FhirFetchError)
                else self._deadline_passed()
            )
            for future in pending:
                future.cancel()
            wait(pending, timeout=_END_GRACE_S)
        return {key: self._outcome(key, future, scope) for key, future in futures.items()}

    def fetch(
        self,
        base_url: str,
        query: str,
        token: str | None,
        url_check: Callable[[str], str | None] | None = None,
    ) -> FetchResult:
        """One query as a call of its own; raises FhirFetchError."""
        result = self.fetch_all(base_url, {query: query}, token, url_check)[query]
        if isinstance(result, FhirFetchError):
            raise result
        return result

    def _deadline_passed(self) -> str:
        return f"no complete answer within the {self.deadline_s:g} s deadline"

    @staticmethod
    def _outcome(key: str, future: Future[FetchResult], scope: CallScope) -> FetchResult | FhirFetchError:
        if future.cancelled() or not future.done():
            return FhirFetchError(scope.ended or "not fetched")
        exc = future.exception()
        if exc is None:
            return future.result()
        if isinstance(exc, FhirFetchError):
            return exc
        log.warning("FHIR query %s failed: %s", key, type(exc).__name__)
        return FhirFetchError(f"query failed ({type(exc).__name__})")

    def _fetch(
        self,
        scope: CallScope,
        base_url: str,
        query: str,
        token: str | None,
        url_check: Callable[[str], str | None] | None,
    ) -> FetchResult:
        """One read or search, its time and outcome counted by resource type."""
        base = base_url.rstrip("/") + "/"
        url = urljoin(base, query)
        resource_type = _resource_type(base, url)
        started = time.monotonic()
        try:
            with scope.reading():
                result = self._fetch_pages(scope, base, url, token, url_check)
        except FhirFetchError:
            metrics.observe_fhir_request(resource_type, time.monotonic() - started, error=True)
            raise
        metrics.observe_fhir_request(resource_type, time.monotonic() - started, error=False)
        return result

    def _fetch_pages(
        self,
        scope: CallScope,
        base: str,
        first_url: str,
        token: str | None,
        url_check: Callable[[str], str | None] | None,
    ) -> FetchResult:
        """Follow same-origin ``next`` links up to the page cap."""
        url: str | None = first_url
        origin = _origin(base)
        result = FetchResult()
        while url is not None:
            if _origin(url) != origin:
                raise FhirFetchError("a paging link points to another server; not followed")
            refusal = url_check(url) if url_check else None
            if refusal:
                raise FhirFetchError(f"paging link refused: {refusal}")
            if result.pages >= self.page_cap:
                raise FhirFetchError(f"more than {self.page_cap} pages; result incomplete")
            body = self._get(scope, url, token)
            result.pages += 1
            if body is None:
                return result
            kind = body.get("resourceType")
            if kind == "Bundle":
                try:
                    resources, outcomes = bundle_resources(body)
                    url = next_link(body)
                except MalformedBundle as exc:
                    raise FhirFetchError(f"the FHIR server's Bundle cannot be read: {exc}") from None
                result.resources.extend(resources)
                result.outcomes.extend(outcomes)
                if url is not None:
                    url = urljoin(base, url)
            elif kind == "OperationOutcome":
                raise FhirFetchError("the FHIR server answered with an OperationOutcome")
            else:
                result.resources.append(body)
                url = None
        return result

    def _get(self, scope: CallScope, url: str, token: str | None) -> dict[str, Any] | None:
        remaining = scope.remaining_s()
        if scope.ended or remaining <= 0:
            raise FhirFetchError(scope.ended or self._deadline_passed())
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        started = time.monotonic()
        try:
            response = self.session.get(
                url, headers=headers, timeout=min(self.timeout_s, remaining), allow_redirects=False,
                stream=True,
            )
        except requests.RequestException as exc:
            raise FhirFetchError(scope.ended or _unreachable(exc, self.timeout_s)) from None
        try:
            status = response.status_code
            if status in (404, 410) and "?" not in url:
                return None  # a read of something that is not there: no data, not an error
            if status in (401, 403):
                raise FhirFetchError(f"FHIR server refused the access token ({status})")
            if status != 200:
                raise FhirFetchError(f"FHIR server answered {status}")
            try:
                raw = read_body(response, self.max_response_bytes, scope)
            except AnswerRefused as exc:
                raise FhirFetchError(str(exc)) from None
            except ReadTimeoutError:
                raise FhirFetchError(scope.ended or _no_answer_within(self.timeout_s)) from None
            except (HTTPError, requests.RequestException, OSError) as exc:
                raise FhirFetchError(
                    scope.ended or f"the FHIR server broke off its answer ({type(exc).__name__})"
                ) from None
            response.raw.release_conn()
        finally:
            response.close()
            log.debug("FHIR GET %s took %.1f ms", urlsplit(url).path, (time.monotonic() - started) * 1000)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise FhirFetchError("FHIR server answered with something that is not JSON") from None
        if not isinstance(body, dict):
            raise FhirFetchError("FHIR server answered with something that is not a FHIR resource")
        return body
