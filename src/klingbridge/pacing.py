"""When to poll a task: sparsely while it cannot be done yet, densely around when it should end.

A vendor's tasks of one kind take about the same time (a 5 s sound: ~40 s at Kling). Polling
at a fixed short interval notices the end quickly but spends a request every few seconds of
the task's life; backing off saves requests but notices late. `Pacing` learns how long recent
tasks of the same provider and kind took (in this process, seeded from the task store's
a client's own tasks; a new process starts with none) and plans each wait from that:

- no history yet: the configured `PollPolicy` (1 s, x1.5, capped at 3 s), as before;
- with history (median `expected` of the last `SAMPLES` durations): one early poll (a task
  refused at once is seen soon), then polls at most `SPARSE_MAX` apart until
  `expected - window` (window: 10 % of `expected`, at least `dense`), then one every `dense`
  seconds (2.5 s by default) until the task ends;
  past `expected + window` it falls back to the `PollPolicy` cap, so a slow task is still
  noticed within `maximum` seconds.

For a 60 s task that means 7 requests, and the end seen within 2.5 s. The price: a task that
ends well before `expected - window` (much faster than its recent peers) is seen up to
`SPARSE_MAX` seconds late.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

from .flows import PollPolicy

#: Durations remembered per (provider, kind).
SAMPLES = 20
#: Sparse polls at most this far apart before the dense window (seconds).
SPARSE_MAX = 20.0


@dataclass
class Pacing:
    """Learnt task durations per (provider, kind), and the poll plan they give."""

    policy: PollPolicy = field(default_factory=PollPolicy)
    dense: float = 2.5
    _seen: dict[tuple[str, str | None], deque[float]] = field(default_factory=dict)

    def learn(self, provider: str, kind: str | None, seconds: float) -> None:
        """A task of `provider`/`kind` ended `seconds` after it was created."""
        if seconds <= 0:
            return
        seen = self._seen.setdefault((provider, kind), deque(maxlen=SAMPLES))
        seen.append(seconds)

    def expected(self, provider: str, kind: str | None) -> float | None:
        seen = self._seen.get((provider, kind))
        return statistics.median(seen) if seen else None

    def interval(self, provider: str, kind: str | None, polls: int, elapsed: float) -> float:
        """Seconds until the next poll, `elapsed` seconds into the task, after `polls` polls."""
        expected = self.expected(provider, kind)
        step = self.policy.interval(polls)
        if expected is None or self.policy.initial == 0:  # no history, or a test's no-sleep policy
            return step
        window = max(self.dense, 0.1 * expected)
        start = expected - window
        dense = min(self.dense, self.policy.maximum) if self.policy.maximum > 0 else self.dense
        if elapsed < start:
            if polls == 0:  # one early look: a task refused or failed at once is seen soon
                return min(step, start - elapsed)
            return min(SPARSE_MAX, start - elapsed)
        if elapsed < expected + window:
            return dense
        return self.policy.maximum
