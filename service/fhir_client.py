"""Reads what the EHR did not prefetch from its FHIR server, fast and bounded.

One ``requests.Session`` (keep-alive) for the process; the queries of one hook call run in
parallel on a shared pool; each call has a timeout and the whole fallback a deadline, so a slow
or dead FHIR server costs the EHR a 412, never a hung request. Paging follows ``next`` links
only on the FHIR server's own origin: a link elsewhere would carry the access token away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
import requests

from service import metrics

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"


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


def _resource_type(query: str) -> str:
    """The resource type a query reads, for metric labels (a paging link may be a full URL)."""
    segments = [s for s in urlsplit(query).path.split("/") if s[:1].isupper()]
    return segments[0] if segments else "paging"


def bundle_resources(bundle: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(resources, outcomes) of a Bundle; search-mode ``outcome`` entries are not data."""
    resources, outcomes = [], []
    entries = bundle.get("entry")
    if type(entries) is not list:
        return resources, outcomes
    for entry in entries:
        if type(entry) is not dict:
            continue
        resource = entry.get("resource")
        if type(resource) is not dict:
            continue
        search = entry.get("search")
        if resource.get("resourceType") == "OperationOutcome" or (
            type(search) is dict and search.get("mode") == "outcome"
        ):
            outcomes.append(resource)
        else:
            resources.append(resource)
    return resources, outcomes


def next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in bundle.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None


class FhirClient:
    """Parallel, deadline-bounded FHIR reads and searches for the FHIR fallback."""

    def __init__(
        self,
        *,
        timeout_s: float = 3.0,
        deadline_s: float = 8.0,
        page_cap: int = 20,
        max_workers: int = 8,
        session: requests.Session | None = None,
    ):
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self.page_cap = page_cap
        self.session = session or requests.Session()
        self.session.headers.update({"Accept": FHIR_JSON})
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fhir")

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

        ``url_check`` vets every paging link before the token is sent to it (None = allowed).
        """
        deadline = time.monotonic() + self.deadline_s
        futures = {
            key: self._pool.submit(self.fetch, base_url, query, token, deadline, url_check)
            for key, query in queries.items()
        }
        wait(futures.values(), timeout=max(0.0, deadline - time.monotonic()), return_when=FIRST_EXCEPTION)
        results: dict[str, FetchResult | FhirFetchError] = {}
        for key, future in futures.items():
            if not future.done():
                future.cancel()
                results[key] = FhirFetchError(f"no answer within the {self.deadline_s:g} s deadline")
                continue
            exc = future.exception()
            if exc is None:
                results[key] = future.result()
            elif isinstance(exc, FhirFetchError):
                results[key] = exc
            else:
                log.warning("FHIR query %s failed: %s", key, type(exc).__name__)
                results[key] = FhirFetchError(f"query failed ({type(exc).__name__})")
        return results

    def fetch(
        self,
        base_url: str,
        query: str,
        token: str | None,
        deadline: float,
        url_check: Callable[[str], str | None] | None = None,
    ) -> FetchResult:
        """One read or search, following same-origin ``next`` links up to the page cap."""
        resource_type = _resource_type(query)
        started = time.monotonic()
        try:
            result = self._fetch_pages(base_url, query, token, deadline, url_check)
        except FhirFetchError:
            metrics.observe_fhir_request(resource_type, time.monotonic() - started, error=True)
            raise
        metrics.observe_fhir_request(resource_type, time.monotonic() - started, error=False)
        return result

    def _fetch_pages(
        self,
        base_url: str,
        query: str,
        token: str | None,
        deadline: float,
        url_check: Callable[[str], str | None] | None,
    ) -> FetchResult:
        base = base_url.rstrip("/") + "/"
        url: str | None = urljoin(base, query)
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
            body = self._get(url, token, deadline)
            result.pages += 1
            if body is None:
                return result
            kind = body.get("resourceType")
            if kind == "Bundle":
                resources, outcomes = bundle_resources(body)
                result.resources.extend(resources)
                result.outcomes.extend(outcomes)
                url = next_link(body)
                if url is not None:
                    url = urljoin(base, url)
            elif kind == "OperationOutcome":
                raise FhirFetchError("the FHIR server answered with an OperationOutcome")
            else:
                result.resources.append(body)
                url = None
        return result

    def _get(self, url: str, token: str | None, deadline: float) -> dict[str, Any] | None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FhirFetchError("deadline passed before the query was sent")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        started = time.monotonic()
        try:
            response = self.session.get(
                url, headers=headers, timeout=min(self.timeout_s, remaining), allow_redirects=False
            )
        except requests.Timeout:
            raise FhirFetchError(f"FHIR server did not answer within {self.timeout_s:g} s") from None
        except requests.RequestException as exc:
            raise FhirFetchError(f"FHIR server unreachable ({type(exc).__name__})") from None
        finally:
            log.debug("FHIR GET %s took %.1f ms", urlsplit(url).path, (time.monotonic() - started) * 1000)
        status = response.status_code
        if status in (404, 410) and "?" not in url:
            return None  # a read of something that is not there: no data, not an error
        if status in (401, 403):
            raise FhirFetchError(f"FHIR server refused the access token ({status})")
        if status != 200:
            raise FhirFetchError(f"FHIR server answered {status}")
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise FhirFetchError("FHIR server answered with something that is not JSON") from None
        if not isinstance(body, dict):
            raise FhirFetchError("FHIR server answered with something that is not a FHIR resource")
        return body
