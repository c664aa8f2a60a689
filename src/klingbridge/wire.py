"""What a provider asks the transport for (`HttpCall`) and what it is given back (`HttpReply`).

Plain descriptions of one HTTP exchange: no socket, no client. Providers build the one and
read the other (provider.py); the transports run them (transport.py, flows.py).
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .parsing import loads

JsonParams = Mapping[str, str | int | float]


@dataclass(frozen=True)
class HttpCall:
    """One HTTP exchange a provider wants made. `path` is relative to the provider's base URL."""

    method: str
    path: str
    params: JsonParams | None = None
    json: Any = None
    #: True when the call may create (and bill) a task. Informational for the transport; the
    #: router never retries such a call blindly once it may have reached the vendor.
    creates: bool = False


class HttpReply:
    """What came back: the status, the headers and the body (parsed as JSON when it is JSON).

    Built from the body's `text`, or (by the transport) from its raw `content`: then the bytes
    go straight to the JSON parser, and `text` is decoded only if something reads it.
    """

    __slots__ = ("_content", "_text", "headers", "status_code")

    def __init__(
        self,
        status_code: int,
        headers: Mapping[str, str] | None = None,
        text: str | None = None,
        *,
        content: bytes | None = None,
    ) -> None:
        self.status_code = status_code
        self.headers: Mapping[str, str] = headers if headers is not None else {}
        self._text = text if text is not None or content is not None else ""
        self._content = content

    @property
    def text(self) -> str:
        """The body as text (decoded from `content` by its charset, UTF-8 by default)."""
        if self._text is None:
            assert self._content is not None
            self._text = self._content.decode(_charset(self.headers), errors="replace")
        return self._text

    def json(self) -> Any:
        """The body as JSON; raises ValueError when it is not JSON."""
        if self._content is not None:
            try:
                return loads(self._content)
            except UnicodeDecodeError:  # a body in another charset than JSON's UTF-8
                pass
        return loads(self.text)

    def __repr__(self) -> str:
        return f"HttpReply({self.status_code}, {self.text[:80]!r})"


def _charset(headers: Mapping[str, str]) -> str:
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            try:
                return codecs.lookup(value.strip('"')).name
            except LookupError:
                break
    return "utf-8"
