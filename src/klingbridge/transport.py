"""The one place that does I/O: runs flows over httpx, sync or async.

`SyncRunner.run(flow)` and `AsyncRunner.run(flow)` feed a flow (see flows.py) the outcome of
each operation it yields. They differ only in `await`. An `httpx` transport can be passed in:
`httpx.MockTransport` in tests, `httpx.ASGITransport` for the in-process simulator.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from . import flows
from .errors import TransportError
from .flows import Flow, Op, Poll, Queued, Record, Send, Sleep
from .handover import Bell, SyncBell
from .inflight import InFlight, pool_limits
from .provider import Provider
from .scheduler import Found, PollScheduler
from .store import TaskStore
from .wire import HttpCall, HttpReply

logger = logging.getLogger("klingbridge")
#: The longest a cancelled slot waiter waits for its place in the queue to be given up
#: (seconds); past it, the place expires by itself.
GONE_S = 5.0

T = TypeVar("T")

#: Errors raised before a single byte of the request could have reached the vendor.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
USER_AGENT = "klingbridge/0.1 (+https://github.com/klingbridge/klingbridge)"


def _transport_error(provider: Provider, error: httpx.HTTPError) -> TransportError:
    try:
        where = f" ({error.request.method} {error.request.url})"
    except RuntimeError:  # an error raised before a request existed
        where = ""
    return TransportError(
        f"{type(error).__name__}: {error or 'no answer'}{where}",
        provider=provider.name,
        may_have_been_received=not isinstance(error, _NOT_SENT),
    )


def _reply(response: httpx.Response) -> HttpReply:
    # httpx.Headers is already a case-insensitive Mapping: no copy. The body's bytes go to
    # `json.loads` as they are: no text decoded first (issue 13: the body decoded once).
    return HttpReply(response.status_code, response.headers, content=response.content)


def _request_args(send: Send) -> dict[str, Any]:
    call = send.call
    return {
        "method": call.method,
        "url": call.path,
        "params": dict(call.params) if call.params else None,
        "json": call.json,
    }


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every provider's pool: each costs 0.8 MB (the CA bundle, parsed)."""
    return httpx.create_ssl_context(trust_env=True)


def _client_args(provider: Provider, transport: object) -> dict[str, Any]:
    return {
        "transport": transport,
        "base_url": provider.base_url,
        "auth": provider.auth(),
        "timeout": provider.settings.timeout,
        "headers": {"User-Agent": USER_AGENT},
        "limits": pool_limits(provider.settings.max_connections),
        # a transport given (tests, the in-process simulator) makes its own TLS decisions
        **({"verify": _tls()} if transport is None else {}),
    }


def _record(store: TaskStore | None, step: Record) -> Any:
    if store is None:
        return None
    return store.read(step.proc) if step.read else store.run(step.proc)


async def _arecord(store: TaskStore | None, step: Record) -> Any:
    if store is None:
        return None
    return await (store.aread(step.proc) if step.read else store.arun(step.proc))


class _Queued:
    """Seconds one run's requests have spent in `InFlight` queues (the answer to `Queued`)."""

    __slots__ = ("seconds",)

    def __init__(self) -> None:
        self.seconds = 0.0


@dataclass(frozen=True)
class _Done(Generic[T]):
    value: T


def _advance(flow: Flow[T], outcome: Any = None, error: Exception | None = None) -> Op | _Done[T]:
    """Feed the flow the outcome of its last operation; its next operation, or its result."""
    try:
        return flow.throw(error) if error is not None else flow.send(outcome)
    except StopIteration as stop:
        return _Done(stop.value)


