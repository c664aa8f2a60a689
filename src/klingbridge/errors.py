"""Every error klingbridge raises, in one tree.

    KlingBridgeError
    ├── ConfigError               configuration that cannot work (unknown provider, bad price)
    ├── ValidationError           a request the provider cannot take; said before any I/O
    ├── ProviderError             the vendor said no
    │   ├── AuthError             bad or missing credentials, no permission for the model
    │   ├── QuotaError            balance, arrears, resource pack used up
    │   ├── RateLimitError        too many requests or concurrent tasks (carries retry_after)
    │   │   └── ConcurrencyLimitError  the account's concurrent-task slots are full (Kling 1303)
    │   ├── InvalidRequestError   the vendor rejected the request itself
    │   ├── NotFoundError         unknown task or model
    │   ├── ContentPolicyError    the prompt or media tripped the vendor's content rules
    │   └── ServerError           the vendor broke (5xx, maintenance)
    ├── TransportError            no usable answer: timeout, reset (carries may_have_been_received)
    ├── ProviderResponseError     an answer that does not parse (carries the payload)
    ├── TaskFailed                the task ran and failed or was cancelled (carries the Task)
    ├── WaitTimeout               the task did not finish before the deadline (carries the Task)
    ├── BudgetExceeded            a create would pass a USD budget; refused before any call
    ├── SlotTimeout               no concurrency slot came free before the deadline
    ├── LeaseLost                 another process took the job over; this run stopped
    ├── DownloadError             an output could not be saved (download.py; unsafe URL, disk)
    ├── CallbackRefused           a delivery to the receiver failed verification (provider.py)
    └── NoProviderAvailable       every candidate was skipped or failed (carries each attempt)

A task that fails is not an API error: `TaskFailed` is raised by `run`, never by `get`.

Two flags on `ProviderError` drive retries and fallback:
`retryable` (the same call may succeed later on the same provider) and
`fallback` (another provider may well succeed where this one did not).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import Task


class KlingBridgeError(Exception):
    """Base of every klingbridge error.

    `task` is the vendor task the error concerns, when one is known: a task id, once known, is
    never dropped, even when waiting for it fails.
    """

    task: Task | None = None
    #: The routed attempts that led to this error (`klingbridge.journal.Attempt`), when routed.
    attempts: Sequence[Any] = ()


class ConfigError(KlingBridgeError):
    """Configuration that cannot work. `where` names the file and key when known."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)
        #: Every problem found, one line each (the message names the first and counts the rest).
        self.problems: list[str] = [f"{where}: {message}" if where else message]

    @classmethod
    def many(cls, found: Sequence[tuple[str, str]]) -> ConfigError:
        """One error for several `(where, message)` problems."""
        where, message = found[0]
        more = f" (and {len(found) - 1} more problem(s): klingbridge config check)"
        error = cls(message + (more if len(found) > 1 else ""), where=where)
        error.problems = [f"{w}: {m}" for w, m in found]
        return error


class ValidationError(KlingBridgeError):
    """A request this provider cannot take (or no provider could: `provider` None, e.g. a
    request model's own limit), found before any network call."""

    def __init__(self, provider: str | None, field: str, limit: str, value: Any = None) -> None:
        self.provider = provider
        self.field = field
        self.limit = limit
        self.value = value
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        where = f"{provider}: " if provider else ""
        super().__init__(f"{where}{field} {limit} (got {shown})")


class ProviderError(KlingBridgeError):
    """The vendor answered with an error."""

    default_retryable = False
    default_fallback = False

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        http_status: int | None = None,
        code: int | str | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
        fallback: bool | None = None,
        retry_after: float | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        self.provider = provider
        self.http_status = http_status
        self.code = code
        self.vendor_message = message
        self.request_id = request_id
        self.retryable = self.default_retryable if retryable is None else retryable
        self.fallback = self.default_fallback if fallback is None else fallback
        self.retry_after = retry_after
        #: The vendor may have acted on the request anyway (a gateway timeout, an internal
        #: timeout): after a create, the task may exist and must be looked up, not re-created.
        self.outcome_unknown = outcome_unknown
        where = f"{provider}" + (f" {code}" if code is not None else "")
        if http_status is not None:
            where += f" (HTTP {http_status})"
        super().__init__(f"{where}: {message}")


class AuthError(ProviderError):
    default_fallback = True


class QuotaError(ProviderError):
    default_fallback = True


class RateLimitError(ProviderError):
    default_retryable = True
    default_fallback = True


class ConcurrencyLimitError(RateLimitError):
    """The account already runs as many tasks as it may (Kling 1303, PiAPI's 429 saying so).

    Another task ending frees a slot, so it is waited out with backoff on the same provider;
    a route falls back on it only with `fallback_on_concurrency_limit = true`.
    """

    default_fallback = False


class InvalidRequestError(ProviderError):
    pass


class NotFoundError(ProviderError):
    pass


class ContentPolicyError(ProviderError):
    pass


class ServerError(ProviderError):
    default_retryable = True
    default_fallback = True


class TransportError(KlingBridgeError):
    """The call got no usable answer. When `may_have_been_received`, a create may have happened."""

    def __init__(self, message: str, *, provider: str, may_have_been_received: bool) -> None:
        self.provider = provider
        self.may_have_been_received = may_have_been_received
        self.retryable = True
        self.fallback = True
        super().__init__(f"{provider}: {message}")


class ProviderResponseError(KlingBridgeError):
    """A vendor payload that cannot be read as what it should be.

    `retryable` is False when asking again cannot help (a task that ended with an unreadable
    result): a wait then stops with this error, the task id kept, instead of polling on.
    """

    def __init__(
        self, message: str, *, provider: str, payload: Any = None, retryable: bool = True
    ) -> None:
        self.provider = provider
        self.payload = payload
        self.retryable = retryable
        super().__init__(f"{provider}: {message}")


