"""Which side: stated once for a record, for several records, and for a card.

Bilateral is both sides recorded, in one record or in two (left and right). Within one record,
the code (an ICD-10-CM laterality digit) and the bodySite saying different sides is an unknown
side, not both sides (clinical reference §2.0.1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # compiled.py builds its side map with this module
    from service.engine.compiled import CodeKey

BOTH = "both"


def combine(sides: Iterable[str | None]) -> str | None:
    """The side several statements (records, or codings of one site) add up to."""
    found = None
    for side in sides:
        if not side or side == found:
            continue
        if found is not None:  # two different sides: left and right, or either and both
            return BOTH
        found = side
    return found


def sides_by_code(sets: Mapping[str, frozenset[CodeKey]]) -> dict[CodeKey, str]:
    """Each code of the rule set's laterality value sets, and the side it says."""
    out: dict[CodeKey, str] = {}
    for side, codes in sets.items():
        for code in codes:
            out[code] = combine((out.get(code), side))
    return out


def record_side(code_keys: Iterable[CodeKey], site_keys: Iterable[CodeKey],
                side_of: Mapping[CodeKey, str]) -> str | None:
    """One record's side: its bodySite and code agree, or only one of them says a side."""
    by_code, by_site = combine(map(side_of.get, code_keys)), combine(map(side_of.get, site_keys))
    if by_code and by_site and by_code != by_site:
        return None
    return by_code or by_site