class SyncRunner:
    """Runs flows with one `httpx.Client` per provider, created on first use."""

    def __init__(
        self,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        store: TaskStore | None = None,
    ) -> None:
        self._transport = transport
        self._sleep = sleep
        self.store = store
        self._clients: dict[Provider, httpx.Client] = {}
        self._lock = threading.Lock()  # a sync client may be shared by threads
        self.bell = SyncBell()

    def _client(self, provider: Provider) -> httpx.Client:
        with self._lock:
            client = self._clients.get(provider)
            if client is None:
                client = httpx.Client(**_client_args(provider, self._transport))
                self._clients[provider] = client
            return client

    def run(self, flow: Flow[T]) -> T:
        try:
            step = _advance(flow)
            while not isinstance(step, _Done):
                if isinstance(step, Sleep):
                    self._pause(step)
                    step = _advance(flow)
                    continue
                if isinstance(step, Record):
                    try:
                        done = _record(self.store, step)
                    except Exception as exc:  # the procedure's own error, or StoreError
                        step = _advance(flow, error=exc)
                    else:
                        if step.frees is not None:
                            self.bell.ring(step.frees)
                        step = _advance(flow, done)
                    continue
                if isinstance(step, Poll):
                    try:
                        found = self.run(flows.locate(step.provider, step.calls, step.task.kind))
                    except Exception as exc:  # the poll's error goes to the wait, as it would alone
                        step = _advance(flow, error=exc)
                    else:
                        step = _advance(flow, found)
                    continue
                if isinstance(step, Queued):
                    step = _advance(flow, 0.0)  # requests queue in no client of ours here
                    continue
                try:
                    reply = _reply(self._client(step.provider).request(**_request_args(step)))
                except httpx.HTTPError as exc:
                    step = _advance(flow, error=_transport_error(step.provider, exc))
                else:
                    step = _advance(flow, reply)
        except BaseException:
            flow.close()  # a flow left half-way runs its `finally` now, not when collected
            raise
        return step.value

    def _pause(self, step: Sleep) -> None:
        """A `wake` pause ends early when another thread frees that slot (with `time.sleep`;
        a sleep function given instead, a test's, is called as it is)."""
        if step.seconds <= 0:
            return
        try:
            if step.wake is not None and self._sleep is time.sleep:
                self.bell.sleep(step.wake, step.seconds, rank=step.rank)
            else:
                self._sleep(step.seconds)
        except BaseException:  # (Ctrl-C: a slot waiter gives its place in the queue up)
            if step.gone is not None:
                try:
                    _record(self.store, step.gone)
                except Exception:  # (its place expires)
                    logger.debug("could not give a slot waiter's place up", exc_info=True)
            raise

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


