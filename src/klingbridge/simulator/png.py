"""Cover images: a small PNG (vertical two-colour gradient) written with zlib and struct."""

from __future__ import annotations

import random
import struct
import zlib
from functools import lru_cache


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


@lru_cache(maxsize=32)
def png_bytes(seed: int, width: int, height: int) -> bytes:
    """An RGB PNG whose colours are picked by ``seed``, so covers of different tasks differ."""
    rng = random.Random(seed)
    top = [rng.randrange(40, 256) for _ in range(3)]
    bottom = [rng.randrange(0, 120) for _ in range(3)]
    rows = []
    for y in range(height):
        t = y / max(1, height - 1)
        pixel = bytes(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        rows.append(b"\x00" + pixel * width)  # filter type 0 (None) for every row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + _chunk(b"IEND", b"")
    )
