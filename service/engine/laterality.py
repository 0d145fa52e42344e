"""Which side: stated once for a record, for several records, and for a card.

Bilateral is both sides recorded, in one record or in two (left and right). Within one record,
the code (an ICD-10-CM laterality digit) and the bodySite saying different sides is an unknown
side, not both sides (clinical reference §2.0.1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from service.engine.ruleset import CodeKey

BOTH = "both"


def combine(sides: Iterable[str | None]) -> str | None:
    """The side several statements (records, or codings of one site) add up to."""
    known = {s for s in sides if s}
    if BOTH in known or {"left", "right"} <= known:
        return BOTH
    return next(iter(known), None)


def _side(keys: Iterable[CodeKey], sets: Mapping[str, frozenset[CodeKey]]) -> str | None:
    return combine(side for key in keys for side, codes in sets.items() if key in codes)


def record_side(code_keys: Iterable[CodeKey], site_keys: Iterable[CodeKey],
                sets: Mapping[str, frozenset[CodeKey]]) -> str | None:
    """One record's side: its bodySite and code agree, or only one of them says a side."""
    by_code, by_site = _side(code_keys, sets), _side(site_keys, sets)
    if by_code and by_site and by_code != by_site:
        return None
    return by_code or by_site
