"""The receiver's logic: verify, deduplicate, confirm, record, save. Starlette-free but the I/O.

Every delivery goes through the same steps, in this order, and a refusal at any step leaves the
store as it was:

    1. size       over `max_body_bytes`: 413
    2. provider   the provider's `verify_callback` (signature, secret): 401 with a one-line reason
    3. body       JSON that holds a task (the provider's `parse_callback`): else 400
    4. once       the delivery id is written down (kb_deliveries); the same delivery again: 200,
                  no effect (unless it is a hint whose confirmation failed: confirmed again);
                  the same id with another body: 409
    5. effect     a signed body (Kling) is recorded as is; an unsigned one (PiAPI's plain secret,
                  or any delivery under --insecure) is a hint: a final status is confirmed by a
                  query of the vendor, in the background, and only the answer is recorded
    6. files      a task that just succeeded has its outputs saved (background) when an output
                  directory is known (the receiver's own, else the job's), under the job's
                  lease: a job another process holds is left to it
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..client import AsyncClient
from ..download import SavedFile
from ..errors import KlingBridgeError, LeaseLost
from ..lease_keeper import save_holding
from ..models import Task, TaskStatus
from ..parsing import loads
from ..provider import CallbackCheck, CallbackRefused, Provider
from ..store import TaskStore, procs, reads
from ..store import callbacks as recorded
from ..store.callbacks import Admission, Applied, Effect
from ..worker import saved_record

logger = logging.getLogger("klingbridge.callbacks")


@dataclass(frozen=True)
class Answer:
    """What the receiver answers the vendor: an HTTP status and a small JSON object."""

    status: int
    body: dict[str, Any]


def refused(status: int, reason: str) -> Answer:
    return Answer(status, {"error": reason})


@dataclass
class Receiver:
    store: TaskStore
    client: AsyncClient
    insecure: bool = False
    out_dir: Path | None = None
    max_body_bytes: int = 1 << 20
    #: Background work (confirmations, saves) still running: awaited by `drain` (tests, shutdown).
    pending: set[asyncio.Task[None]] = field(default_factory=set)

    def provider(self, name: str) -> Provider | None:
        try:
            return self.client.provider(name)
        except KlingBridgeError:
            return None

    async def deliver(self, name: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        """Steps 2 to 6 for one delivery (its size was checked by the caller)."""
        provider = self.provider(name)
        if provider is None:
            return refused(404, f"no provider named {name!r}")
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            check = provider.verify_callback(body, lowered, insecure=self.insecure)
            task = _task(provider, body, lowered)
        except CallbackRefused as refusal:
            logger.warning("refused a %s delivery: %s", name, refusal.reason)
            return refused(refusal.status, refusal.reason)
        digest = hashlib.sha256(body).hexdigest()
        delivery = check.delivery_id or f"sha256:{digest}"
        text = provider.stored_callback(body)  # (kept for an orphan: never with a secret)
        if check.signed or (check.authentic and not task.status.is_terminal):
            admission, applied = await self.store.arun(
                recorded.receive(name, delivery, digest, task, text, time.time())
            )
        else:
            admission = await self.store.arun(
                recorded.admit(name, delivery, digest, task_id=task.id,
                               status=task.status.value, outcome=recorded.HINT, now=time.time())
            )  # fmt: skip
            applied = None
            if admission is Admission.NEW:
                self._later(self._confirm(provider, check, delivery, task, text))
        if admission is Admission.CONFLICT:
            logger.warning("refused a %s delivery: id %s reused with another body", name, delivery)
            return refused(409, f"{name}: delivery id reused with another body")
        if applied is not None and applied.effect is Effect.CHANGED:
            self._after(applied)
        if applied is not None:
            effect = applied.effect.value
        else:
            effect = "duplicate" if admission is Admission.DUPLICATE else "hint"
        return Answer(200, {"ok": True, "delivery": delivery, "effect": effect})

    # --- background ---------------------------------------------------------------------
    def _later(self, job: Any) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def drain(self) -> None:
        """Wait for the background work started so far."""
        while self.pending:
            await asyncio.gather(*list(self.pending), return_exceptions=True)

    async def _confirm(
        self, provider: Provider, check: CallbackCheck, delivery: str, hint: Task, body: str
    ) -> None:
        """A hint: only the vendor's own answer is recorded (a final status, or any status from
        an authenticated sender); a delivery about a task this store does not know is kept."""
        name = provider.name
        try:
            target = await self.store.aread(recorded.hint_target(name, hint))
            if target is None:
                await self.store.arun(recorded.apply(name, delivery, hint, body, time.time()))
                return
            if not hint.status.is_terminal:  # an unauthenticated progress note: not worth a
                await self.store.arun(recorded.settled(name, delivery))  # query, nor another
                return
            answer = await self.client.get(hint.id, provider=name, kind=target.kind)
            applied = await self.store.arun(
                recorded.apply(name, delivery, answer, body, time.time())
            )
        except KlingBridgeError as error:  # left a hint: the vendor's re-delivery retries it
            logger.warning(
                "%s task %s: confirming a callback failed (confirmed again if it is delivered"
                " again; else the next safety poll): %s", name, hint.id, error,
            )  # fmt: skip
            return
        if applied.effect is Effect.CHANGED:
            self._after(applied)

    def _after(self, applied: Applied) -> None:
        task = applied.task
        if task is not None and task.status is TaskStatus.SUCCEEDED and applied.job_key:
            self._later(self._save(applied.job_key, task))

    async def _save(self, key: str, task: Task) -> None:
        """Save the files of a job that just succeeded, holding its lease meanwhile (as a worker
        does, so that a worker does not claim it to save the same files). A job another process
        holds saves its own files into its directory: left to it; `serve --out` still gets its
        own copy (another saver at once is safe: each writes its own temporary file)."""
        job = await self.store.aread(reads.load(key))
        if job is None or job.saved_at is not None:
            return
        target = self.out_dir or (Path(job.out_dir) if job.out_dir else None)
        if target is None:
            return
        owner, lease_s = self.client.owner, self.client.config.store.lease_s
        held = await self.store.arun(procs.take_lease(key, owner, lease_s, time.time(),
                                                      ended=True))  # fmt: skip
        if not held and self.out_dir is None:
            return
        try:
            files = await asyncio.to_thread(self._download, key, task, target, held)
        except LeaseLost:  # another process took the job over: its files are its to save
            return
        except KlingBridgeError as error:
            logger.warning("job %s: saving outputs into %s failed: %s", key, target, error)
            if held:
                await self.store.arun(procs.release(owner, [key]))
            return
        records = [saved_record(f) for f in files]
        await self.store.arun(procs.saved(key, records, time.time(), owner=owner))
        logger.info("job %s: %d file(s) saved into %s", key, len(files), target)

    def _download(self, key: str, task: Task, target: Path, held: bool) -> list[SavedFile]:
        """Save the files, renewing the job's lease meanwhile if it is held (a download may
        outlast it). Lost into the job's own directory: the save stops (`LeaseLost`), the new
        holder saves them; `serve --out` still finishes its own copy."""
        lease_s = self.client.config.store.lease_s if held else None
        own_copy = self.out_dir is not None
        return save_holding(self.store, key, self.client.owner, lease_s, task, target,
                            own_copy=own_copy)  # fmt: skip


def _task(provider: Provider, body: bytes, headers: Mapping[str, str]) -> Task:
    """The task a delivery's body holds; `CallbackRefused` (400) when it holds none."""
    try:
        payload = loads(body)  # json.loads's answers, about twice as fast
    except ValueError:
        raise CallbackRefused(f"{provider.name}: body is not JSON", status=400) from None
    try:
        return provider.parse_callback(payload, headers)
    except KlingBridgeError as error:
        first = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise CallbackRefused(
            f"{provider.name}: body is not a task ({first})", status=400
        ) from None