class TaskFailed(KlingBridgeError):
    """The task was accepted, ran, and ended failed or cancelled."""

    def __init__(self, task: Task) -> None:
        self.task: Task = task
        reason = str(task.status_message or task.provider_status)
        said = f"{task.status.value}:"  # the vendor's "task failed: ..." after "failed:" repeats
        for lead in (f"task {said}", said):
            if reason.lower().startswith(lead) and reason[len(lead) :].strip():
                reason = reason[len(lead) :].strip()
                break
        super().__init__(f"{task.provider} task {task.id} {task.status.value}: {reason}")


def seconds(value: float) -> str:
    """A duration as said to a person: `1`, not the `0.999916` left of a `--timeout 1`."""
    return f"{round(value, 1):g}"


class WaitTimeout(KlingBridgeError):
    """The deadline passed before the task finished. The task keeps running at the vendor."""

    def __init__(self, task: Task, timeout: float) -> None:
        self.task: Task = task
        self.timeout = timeout
        super().__init__(
            f"{task.provider} task {task.id} still {task.status.value} after "
            f"{seconds(timeout)} s; "
            f"check later with: klingbridge status --provider {task.provider} -- {task.id}"
        )


class NoProviderAvailable(KlingBridgeError):
    """Every candidate provider was skipped or failed. `attempts` says why, in order."""

    def __init__(self, message: str, attempts: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.attempts = list(attempts)
        #: True when every candidate refused the request or lacked its settings, before any call.
        self.bad_input = False


class BudgetExceeded(KlingBridgeError):
    """A create that would pass a budget: refused before anything is sent (CLI exit status 3).

    `spent_usd` is what ended tasks cost in the window (their charge, else their quote),
    `committed_usd` what tasks still running are quoted; `would_cost_usd` is this request's
    quote (None when its price is unknown and the budget does not allow unpriced requests).
    """

    def __init__(
        self,
        budget: str,
        *,
        window: str,
        limit_usd: float,
        spent_usd: float,
        committed_usd: float,
        would_cost_usd: float | None,
        provider: str | None = None,
        price_hint: str | None = None,
    ) -> None:
        self.budget = budget
        self.window = window
        self.limit_usd = limit_usd
        self.spent_usd = spent_usd
        self.committed_usd = committed_usd
        self.would_cost_usd = would_cost_usd
        self.provider = provider
        where = "" if window == "request" else f" per {window}" if window != "total" else " total"
        on = f" on {provider}" if provider else ""
        if would_cost_usd is None:  # nothing was exceeded: the request cannot be weighed at all
            named = budget if budget.startswith("--") else f"budget {budget}"
            allow = "" if window == "request" else "; allow_unpriced = true lets it through"
            super().__init__(
                f"{named} (${limit_usd:g}{where}) cannot be checked: no price is known for this "
                f"request{on}; {price_hint or 'docs/cost.md says how to configure one'}{allow}"
            )
            return
        if window == "request":  # a cap per request (`--max-usd`): nothing spent counts in it
            super().__init__(
                f"{budget} (${limit_usd:g} per request) exceeded: this request would cost "
                f"${would_cost_usd:.4f}{on}"
            )
            return
        super().__init__(
            f"budget {budget} (${limit_usd:g}{where}) exceeded: spent ${spent_usd:.4f}, "
            f"committed ${committed_usd:.4f}, this request would cost ${would_cost_usd:.4f}{on}"
        )


class LeaseLost(KlingBridgeError):
    """This run no longer holds its job's lease: another process has taken the job over.

    A lease lapses when its holder stops renewing it (a pause longer than the lease, a laptop
    suspended); a worker or `klingbridge wait` may then take the job. The run that lost it
    stops at once and sends nothing more (its next create would pay a second time): the new
    holder finishes the job (CLI exit status 4). `holder` is who holds it now, when known.
    """

    def __init__(self, key: str, holder: str | None = None) -> None:
        self.key = key
        self.holder = holder
        by = f"another process ({holder})" if holder else "another process"
        super().__init__(
            f"job {key} is now run by {by}: this run lost its lease and stopped without "
            f"sending anything more; klingbridge wait {key} follows it to its end"
        )


class SlotTimeout(KlingBridgeError):
    """No concurrency slot of `provider` came free before the deadline (nothing was sent).

    `unfollowed`: raised at once, because every slot in use is held by a job nobody follows
    (detached, or its process gone): no slot frees until a worker or `wait` sees those end.
    """

    def __init__(
        self,
        provider: str,
        *,
        in_use: int,
        limit: int,
        waited_s: float,
        unfollowed: Sequence[str] = (),
    ) -> None:
        self.provider = provider
        self.in_use = in_use
        self.limit = limit
        self.waited_s = waited_s
        self.unfollowed = tuple(unfollowed)
        if unfollowed:
            keys = ", ".join(unfollowed[:5]) + (
                f" and {len(unfollowed) - 5} more" if len(unfollowed) > 5 else ""
            )
            message = (
                f"{provider}: every concurrency slot ({in_use}/{limit} in use) is held by jobs "
                f"nobody is following (detached, or their process gone): {keys}; their tasks "
                "may have ended at the vendor long ago: `klingbridge worker` (or `klingbridge "
                "wait KEY`) finishes them and frees their slots"
            )
        else:
            message = (
                f"{provider}: no concurrency slot came free in {seconds(waited_s)} s "
                f"({in_use}/{limit} in use; max_concurrent = {limit}); nothing was sent"
            )
        super().__init__(message)
