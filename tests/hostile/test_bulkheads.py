"""One FHIR server that drips cannot take fetch capacity from other EHRs' calls.

Each dripping call ends at its deadline with its reads; a healthy server's calls, made while the
drip goes on and after it, still get their cards, red flags included.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.hostile_service import HostileSetup, card_topics, diagnostics

pytestmark = pytest.mark.postgres


def test_healthy_calls_get_cards_while_and_after_another_server_drips(hostile: HostileSetup) -> None:
    with ThreadPoolExecutor(max_workers=6) as pool:
        dripping = [pool.submit(hostile.hook_call, "drip-body") for _ in range(4)]
        during = [pool.submit(hostile.hook_call, "healthy") for _ in range(2)]
        drip_answers = [f.result() for f in dripping]
        during_answers = [f.result() for f in during]
    after_answers = [hostile.hook_call("healthy") for _ in range(4)]

    for response in drip_answers:
        assert response.status_code == 412, response.text
        assert "deadline" in diagnostics(response)
    for response in during_answers + after_answers:
        assert response.status_code == 200, response.text
        assert "cauda-equina" in card_topics(response)