class AsyncRunner:
    """The async twin of `SyncRunner`: the same loop, with `await`.

    Requests to one provider go through its `InFlight` cap (`max_connections`, first come first
    served), so any number of concurrent flows proceed steadily instead of piling up in httpx.
    """

    def __init__(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        store: TaskStore | None = None,
    ) -> None:
        self._transport = transport
        self._sleep = sleep
        self.store = store
        self._clients: dict[Provider, httpx.AsyncClient] = {}
        self._caps: dict[Provider, InFlight] = {}
        self.scheduler = PollScheduler(self._exchange)
        self.bell = Bell()

    def cap(self, provider: Provider) -> InFlight:
        """The queue in front of `provider`'s requests."""
        cap = self._caps.get(provider)
        if cap is None:
            cap = self._caps[provider] = InFlight(provider.settings.max_connections)
        return cap

    def _client(self, provider: Provider) -> httpx.AsyncClient:
        client = self._clients.get(provider)  # one event loop: no other task runs meanwhile
        if client is None:
            client = httpx.AsyncClient(**_client_args(provider, self._transport))
            self._clients[provider] = client
        return client

    async def run(self, flow: Flow[T], queued: _Queued | None = None) -> T:
        """Drive `flow`; `queued` adds up the seconds its requests wait in an `InFlight` queue
        (a flow run on behalf of another, such as a poll's lookup, adds to its parent's)."""
        # Long, and kept whole: each piece awaits, and a coroutine of its own would hold one
        # more frame per run in flight (docs/scale.md "Memory per run in flight").
        queued = _Queued() if queued is None else queued
        try:
            step = _advance(flow)
            while not isinstance(step, _Done):
                if isinstance(step, Sleep):
                    if step.wake is not None and step.seconds > 0:
                        await self._slot_pause(step)
                    elif step.seconds > 0:
                        await self._sleep(step.seconds)
                    step = _advance(flow)
                    continue
                if isinstance(step, Record):
                    try:
                        done = await _arecord(self.store, step)
                    except Exception as exc:  # the procedure's own error, or StoreError
                        step = _advance(flow, error=exc)
                    except BaseException:  # cancelled: a grouped write commits all the same
                        if step.frees is not None:
                            self.bell.ring(step.frees)  # (at worst, a waiter asks once more)
                        raise
                    else:
                        if step.frees is not None:
                            self.bell.ring(step.frees)
                        step, done = _advance(flow, done), None  # not held while the flow waits
                    continue
                if isinstance(step, Poll):
                    try:
                        found = await self._poll(step, queued)
                    except Exception as exc:  # the poll's error goes to the wait, as it would alone
                        step = _advance(flow, error=exc)
                    else:
                        step = _advance(flow, found)
                        del found  # (call, task): not held while the flow waits
                    continue
                if isinstance(step, Queued):
                    step = _advance(flow, queued.seconds)
                    continue
                # The request is sent here, not in a coroutine of its own: each of 10,000 requests
                # queued for the cap would hold one more frame.
                cap = self.cap(step.provider)
                turn = cap.take()  # (`await cap.acquire()`, without its coroutine)
                if turn is not None:
                    start = time.monotonic()
                    try:
                        if step.marks is not None:  # a create: `intent` while it waits
                            await _arecord(self.store, Record(step.marks[0](time.time())))
                        await turn
                    except Exception as exc:  # the store failed: nothing was sent
                        cap.give_up(turn)
                        step = _advance(flow, error=exc)
                        continue
                    except BaseException:  # cancelled
                        cap.give_up(turn)
                        raise
                    finally:
                        waited = time.monotonic() - start
                        cap.waited += waited
                        queued.seconds += waited
                    del turn
                    if step.marks is not None:  # its turn: `sent` again, right before it leaves
                        try:
                            await _arecord(self.store, Record(step.marks[1](time.time())))
                        except Exception as exc:  # the store failed: nothing was sent
                            cap.release()
                            step = _advance(flow, error=exc)
                            continue
                        except BaseException:  # cancelled
                            cap.release()
                            raise
                try:
                    response = await self._client(step.provider).request(**_request_args(step))
                except httpx.HTTPError as exc:
                    cap.release()
                    step = _advance(flow, error=_transport_error(step.provider, exc))
                    continue
                except BaseException:
                    cap.release()
                    raise
                cap.release()
                step = _advance(flow, _reply(response))
                del response  # the body is not kept while the flow waits
        except BaseException:
            flow.close()  # (as in SyncRunner.run)
            raise
        return step.value

    async def _slot_pause(self, step: Sleep) -> None:
        """A slot waiter's pause, ended early by a freed slot (handover.py); cancelled, the
        waiter's `gone` record gives its place in the queue up."""
        assert step.wake is not None
        try:
            await self.bell.sleep(step.wake, step.seconds, self._sleep, rank=step.rank)
        except BaseException:
            if step.gone is not None:
                try:  # (bounded: an event loop shutting down may have cancelled the writer)
                    await asyncio.wait_for(_arecord(self.store, step.gone), GONE_S)
                except Exception:  # (its place expires)
                    logger.debug("could not give a slot waiter's place up", exc_info=True)
                else:
                    if step.gone.frees is not None:
                        self.bell.ring(step.gone.frees)
            raise

    async def _poll(self, step: Poll, queued: _Queued) -> Found:
        """A batched poll where the vendor allows it, else this task alone."""
        if self.scheduler.batchable(step.provider, step.task):
            found, seconds = await self.scheduler.poll(step.provider, step.task)
            queued.seconds += seconds
            if found is not None:
                return found
        return await self.run(flows.locate(step.provider, step.calls, step.task.kind), queued)

    async def _exchange(self, provider: Provider, call: HttpCall) -> tuple[Any, float]:
        queued = _Queued()
        payload = await self.run(flows.exchange(provider, call), queued)
        return payload, queued.seconds

    async def aclose(self) -> None:
        await self.scheduler.aclose()
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
