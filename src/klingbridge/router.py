"""Where fallback is decided: which provider gets a request, retries, cooldowns, no double pay.

The rules (docs/routing.md):
- a provider that cannot take the request is skipped with its reason, before any call;
- retry the same provider (with backoff, honouring Retry-After) on rate limits, 5xx and lost
  answers, up to `retry.attempts` tries;
- fall back to the next provider on transport errors, rate/concurrency limits, 5xx and that
  provider's auth/balance/permission failures; never on invalid requests; on content policy only
  when the route says so;
- a create whose answer was lost is resolved by looking the task up by its external id before
  anything is retried; where the vendor has no such lookup, it is not re-created there;
- a provider that failed `allowed_fails` times in a row (counted in the task store by every
  process sharing it) cools down and is skipped meanwhile, by every one of them;
- before any create, the store admits it (admission.py): over a budget, the provider is skipped;
  its `max_concurrent` slots all in use, the create waits for one; a 1303 (slots full) that
  arrives anyway is waited out, and falls back only with `fallback_on_concurrency_limit`;
- an accepted task that then fails is resubmitted to the next provider when the route says so.
Every attempt is recorded; nothing known about a paid task (its id, its charge) is dropped.
How each attempt ends (refused, lost, failed, paid for) is in ending.py, creates in creating.py.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from . import storefirst
from .admission import Admission, write_intent
from .config import RetryPolicy, Route
from .cooldowns import Cooldowns
from .creating import Creating, Emit, NotAdmitted, Unresolved
from .ending import Ending
from .errors import (
    KlingBridgeError,
    ProviderError,
    ProviderResponseError,
    TransportError,
)
from .events import Event
from .flows import Clock, Flow, OnUpdate, PollPolicy
from .following import Following
from .journal import Attempt, Journal, Observer, RunResult, RunState, Trial
from .models import Request, Task
from .outcomes import exhausted
from .pacing import Pacing
from .provider import Provider, quoted_cost, refusal
from .store import StoreError
from .store.records import AttemptRecord

logger = logging.getLogger("klingbridge")


@dataclass
class Router(Creating, Following, Ending):
    """Runs one request over a route. Holds no I/O: `run` is a flow, like those of flows.py."""

    providers: Callable[[str], Provider]
    retry: RetryPolicy
    cooldowns: Cooldowns
    poll: PollPolicy
    clock: Clock
    emit: Emit
    new_external_id: Callable[[], str] = lambda: f"kb-{secrets.token_hex(16)}"
    #: Learnt task durations: polls dense around the expected end (pacing.py).
    pacing: Pacing | None = None
    #: Whether anyone listens to events (a `klingbridge_event` plugin): if not, none is built.
    listening: Callable[[], bool] = lambda: True
    #: With a task store: how a run that names a callback URL waits (store first). None: polls.
    store_first: storefirst.StoreFirst | None = None
    #: Budgets, slots and shared cooldowns (None: the intent is written with no check).
    admission: Admission | None = None

    def order(self, request: Request, route: Route) -> list[str]:
        if route.strategy == "ordered":
            return list(route.providers)

        def usd(name: str) -> float:
            quote = self.providers(name).quote(request)
            cost = quote.cost.usd if quote.eligible and quote.cost else None
            return float(cost) if cost is not None else float("inf")

        return sorted(route.providers, key=usd)  # stable: ties keep the configured order

    def run(
        self,
        request: Request,
        route: Route,
        *,
        journal: Journal,
        timeout: float,
        on_update: OnUpdate | None = None,
        callback_url: str | None = None,
        resume: AttemptRecord | None = None,
        detach: bool = False,
    ) -> Flow[RunResult]:
        """Run `request` over `route`, every attempt written down in `journal` first.

        With `resume`, first carry that recorded attempt on from where it stood (a create not
        yet sent, one whose answer was lost, a task still running), then the providers after
        it in the route. With `detach`, return as soon as the vendor task exists (recorded, and
        let go for `klingbridge wait` or a worker to finish).
        """
        run = RunState()
        deadline = self.clock() + timeout
        try:  # every failure, bad input included, closes the job's record (and its lease)
            candidates = self.order(request, route)
            if len(candidates) == 1 and resume is None:  # one provider: its own error, first
                self.providers(candidates[0]).validate(request)
                self.providers(candidates[0]).require_credentials()
            if resume is not None:
                provider = self.providers(resume.provider)
                trial = Trial.resumed(resume, self.clock())
                after = (
                    candidates.index(resume.provider) + 1 if resume.provider in candidates else 0
                )
                candidates = candidates[after:]
                result = yield from self._one(
                    provider, request, route, journal, run, trial, resume, timeout, on_update,
                    callback_url, detach,
                )  # fmt: skip
                if result is not None:
                    return result
            for name in candidates:
                provider = self.providers(name)
                admitted = yield from self._admitted(provider, request, journal, run, deadline)
                if admitted is None:
                    continue
                result = yield from self._one(
                    provider, request, route, journal, run, admitted, None, timeout, on_update,
                    callback_url, detach,
                )  # fmt: skip
                if result is not None:
                    return result
            raise exhausted(run, len(candidates) == 1 and resume is None)
        except KlingBridgeError as error:
            if not isinstance(error, StoreError):
                yield from journal.close(run, error)
            raise

    def _admitted(
        self, provider: Provider, request: Request, journal: Journal, run: RunState, deadline: float
    ) -> Flow[Trial | None]:
        """A new attempt on `provider`, its intent written and admitted by the store (budgets,
        slots); None: skipped, the reason kept in `run` (the request, a cooldown, a budget)."""
        name = provider.name
        skip = self._skip_reason(provider, request)
        if skip is not None:
            run.attempts.append(
                Attempt(provider=name, outcome="skipped", error=str(skip),
                        error_type=type(skip).__name__)
            )  # fmt: skip
            self.emit(Event("skip", name, data={"reason": str(skip)}))
            return None
        trial = Trial(
            provider=name,
            external_id=self.new_external_id(),
            quoted=quoted_cost(provider, request),
            started_at=datetime.now(timezone.utc),
            begun=self.clock(),
        )
        # The create follows at once (`_one`, no start): its `sent` goes in this commit.
        seat = journal.seat(name, trial.external_id, trial.quoted)
        if self.admission is None:
            yield from journal.record(write_intent(seat, journal.wall()).proc)
            return trial
        refused = yield from journal.admit(self.admission, seat, deadline)
        if refused is not None:
            self._not_admitted(run, trial, refused, recorded=False)
            return None
        return trial

    def _not_admitted(
        self, run: RunState, trial: Trial, refused: KlingBridgeError, *, recorded: bool
    ) -> None:
        """The store did not admit the create (a cooldown, a budget): skipped, the route goes
        on. `recorded`: a create carried on, its attempt written down (its external id kept)."""
        skipped = trial.attempt("skipped", self.clock(), None, refused)
        if not recorded:
            skipped = skipped.model_copy(update={"external_id": None})
        run.attempts.append(skipped)
        run.last_error = refused
        self.emit(Event("skip", trial.provider, data={"reason": str(refused)}))

    def _one(
        self,
        provider: Provider,
        request: Request,
        route: Route,
        journal: Journal,
        run: RunState,
        trial: Trial,
        start: AttemptRecord | None,
        timeout: float,
        on_update: OnUpdate | None,
        callback_url: str | None,
        detach: bool = False,
    ) -> Flow[RunResult | None]:
        """One provider's attempt, from wherever `start` left it. None: go on to the next.

        The wait runs right under this frame, and the error paths in pieces made only when
        taken: each of 10,000 runs in flight holds no generator frame in between.
        """
        # Long, and kept whole: what is left yields; a generator split off would be one more frame.
        name = provider.name
        callback_url = storefirst.endpoint(callback_url, name)  # the base, plus this provider
        patience = (self.clock() + timeout, route.fallback_on_concurrency_limit)
        try:
            task, recovered = yield from self._reach(
                provider, request, journal, trial, start, callback_url, patience
            )
        except Unresolved as unresolved:
            yield from self._unresolved(unresolved, name, route, journal, run, trial, request)
            return None
        except NotAdmitted as refused:  # a create carried on, its provider cooling down
            self._not_admitted(run, trial, refused.error, recorded=True)
            return None
        except (ProviderError, TransportError, ProviderResponseError) as error:
            yield from self._refused(error, name, route, journal, run, trial)
            return None
        run.last_task = task
        run.open_task = not task.status.is_terminal
        if detach and run.open_task:  # (a create answered with the end: nothing left to detach)
            if on_update is not None:
                on_update(task)
            run.attempts.append(trial.attempt("unknown", self.clock(), task, None))
            yield from journal.close(run, None)
            return RunResult(task=task, attempts=run.attempts, key=journal.key)
        unrecorded: list[Task] = []  # the final status, recorded with the job's end
        try:
            waiting = self.clock()  # the vendor has the task from here (its create was answered)
            listening = self.listening()
            # None: poll the vendor (also when its deliveries would be refused: storefirst)
            plan = self.store_first if callback_url and storefirst.verifiable(provider) else None
            follow = self._follow(
                provider, request, task, trial, recovered, timeout, on_update, journal,
                store_first=plan, listening=listening, started=waiting,
                unrecorded=unrecorded,
            )  # fmt: skip
            if plan is None and not recovered:  # (after the task is announced, as before)
                yield from self._seed_pacing(provider.name, request.kind, journal)
            task = yield from follow
            del follow
            learn = plan is None and not recovered
            self._followed(provider, request, task, trial, learn, waiting, listening)
        except Exception as error:
            if unrecorded:  # the wait saw the end, then something broke: record the end first
                yield Observer(trial.external_id, journal.wall)(unrecorded[-1])
                run.last_task, run.open_task = unrecorded[-1], False  # (the job ends as it did)
            known = self._paid_for(error, name, task, run, trial)
            if known is error:
                raise
            raise known from error
        return (
            yield from self._ended(task, name, route, journal, run, trial, unrecorded, recovered)
        )

    # --- pieces ---------------------------------------------------------------------------
    def _skip_reason(self, provider: Provider, request: Request) -> KlingBridgeError | None:
        """Why `provider` is not even tried: the request, its configuration, or a cooldown."""
        refused = refusal(provider, request)
        if refused is not None:
            return refused
        wait = self.cooldowns.remaining(provider.name)
        if wait > 0:
            return KlingBridgeError(f"cooling down for {wait:.0f} s after repeated failures")
        return None


__all__: Sequence[str] = ["Router"]
