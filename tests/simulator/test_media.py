"""Media bytes checked in pure Python: WAV through ``wave``, MP3 frames, MP4 boxes, PNG chunks."""

from __future__ import annotations

import io
import struct
import wave
import zlib
from array import array
from typing import Any

import anyio
import httpx
import pytest

from klingbridge.simulator.audio import mp3_bytes, mp3_duration_s, wav_bytes
from klingbridge.simulator.png import png_bytes
from klingbridge.simulator.video import mp4_bytes, split_annex_b

from .support import kling_headers

MP3_BITRATES_V1_L3 = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
MP3_RATES_V1 = [44100, 48000, 32000]


@pytest.mark.parametrize("duration_ms", [3000, 3300, 7700, 10000])
def test_wav_has_the_exact_duration_and_a_signal(duration_ms: int) -> None:
    with wave.open(io.BytesIO(wav_bytes(42, duration_ms))) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getcomptype()) == (1, 2, "NONE")
        assert wav.getnframes() / wav.getframerate() == duration_ms / 1000
        samples = array("h", wav.readframes(wav.getnframes()))
    assert max(abs(s) for s in samples) > 5000  # audible, not silence


def test_wav_melody_depends_on_the_seed() -> None:
    assert wav_bytes(1, 3000) != wav_bytes(2, 3000)
    assert wav_bytes(1, 3000) == wav_bytes(1, 3000)


def mp3_frames(data: bytes) -> list[tuple[int, int]]:
    """Walk MPEG-1 Layer III frames; each is (offset, length).  Fails on anything else."""
    frames, pos = [], 0
    while pos < len(data):
        b1, b2, b3 = data[pos + 1], data[pos + 2], data[pos + 3]
        assert data[pos] == 0xFF and b1 & 0xE0 == 0xE0, f"no frame sync at {pos}"
        assert (b1 >> 3) & 0b11 == 0b11, "MPEG-1"
        assert (b1 >> 1) & 0b11 == 0b01, "Layer III"
        bitrate = MP3_BITRATES_V1_L3[b2 >> 4] * 1000
        rate = MP3_RATES_V1[(b2 >> 2) & 0b11]
        padding = (b2 >> 1) & 1
        assert bitrate and b3 >> 6 in (0, 1, 2, 3)
        length = 144 * bitrate // rate + padding
        frames.append((pos, length))
        pos += length
    assert pos == len(data), "the last frame is complete"
    return frames


@pytest.mark.parametrize("duration_ms", [3000, 3300, 5000, 10000])
def test_mp3_frames_add_up_to_the_duration(duration_ms: int) -> None:
    data = mp3_bytes(duration_ms)
    frames = mp3_frames(data)
    duration = len(frames) * 1152 / 44100
    assert duration == mp3_duration_s(duration_ms)
    assert abs(duration - duration_ms / 1000) <= 1152 / 44100 / 2
    # Padding keeps the mean frame length at 144 * 64000 / 44100 bytes (exact CBR).
    assert abs(len(data) / len(frames) - 144 * 64000 / 44100) < 0.01


def boxes(data: bytes, start: int = 0, end: int | None = None) -> dict[bytes, tuple[int, int]]:
    """Child boxes of a region: type -> (payload start, payload end)."""
    end = len(data) if end is None else end
    found, pos = {}, start
    while pos < end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        assert size >= 8 and pos + size <= end, f"box {kind!r} overruns"
        found[kind] = (pos + 8, pos + size)
        pos += size
    assert pos == end
    return found


def path(data: bytes, *kinds: bytes) -> tuple[int, int]:
    start, end = 0, len(data)
    for kind in kinds:
        start, end = boxes(data, start, end)[kind]
    return start, end


