"""A FHIR server cannot make the service read, inflate or wait without bound.

Each hostile answer costs its EHR a 412 whose OperationOutcome names the limit that was hit; the
healthy server's answer, read by the same service, still gives the red-flag card.
"""

from __future__ import annotations

import time

import pytest

from tests.support.hostile_service import (
    DEADLINE_S,
    MAX_RESPONSE_BYTES,
    MAX_TOTAL_BYTES,
    HostileSetup,
    card_topics,
    diagnostics,
)

pytestmark = pytest.mark.postgres

#: Generous: the service must let go at its deadline, long before the 40 s a drip would last.
HANG_UP_WITHIN_S = DEADLINE_S + 8


def test_healthy_server_gives_the_red_flag_card(hostile: HostileSetup) -> None:
    response = hostile.hook_call("healthy")
    assert response.status_code == 200, response.text
    assert "cauda-equina" in card_topics(response)


@pytest.mark.parametrize("server", ["gzip-bomb", "deflate-bomb", "huge-with-length", "huge-chunked"])
def test_answer_over_the_cap_is_a_412_naming_the_cap(hostile: HostileSetup, server: str) -> None:
    response = hostile.hook_call(server)
    assert response.status_code == 412, response.text
    assert f"larger than the cap of {MAX_RESPONSE_BYTES} bytes" in diagnostics(response)


def test_answers_over_the_total_for_one_call_are_a_412_naming_the_total(hostile: HostileSetup) -> None:
    response = hostile.hook_call("bulky")  # each answer under the per-answer cap, together over the total
    assert response.status_code == 412, response.text
    assert f"exceed {MAX_TOTAL_BYTES} bytes in total" in diagnostics(response)


@pytest.mark.parametrize("server", ["drip-body", "drip-status-line"])
def test_dripping_server_is_cut_off_at_the_deadline(hostile: HostileSetup, server: str) -> None:
    dripping = hostile.servers[server]
    asked_before, hang_ups_before = len(dripping.paths), len(dripping.hang_ups)
    started = time.monotonic()
    response = hostile.hook_call(server)
    assert response.status_code == 412, response.text
    assert f"within the {DEADLINE_S:g} s deadline" in diagnostics(response)
    # Not only no longer waited for: the service closes every connection the call opened.
    asked = len(dripping.paths) - asked_before
    while len(dripping.hang_ups) - hang_ups_before < asked and time.monotonic() - started < HANG_UP_WITHIN_S:
        time.sleep(0.2)
    assert asked >= 1
    assert len(dripping.hang_ups) - hang_ups_before == asked


def test_refused_connection_says_refused(hostile: HostileSetup) -> None:
    response = hostile.hook_call(hostile.refused_base)
    assert response.status_code == 412, response.text
    text = diagnostics(response)
    assert "refused the connection" in text
    assert "deadline" not in text
