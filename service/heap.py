"""The garbage collector's settings for a serving process.

A built app holds well over 100 000 long-lived objects (FHIR models, the rule set, SQLAlchemy),
and every request parses thousands of short-lived dicts and lists. With CPython's defaults each
request set off several young collections and, every few requests, a full one that walked the
whole long-lived heap: about an eighth of a request's CPU. The parsed request is freed by
reference counting, not by the collector; a call leaves only a few small cycles behind
(``tests/ops/test_heap.py``), so collecting less often holds back little memory.
"""

from __future__ import annotations

import gc

#: Container allocations (net of frees) before a young collection; CPython's default is 700.
#: A 200-resource request stays below it; a cycle still waits at most this many objects.
YOUNG_THRESHOLD = 10_000
OLDER_THRESHOLDS = (10, 10)  # CPython's defaults: how many young collections per older one


def settle() -> None:
    """Call once the app is built, before serving: the objects alive now are kept out of every
    later collection (and, before a fork, their pages stay shared with the workers)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
