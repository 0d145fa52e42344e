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


def side_of_codes(keys: Iterable[CodeKey], side_of: Mapping[CodeKey, str]) -> str | None:
    """The side a record's codes (or its bodySite's codes) say together."""
    return combine(map(side_of.get, keys))


def record_side(by_code: str | None, site_keys: Iterable[CodeKey],
                side_of: Mapping[CodeKey, str]) -> str | None:
    """One record's side: what its codes say (``by_code``, from :func:`side_of_codes`) and its
    bodySite agree, or only one of them says a side."""
    by_site = side_of_codes(site_keys, side_of)
    if by_code and by_site and by_code != by_site:
        return None
    return by_code or by_site
