"""How errors say durations: as a person gave them, not a deadline's remainder."""

from __future__ import annotations

from klingbridge.errors import SlotTimeout, seconds


def test_seconds_are_rounded_to_a_tenth() -> None:
    assert [seconds(v) for v in (0.999916, 0.299916, 1.44, 900.0, 12.0)] == [
        "1",
        "0.3",
        "1.4",
        "900",
        "12",
    ]


def test_a_slot_timeout_says_the_seconds_waited_and_that_nothing_was_sent() -> None:
    said = str(SlotTimeout("kling", in_use=1, limit=1, waited_s=1.44))
    assert said == (
        "kling: no concurrency slot came free in 1.4 s (1/1 in use; max_concurrent = 1); "
        "nothing was sent"
    )
