"""The simulator's own media URLs: ``{base}/media/<label...>/<name>``.

The file name alone says what to generate, so a URL stays valid after ``/_sim/reset`` and no
task lookup is needed to serve it; the label path segments (task id, "wm", "copy" ...) only make
each rendition's URL distinct, the way a vendor's watermarked and clean copies differ.

Names::

    a<seed hex>-<ms>ms.wav | .mp3      audio (the seed picks the melody of the WAV)
    v<W>x<H>-<ms>ms.mp4                video (W x H must be a bundled picture size)
    c<seed hex>-<W>x<H>.png            cover image

Files are generated on the first GET and cached (see the ``lru_cache`` of each generator).
"""

from __future__ import annotations

import re
import zlib

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from .audio import mp3_bytes, wav_bytes
from .png import png_bytes
from .video import VIDEO_SIZES, mp4_bytes

MAX_MEDIA_MS = 600_000
MAX_IMAGE_SIDE = 2048
CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "mp4": "video/mp4", "png": "image/png"}

_AUDIO = re.compile(r"a(?P<seed>[0-9a-f]{1,8})-(?P<ms>\d{1,7})ms\.(?P<ext>wav|mp3)")
_VIDEO = re.compile(r"v(?P<w>\d{1,4})x(?P<h>\d{1,4})-(?P<ms>\d{1,7})ms\.mp4")
_IMAGE = re.compile(r"c(?P<seed>[0-9a-f]{1,8})-(?P<w>\d{1,4})x(?P<h>\d{1,4})\.png")


def seed_of(text: str) -> int:
    """A stable 32-bit seed from a prompt (or any text), for media that differ per request."""
    return zlib.crc32(text.encode("utf-8"))


def audio_name(seed: int, duration_ms: int, ext: str) -> str:
    return f"a{seed:x}-{duration_ms}ms.{ext}"


def video_name(width: int, height: int, duration_ms: int) -> str:
    return f"v{width}x{height}-{duration_ms}ms.mp4"


def image_name(seed: int, width: int, height: int) -> str:
    return f"c{seed:x}-{width}x{height}.png"


def media_url(base_url: str, *parts: str) -> str:
    """``base_url`` is the request's base URL, so links work through ASGI, loopback or a proxy."""
    return f"{base_url.rstrip('/')}/media/{'/'.join(parts)}"


def render(name: str) -> tuple[bytes, str] | None:
    """The bytes and content type a media name stands for, or None if the name is not one."""
    if match := _AUDIO.fullmatch(name):
        ms, ext = int(match["ms"]), match["ext"]
        if not 0 < ms <= MAX_MEDIA_MS:
            return None
        data = wav_bytes(int(match["seed"], 16), ms) if ext == "wav" else mp3_bytes(ms)
        return data, CONTENT_TYPES[ext]
    if match := _VIDEO.fullmatch(name):
        size, ms = (int(match["w"]), int(match["h"])), int(match["ms"])
        if size not in VIDEO_SIZES.values() or not 0 < ms <= MAX_MEDIA_MS:
            return None
        return mp4_bytes(*size, ms), CONTENT_TYPES["mp4"]
    if match := _IMAGE.fullmatch(name):
        w, h = int(match["w"]), int(match["h"])
        if not (0 < w <= MAX_IMAGE_SIDE and 0 < h <= MAX_IMAGE_SIDE):
            return None
        return png_bytes(int(match["seed"], 16), w, h), CONTENT_TYPES["png"]
    return None


async def media_endpoint(request: Request) -> Response:
    request.app.state.simulator.counters.media += 1
    name = request.path_params["path"].rsplit("/", 1)[-1]
    rendered = render(name)
    if rendered is None:
        return PlainTextResponse("media not found", status_code=404)
    data, content_type = rendered
    return Response(data, media_type=content_type, headers={"Cache-Control": "max-age=86400"})
