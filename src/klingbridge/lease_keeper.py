"""Keeping a job's lease while its outputs are saved: a download may take longer than the lease.

A saver holds the job's lease so that no other process saves the same files (store/leases.py).
A flow renews its lease between polls (the journal's heartbeat), but a save is one long call:
without `LeaseKeeper`, a download longer than `[store] lease_s` let the lease lapse, and another
worker took the job and downloaded the same files.

`LeaseKeeper` renews the lease every third of it, from a thread of its own (a read that stalls
does not stop it) and from `check`, which the save calls between chunks: once the lease is lost
(another process took the job over), `check` raises `LeaseLost`, and the save stops, its
temporary file removed, recording nothing (the job is the new holder's to save).

`save_holding` is that save, for every saver (the worker's `save_job`, `batch --out`'s, the
callback receiver's, `generate --out` / `wait --out`'s): one place that holds the lease around a
download.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from types import TracebackType

import httpx

from .download import SavedFile, save_outputs
from .errors import KlingBridgeError, LeaseLost
from .models import Task
from .store import TaskStore, procs

logger = logging.getLogger("klingbridge.lease_keeper")


class LeaseKeeper:
    """`with LeaseKeeper(store, key, owner, lease_s) as keeper: save(..., check=keeper.check)`."""

    def __init__(
        self,
        store: TaskStore,
        key: str,
        owner: str,
        lease_s: float,
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.key, self.owner, self.lease_s, self.wall = store, key, owner, lease_s, wall
        self.renewed = wall()
        #: Set once the lease is found lost: the save must stop.
        self.lost: LeaseLost | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beats, name=f"klingbridge-lease-{key}", daemon=True
        )

    def __enter__(self) -> LeaseKeeper:
        """Renew the lease at once: `LeaseLost` if it is not ours any more (nothing saved)."""
        self.renewed = self.wall()
        self.store.run(procs.keep_lease(self.key, self.owner, self.lease_s, self.renewed))
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def check(self) -> None:
        """Renew the lease if a third of it has passed; `LeaseLost` once it is not ours."""
        self.beat()
        if self.lost is not None:
            raise self.lost

    def beat(self) -> None:
        """Renew the lease if a third of it has passed since it was last (never raises: a store
        that fails to answer is tried again at the next beat, the lease not lapsed yet)."""
        with self._lock:
            now = self.wall()
            if self.lost is not None or now - self.renewed < self.lease_s / 3:
                return
            try:
                self.store.run(procs.keep_lease(self.key, self.owner, self.lease_s, now))
            except LeaseLost as error:
                logger.warning("job %s: lease lost while saving: %s", self.key, error)
                self.lost = error
                return
            except KlingBridgeError as error:
                logger.warning("job %s: renewing the lease failed (tried again): %s", self.key,
                               error)  # fmt: skip
                return
            self.renewed = now

    def _beats(self) -> None:
        while not self._stop.wait(self.lease_s / 3) and self.lost is None:
            self.beat()


class SaveStopped(KlingBridgeError):
    """A save told to stop (its worker is stopping): the file being written is removed, and
    nothing is recorded; the job is left for another worker."""

    def __init__(self, key: str) -> None:
        super().__init__(f"job {key}: saving stopped (the worker is stopping)")


def save_holding(
    store: TaskStore,
    key: str,
    owner: str,
    lease_s: float | None,
    task: Task,
    target: Path,
    *,
    own_copy: bool = False,
    http: httpx.Client | None = None,
    wall: Callable[[], float] = time.time,
    halt: threading.Event | None = None,
    overwrite: bool = False,
    formats: Collection[str] | None = None,
    unwatermarked: bool = False,
) -> list[SavedFile]:
    """Save job `key`'s `task` into `target`, renewing `owner`'s lease on the job meanwhile
    (`lease_s` None: a save that does not hold it). Lost: the save stops with `LeaseLost`, its
    temporary file removed, unless `own_copy` (a directory of the saver's own, not the job's:
    it goes on, the lease renewed while it is still ours). `halt` set: the save stops at its
    next chunk with `SaveStopped`, its temporary file removed. `overwrite`, `formats`,
    `unwatermarked`: which files, as `save_outputs` takes them."""

    def halted() -> None:
        if halt is not None and halt.is_set():
            raise SaveStopped(key)

    def save(check: Callable[[], None]) -> list[SavedFile]:
        return save_outputs(task, target, client=http, check=check, overwrite=overwrite,
                            formats=formats, unwatermarked=unwatermarked)  # fmt: skip

    if lease_s is None:
        return save(halted)
    with LeaseKeeper(store, key, owner, lease_s, wall=wall) as keeper:
        renew = keeper.beat if own_copy else keeper.check

        def check() -> None:
            halted()
            renew()

        return save(check)