@pytest.mark.parametrize(
    ("width", "height", "duration_ms"), [(320, 180, 5000), (180, 320, 10000), (240, 240, 15000)]
)
def test_mp4_boxes_declare_the_duration_and_hold_an_idr_picture(
    width: int, height: int, duration_ms: int
) -> None:
    data = mp4_bytes(width, height, duration_ms)
    assert len(data) < 4096
    assert list(boxes(data)) == [b"ftyp", b"moov", b"mdat"]
    mvhd, _ = path(data, b"moov", b"mvhd")
    timescale, duration = struct.unpack(">II", data[mvhd + 12 : mvhd + 20])
    assert duration / timescale == duration_ms / 1000
    _, tkhd_end = path(data, b"moov", b"trak", b"tkhd")
    assert struct.unpack(">II", data[tkhd_end - 8 : tkhd_end]) == (width << 16, height << 16)
    mdhd, _ = path(data, b"moov", b"trak", b"mdia", b"mdhd")
    media_scale, media_duration = struct.unpack(">II", data[mdhd + 12 : mdhd + 20])
    assert media_duration / media_scale == duration_ms / 1000
    stbl = (b"moov", b"trak", b"mdia", b"minf", b"stbl")
    stsd, stsd_end = path(data, *stbl, b"stsd")
    assert data[stsd + 12 : stsd + 16] == b"avc1" and b"avcC" in data[stsd:stsd_end]
    stts, _ = path(data, *stbl, b"stts")
    assert struct.unpack(">III", data[stts + 4 : stts + 16]) == (1, 1, duration_ms)
    stsz, _ = path(data, *stbl, b"stsz")
    sample_size = struct.unpack(">I", data[stsz + 12 : stsz + 16])[0]
    stco, _ = path(data, *stbl, b"stco")
    offset = struct.unpack(">I", data[stco + 8 : stco + 12])[0]
    mdat, mdat_end = boxes(data)[b"mdat"]
    assert offset == mdat and mdat_end - mdat == sample_size
    nal_length = struct.unpack(">I", data[offset : offset + 4])[0]
    assert nal_length == sample_size - 4
    assert data[offset + 4] & 0x1F == 5  # an IDR slice


def test_annex_b_split() -> None:
    stream = b"\x00\x00\x00\x01\x67\xaa\x00\x00\x01\x68\xbb\x00\x00\x00\x01\x65\xcc\xdd"
    assert split_annex_b(stream) == [b"\x67\xaa", b"\x68\xbb", b"\x65\xcc\xdd"]


def test_mp4_refuses_sizes_without_a_picture() -> None:
    with pytest.raises(ValueError):
        mp4_bytes(1920, 1080, 5000)


def test_png_chunks_are_valid() -> None:
    data = png_bytes(3, 414, 414)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks[kind] = body
        pos += 12 + length
    assert list(chunks) == [b"IHDR", b"IDAT", b"IEND"]
    assert struct.unpack(">II", chunks[b"IHDR"][:8]) == (414, 414)
    assert len(zlib.decompress(chunks[b"IDAT"])) == 414 * (1 + 414 * 3)


@pytest.mark.anyio
async def test_media_endpoint_serves_every_url_of_a_task(client: httpx.AsyncClient) -> None:
    kling = await client.post(
        "/v1/videos/text2video",
        json={"model_name": "kling-v3", "prompt": "a fox", "duration": "4", "aspect_ratio": "1:1"},
        headers=kling_headers(),
    )
    audio = await client.post(
        "/v1/audio/text-to-audio",
        json={"prompt": "birds", "duration": 5.5},
        headers=kling_headers(),
    )
    await anyio.sleep(0.12)
    video_data: dict[str, Any] = (
        await client.get(
            f"/v1/videos/text2video/{kling.json()['data']['task_id']}", headers=kling_headers()
        )
    ).json()["data"]
    audio_data: dict[str, Any] = (
        await client.get(
            f"/v1/audio/text-to-audio/{audio.json()['data']['task_id']}", headers=kling_headers()
        )
    ).json()["data"]
    video = video_data["task_result"]["videos"][0]
    sound = audio_data["task_result"]["audios"][0]
    expected = {
        video["url"]: "video/mp4",
        video["watermark_url"]: "video/mp4",
        sound["url_mp3"]: "audio/mpeg",
        sound["url_wav"]: "audio/wav",
    }
    for url, content_type in expected.items():
        response = await client.get(url)
        assert response.status_code == 200 and response.headers["content-type"] == content_type
    wav = (await client.get(sound["url_wav"])).content
    with wave.open(io.BytesIO(wav)) as reader:
        assert reader.getnframes() / reader.getframerate() == 5.5
    mp4 = (await client.get(video["url"])).content
    mvhd, _ = path(mp4, b"moov", b"mvhd")
    assert struct.unpack(">II", mp4[mvhd + 12 : mvhd + 20]) == (1000, 4000)
    state = (await client.get("/_sim/state")).json()
    assert state["media_requests"] == 6


@pytest.mark.anyio
@pytest.mark.parametrize(
    "name",
    [
        "x.mp3",
        "a12-0ms.wav",
        "a12-9999999ms.wav",
        "v1920x1080-5000ms.mp4",
        "c1-0x5.png",
        "a12-100ms.ogg",
    ],
)
async def test_media_endpoint_refuses_unknown_names(client: httpx.AsyncClient, name: str) -> None:
    assert (await client.get(f"/media/any/{name}")).status_code == 404
