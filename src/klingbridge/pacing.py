"""When to poll a task: sparsely while it cannot be done yet, densely around when it should end.

A vendor's tasks of one kind take about the same time (a 5 s sound: ~40 s at Kling). Polling
at a fixed short interval notices the end quickly but spends a request every few seconds of
the task's life; backing off saves requests but notices late. `Pacing` learns how long recent
tasks of the same provider and kind took (the client's own tasks, and with a task store, the
last ones it recorded in the past `SEED_DAYS`: a new process, a CLI command, starts from those)
and plans each wait from that:

- no history yet: the configured `PollPolicy` (1 s, x1.5, capped at 3 s), as before;
- with history (the last `SAMPLES` durations, their median `expected`): one early poll (a
  task refused at once is seen soon), then polls at most `SPARSE_MAX` apart until the fastest
  recent duration (or `expected` - 10 %, if sooner), then one every `dense` seconds (2.5 s by
  default) until the slowest recent duration (or `expected` + 10 %, if later); past that, the
  `PollPolicy` cap, so a slow task is still noticed within `maximum` seconds.

A duration is counted from the vendor's answer to the create (the start of the wait) to the
poll that saw the end, so time spent queued in this client before the create does not count;
where the vendor's own timestamps (`created_at` to `updated_at` of the ended task) say it and
agree with that within a poll's lateness, theirs (`ran_for`): the poll that saw the end came up
to `dense` seconds after it, and learning that lateness would keep the dense polls that late.

While a create of this process waits for a `max_concurrent` slot of the provider (`eager`,
handover.py), the tasks holding the slots are what it waits for: in their dense window they are
polled once at `expected`, then every `HANDOVER_POLL_S`, so a freed slot is seen within that
(a poll or two more per task, only while some create waits).

For a 60 s task that means 7 requests, and the end seen within 2.5 s. The price: a task that
ends well before `expected - window` (much faster than its recent peers) is seen up to
`SPARSE_MAX` seconds late.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .flows import PollPolicy
from .models import Task

#: Durations remembered per (provider, kind).
SAMPLES = 20
#: Sparse polls at most this far apart before the dense window (seconds).
SPARSE_MAX = 20.0
#: Recorded durations older than this do not seed a new process's pacing (days).
SEED_DAYS = 7.0
#: Past the expected end, while a create waits for a slot its task holds: one poll this often.
HANDOVER_POLL_S = 0.5


@dataclass
class Pacing:
    """Learnt task durations per (provider, kind), and the poll plan they give."""

    policy: PollPolicy = field(default_factory=PollPolicy)
    dense: float = 2.5
    #: Whether a create of this process waits for a slot of a provider (handover.Waiting).
    eager: Callable[[str], bool] | None = None
    _seen: dict[tuple[str, str | None], deque[float]] = field(default_factory=dict)
    _seeded: set[tuple[str, str | None]] = field(default_factory=set)

    def wants_seed(self, provider: str, kind: str | None) -> bool:
        """True once per (provider, kind): read the recorded durations (`seed`) before waiting.
        Only the first wait asks; others meanwhile start from what is learnt so far."""
        if (provider, kind) in self._seeded:
            return False
        self._seeded.add((provider, kind))
        return True

    def seed(self, provider: str, kind: str | None, durations: list[float]) -> None:
        """Recorded durations, newest first, learnt before anything this process learns."""
        seen = self._seen.setdefault((provider, kind), deque(maxlen=SAMPLES))
        for seconds in durations[: SAMPLES - len(seen)]:
            if seconds > 0:
                seen.appendleft(seconds)

    def learn(
        self, provider: str, kind: str | None, seconds: float, task: Task | None = None
    ) -> None:
        """A task of `provider`/`kind` was seen ended `seconds` after it was created (`task`,
        as it ended: the vendor's own timestamps, where they agree, say how long it ran)."""
        if task is not None:
            seconds = self.ran_for(task, seconds)
        if seconds <= 0:
            return
        seen = self._seen.setdefault((provider, kind), deque(maxlen=SAMPLES))
        seen.append(seconds)

    def ran_for(self, task: Task, seen: float) -> float:
        """How long `task` ran by the vendor's timestamps, when they agree with `seen` (the
        seconds from the create's answer to the poll that saw the end) within a poll's
        lateness; else `seen`."""
        if task.created_at is None or task.updated_at is None:
            return seen
        ran = (task.updated_at - task.created_at).total_seconds()
        late = max(self.dense, self.policy.maximum)
        return ran if seen - late - 1.0 <= ran <= seen + 1.0 and ran > 0 else seen

    def expected(self, provider: str, kind: str | None) -> float | None:
        seen = self._seen.get((provider, kind))
        return statistics.median(seen) if seen else None

    def paced(self, provider: str, kind: str | None) -> Paced:
        """`interval` for one provider and kind, as `flows.wait(pace=...)` takes it."""
        return Paced(self, provider, kind)

    def interval(self, provider: str, kind: str | None, polls: int, elapsed: float) -> float:
        """Seconds until the next poll, `elapsed` seconds into the task, after `polls` polls."""
        seen = self._seen.get((provider, kind))
        step = self.policy.interval(polls)
        if not seen or self.policy.initial == 0:  # no history, or a test's no-sleep policy
            return step
        expected = statistics.median(seen)
        window = max(self.dense, 0.1 * expected)
        # Dense from the fastest recent task (or 10 % before the median, if sooner) to the
        # slowest one (or 10 % past the median, if later): every recent duration is covered.
        start = min(expected - window, min(seen))
        end = max(expected + window, max(seen))
        dense = min(self.dense, self.policy.maximum) if self.policy.maximum > 0 else self.dense
        if elapsed < start:
            if polls == 0:  # one early look: a task refused or failed at once is seen soon
                return min(step, start - elapsed)
            return min(SPARSE_MAX, start - elapsed)
        if elapsed < end:
            if self.eager is not None and self.eager(provider):
                return _handover(dense, expected, elapsed)
            return dense
        return self.policy.maximum


def _handover(dense: float, expected: float, elapsed: float) -> float:
    """A dense step that lands on `expected`, then steps of `HANDOVER_POLL_S`: a create waits
    for this task's slot."""
    if elapsed < expected - HANDOVER_POLL_S:
        return min(dense, expected - elapsed)
    return min(dense, HANDOVER_POLL_S)


class Paced:
    """`paced(polls, elapsed)`: `Pacing.interval` for one provider and kind.

    A callable object rather than a closure: each run in flight holds one (64 bytes instead
    of about 350).
    """

    __slots__ = ("kind", "pacing", "provider")

    def __init__(self, pacing: Pacing, provider: str, kind: str | None) -> None:
        self.pacing, self.provider, self.kind = pacing, provider, kind

    def __call__(self, polls: int, elapsed: float) -> float:
        return self.pacing.interval(self.provider, self.kind, polls, elapsed)
