"""Cooldowns: a provider that failed `allowed_fails` times in a row is skipped for `cooldown_s`.

With a task store, the failures are counted there, by every process that shares it: each one
adds to the provider's count in one statement (store/cooldowns.py `count_failure`), and the
`allowed_fails`-th, whichever process it comes from, starts the cooldown that every process
obeys (the admission reads it before each create). So one-shot `klingbridge generate` runs, a
process each, cool a failing vendor down as a long-lived worker does, and N workers need
`allowed_fails` failures between them, not each.

A success sets the count back to 0, but only from a process that saw a count: the admission
reads it with the cooldown, in the statement it runs anyway, so a run after no failure costs
no statement more (issue 13: the store's share of a run is measured). A run that admitted no
create (a task created by another process, followed here: `wait`, a worker) reads the count
in its closing commit instead (router.py `_ended`, store/cooldowns.py `reset_failures`).

Without a task store, this process counts its own failures, as before.
What counts as a failure is the router's to say (router.py `_failed`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .config import CooldownPolicy
from .flows import Clock, Flow, Record
from .store.cooldowns import Failures, count_failure


@dataclass
class Cooldowns:
    """Failures in a row per provider; a provider over the limit is skipped until its time.

    Without a task store, `fails` is this process's count (`failed`). With one, the count is
    the store's, kept by every process (`counted`), and `fails` holds the last count this
    process saw (`seen`: read at each admission, or after its own failure): a success sets the
    store's count back only when it saw one (`succeeded`).
    """

    policy: CooldownPolicy
    clock: Clock = time.monotonic
    fails: dict[str, int] = field(default_factory=dict)
    until: dict[str, float] = field(default_factory=dict)

    def remaining(self, provider: str) -> float:
        return max(0.0, self.until.get(provider, 0.0) - self.clock())

    def count(self, provider: str, error: Exception, *, owner: str, now: float) -> Flow[bool]:
        """Count a failure of `provider`: in the task store (None there: no store, this
        process counts it). True when it started a cooldown."""
        policy = self.policy
        reason = f"{policy.allowed_fails} failures in a row, last: {error}"[:300]
        shared = yield Record(
            count_failure(
                provider, allowed_fails=policy.allowed_fails, cooldown_s=policy.cooldown_s,
                reason=reason, owner=owner, now=now,
            )
        )  # fmt: skip
        if shared is None:
            return self.failed(provider)
        return self.counted(provider, shared)

    def failed(self, provider: str) -> bool:
        """Count a failure in this process; True when it starts a cooldown."""
        self.fails[provider] = self.fails.get(provider, 0) + 1
        if self.fails[provider] >= self.policy.allowed_fails:
            self.fails[provider] = 0
            self.until[provider] = self.clock() + self.policy.cooldown_s
            return True
        return False

    def counted(self, provider: str, failures: Failures) -> bool:
        """The store's count after a failure of this process; True when it started a cooldown."""
        self.seen(provider, 0 if failures.cooled else failures.count)
        if failures.cooled:
            self.until[provider] = self.clock() + self.policy.cooldown_s
        return failures.cooled

    def seen(self, provider: str, fails: int) -> None:
        """The store's count of `provider`'s failures in a row, as read just now."""
        if fails > 0:
            self.fails[provider] = fails
        else:
            self.fails.pop(provider, None)

    def succeeded(self, provider: str) -> bool:
        """A success: True when failures in a row were counted (a count to set back)."""
        return self.fails.pop(provider, 0) > 0
