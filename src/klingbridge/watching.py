"""Waiting for a job that another run holds, and taking it once it is free.

Two runs under one key must never both create a task. Another run of this client is waited
for in memory (`_turn`: the store's lease cannot tell them apart, they share its owner);
another process, in the store (`_watch`: until the job ends, or its holder's lease lapses, or
the holder is a process that is gone). A failed job run again is claimed the same way
(`_claim_rerun`). The `Jobs` of jobs.py are these, plus what a job's recorded state says to do.
"""

from __future__ import annotations

import threading

from .errors import KlingBridgeError, WaitTimeout
from .flows import Clock, Flow, PollPolicy, Record, Sleep
from .owners import held_elsewhere, holds, owner_alive, take
from .store import procs, reads
from .store.records import JobRecord, JobState

#: How often a job held by another process is looked at in the store, at most (seconds).
WATCH_INTERVAL_S = 2.0
#: The first look at a job another run of this client holds (then twice as long each time).
TURN_S = 0.05


class Watching:
    """The waiting half of `Jobs`: what it needs from it is these attributes."""

    owner: str
    lease_s: float
    poll: PollPolicy
    clock: Clock
    wall: Clock
    running: set[str]
    _turns: threading.Lock

    def _turn(self, key: str, deadline: float) -> Flow[bool]:
        """Wait while another run of this client has job `key`, then take it (True: waited).

        The store's lease cannot tell two runs of one client apart (they share its owner), so
        without this two concurrent runs under one key would both create a task. The second
        carries the job on once the first ends: the recorded result, nothing sent again. The
        caller gives the key back (`running.discard`) however its run ends.
        """
        looks = 0
        while True:
            with self._turns:
                if key not in self.running:
                    self.running.add(key)
                    return looks > 0
            if self.clock() >= deadline:
                raise KlingBridgeError(
                    f"job {key} is being run by another run of this client; it did not end "
                    "before this one's timeout"
                )
            yield self._pause(looks, deadline)
            looks += 1

    def _pause(self, looks: int, deadline: float) -> Sleep:
        """The next look's pause while another run holds a job: doubling from `TURN_S`, at
        most `WATCH_INTERVAL_S`, never past `deadline`."""
        return Sleep(min(TURN_S * 2**looks, WATCH_INTERVAL_S, max(0.0, deadline - self.clock())))

    def _claim_rerun(self, job: JobRecord, deadline: float) -> Flow[JobRecord | None]:
        """Take the lease of a failed job to run it again, if it is still as read (None: taken).
        Of two processes told to run it again at once, one creates a task; the other follows
        that run and gives the job as it left it, as does one that finds it run again since."""
        looks, dead = 0, None
        while True:
            now = self.wall()
            claim = procs.claim_rerun(
                job.key, self.owner, self.lease_s, now, attempts=len(job.attempts), dead=dead
            )
            if (yield Record(claim)):
                return None
            found: JobRecord | None = yield Record(reads.load(job.key), read=True)
            other = yield from self._watch(found or job, deadline, ended_too=True)
            if other.state is not JobState.FAILED or len(other.attempts) != len(job.attempts):
                return other
            # Still as read: its holder let go without running it, or died (taken over now).
            holder = other.lease_owner
            dead = holder if holder is not None and not owner_alive(holder) else None
            if dead is None:  # a live holder let go, or its lease lapsed: ask again shortly
                if self.clock() >= deadline:
                    raise KlingBridgeError(
                        f"job {job.key} is held by {holder} until {other.lease_until}: it "
                        "could not be taken before the timeout"
                    )
                yield self._pause(looks, deadline)
                looks += 1

    def _watch(self, job: JobRecord, deadline: float, ended_too: bool = False) -> Flow[JobRecord]:
        """Follow the job in the store while another live process holds it (an ended job too
        when `ended_too`: one that process is running again), until it ends or this run holds
        its lease: taken once free or lapsed, or at once from a process that is gone. A job
        not ended is returned only held by this run: never is it run or followed without."""
        looks, began = 0, self.clock()
        while ended_too or not job.state.is_terminal:
            if not self._held_elsewhere(job):
                if job.state.is_terminal or holds(job, self.owner, self.wall()):
                    return job  # (an ended one: `_claim_rerun` takes it, if it runs again)
                taken = yield from self._take(job)
                if taken is not None:
                    return taken
                # Another process took it first: watch it as any holder's.
            if self.clock() >= deadline:
                task = job.task
                if task is None or task.status.is_terminal:  # (an ended job's earlier task)
                    raise KlingBridgeError(
                        f"job {job.key} is still being run by {job.lease_owner}; "
                        "nothing finished before the timeout"
                    )
                raise WaitTimeout(task, round(deadline - began, 3))
            yield Sleep(min(self.poll.interval(looks), WATCH_INTERVAL_S))
            looks += 1
            found = yield Record(reads.load(job.key), read=True)
            job = found if found is not None else job
        return job

    def _take(self, job: JobRecord) -> Flow[JobRecord | None]:
        return take(job, self.owner, self.lease_s, self.wall())

    def _held_elsewhere(self, job: JobRecord) -> bool:
        return held_elsewhere(job, self.owner, self.wall())
