"""The widest text a score placeholder can become: a sum of some of its weights."""

from __future__ import annotations

import itertools

import pytest

from service.engine.cardtext import WIDEST_NUMBER, number_text, widest_score


@pytest.mark.parametrize("weights", [[3, 2, 1], [-10, 1, 2], [100, -5], [1], [-1, -1]])
def test_no_sum_of_whole_weights_is_wider_than_measured(weights):
    sums = {sum(c) for n in range(len(weights) + 1) for c in itertools.combinations(weights, n)}
    widest = max(len(number_text(float(s))) for s in sums)
    assert widest_score(weights) == widest


def test_fractional_weights_are_measured_as_any_number():
    assert widest_score([0.1, 0.2]) == WIDEST_NUMBER
    assert len(number_text(0.1 + 0.2)) <= WIDEST_NUMBER
