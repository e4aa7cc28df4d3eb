"""``?wait`` polling: quick answers are seen quickly, long waits do not hammer the database."""

from __future__ import annotations

import pytest

from api.explanations.waiting import MAX_WAIT_SECONDS, WaitSlots, poll_pause


def reads_within(seconds: float) -> int:
    waited, reads = 0.0, 0
    while waited < seconds:
        reads += 1
        waited += poll_pause(waited)
    return reads


def test_a_finished_explanation_is_seen_within_a_tenth_of_the_wait() -> None:
    for waited in (0.0, 0.03, 0.2, 1.0, 2.0):
        assert poll_pause(waited) <= max(0.005, 0.1 * waited)
    assert poll_pause(0.03) <= 0.005 and poll_pause(1.0) == 0.1


def test_the_longest_wait_costs_a_few_hundred_reads_at_most() -> None:
    assert reads_within(MAX_WAIT_SECONDS) < 200
    assert poll_pause(MAX_WAIT_SECONDS) == 0.25


def test_wait_slots_hold_at_most_their_capacity_and_give_slots_back_even_on_error() -> None:
    slots = WaitSlots(2)
    with slots.take() as first, slots.take() as second, slots.take() as third:
        assert (first, second, third) == (True, True, False) and slots.held == 2
    assert slots.held == 0
    with pytest.raises(RuntimeError), slots.take() as taken:
        assert taken
        raise RuntimeError("a client that went away mid-wait")
    assert slots.held == 0
    with WaitSlots(0).take() as none:
        assert not none
