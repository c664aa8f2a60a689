"""A `task_fail_*` rate is the fraction of tasks that fail: one draw per accepted create, whatever
`on` says and however many polls or other rules draw from the same seeded RNG meanwhile.

A short run follows the seeded sequence: with seed 0, 1 of the first 30 draws is below 0.2 and 11
below 0.5, which is what a 30-task walkthrough sees (docs/simulator.md says so)."""

from __future__ import annotations

import pytest

from klingbridge.simulator.faults import FaultEngine


def failures(engine: FaultEngine, tasks: int, *, polls: int = 0) -> list[bool]:
    """Which of `tasks` creates fail, each polled `polls` times (queries draw request rules)."""
    out = []
    for _ in range(tasks):
        engine.draw_request("kling", "create")
        out.append(engine.draw_task_failure("kling") is not None)
        for _ in range(polls):
            engine.draw_request("kling", "query")
    return out


@pytest.mark.parametrize("rate", [0.2, 0.5])
@pytest.mark.parametrize("polls", [0, 6])
def test_the_rate_is_the_fraction_of_tasks_that_fail(rate: float, polls: int) -> None:
    engine = FaultEngine(
        seed=0,
        spec={
            "kling": [
                {"fault": "task_fail_policy", "rate": rate},
                {"fault": "slow", "rate": 0.5, "delay_s": 0},  # draws on every request too
            ]
        },
    )
    failed = failures(engine, 4000, polls=polls)
    assert abs(sum(failed) / len(failed) - rate) < 0.025  # deterministic: the seed is fixed


def test_on_any_and_on_create_fail_the_same_tasks() -> None:
    def run(on: str) -> list[bool]:
        rule = {"fault": "task_fail_policy", "rate": 0.5, "on": on}
        return failures(FaultEngine(seed=7, spec={"kling": [rule]}), 200, polls=3)

    assert run("any") == run("create")


def test_thirty_tasks_on_seed_0_follow_its_first_thirty_draws() -> None:
    def run(rate: float) -> int:
        rule = {"fault": "task_fail_policy", "rate": rate}
        return sum(failures(FaultEngine(seed=0, spec={"kling": [rule]}), 30, polls=2))

    assert (run(0.2), run(0.5)) == (1, 11)  # what the walkthrough saw at 0.2: a small sample
    other = FaultEngine(seed=1, spec={"kling": [{"fault": "task_fail_policy", "rate": 0.2}]})
    assert sum(failures(other, 30)) != 1  # another seed, another sample
