"""Two savers of the same job's files at once: each writes its own temporary file and renames
it into place; neither removes the other's (only parts untouched for STALE_PART_S are stale).

Two savers happen without any crash: the receiver's `_save` saves a job nobody holds without
taking its lease, while `klingbridge worker` claims the same job (succeeded, unsaved, no lease)
and saves it too; and a worker whose lease was taken over mid-save (a suspended laptop) stops
only at its next chunk.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from klingbridge import File, Output, Task, TaskStatus
from klingbridge.download import DownloadError, save_outputs

TASK = Task(
    provider="kling", id="K-1", kind="video", status=TaskStatus.SUCCEEDED,
    outputs=[Output(kind="video", files=[File(url="https://cdn.test/v.mp4", format="mp4")])],
)
BODY = b"x" * (1 << 17)


def test_a_second_saver_does_not_break_the_first(tmp_path: Path) -> None:
    out = tmp_path / "out"
    second: list[object] = []

    def streamed() -> Iterator[bytes]:
        yield BODY[: 1 << 16]
        if not second:  # meanwhile, another process saves the same job's files
            plain = httpx.Client(transport=httpx.MockTransport(
                lambda r: httpx.Response(200, content=BODY)))
            second.append(save_outputs(TASK, out, client=plain))
        yield BODY[1 << 16 :]

    first = httpx.Client(transport=httpx.MockTransport(
        lambda r: httpx.Response(200, content=streamed())))
    try:
        (saved,) = save_outputs(TASK, out, client=first)
    except DownloadError as error:
        pytest.fail(f"the first saver failed: {error}")
    assert saved.path.read_bytes() == BODY and saved.bytes == len(BODY)
    assert second and list(out.glob(".*.part")) == []
