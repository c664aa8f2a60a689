"""MP4 files of any duration, written in Python around one pre-encoded H.264 picture.

The picture (SPS, PPS and an IDR slice, see ``assets/README.md``) becomes a single sample whose
duration spans the whole file, so a player shows one still frame for the requested time.  The
``moov`` box comes before ``mdat`` ("fast start").  Only the boxes ISO/IEC 14496-12 requires
are written, all in version 0 with 32-bit fields.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from importlib import resources

TIMESCALE = 1000  # ms: every duration the simulator serves is a whole number of milliseconds
VIDEO_SIZES: dict[str, tuple[int, int]] = {
    "16:9": (320, 180),
    "9:16": (180, 320),
    "1:1": (240, 240),
}
_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _box(kind: bytes, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *parts)


def split_annex_b(stream: bytes) -> list[bytes]:
    """NAL units of an Annex B byte stream (start codes 00 00 01 or 00 00 00 01)."""
    units, start = [], -1
    i = 0
    while i + 3 <= len(stream):
        if stream[i : i + 3] == b"\x00\x00\x01":
            if start >= 0:
                units.append(stream[start:i].rstrip(b"\x00"))
            start = i = i + 3
            continue
        i += 1
    if start >= 0:
        units.append(stream[start:])
    return [unit for unit in units if unit]


@lru_cache(maxsize=len(VIDEO_SIZES))
def _keyframe(width: int, height: int) -> tuple[bytes, bytes, bytes]:
    """(SPS, PPS, IDR slice) of the bundled picture of that size."""
    name = f"keyframe_{width}x{height}.h264"
    data = (resources.files(__package__) / "assets" / name).read_bytes()
    by_type = {unit[0] & 0x1F: unit for unit in split_annex_b(data)}
    return by_type[7], by_type[8], by_type[5]


def _avc_sample_entry(width: int, height: int, sps: bytes, pps: bytes) -> bytes:
    avcc = _box(
        b"avcC",
        bytes((1, sps[1], sps[2], sps[3], 0xFF, 0xE1)),  # 4-byte NAL lengths, one SPS
        struct.pack(">H", len(sps)),
        sps,
        bytes((1,)),
        struct.pack(">H", len(pps)),
        pps,
    )
    return _box(
        b"avc1",
        bytes(6),
        struct.pack(">H", 1),  # data_reference_index
        bytes(16),  # pre_defined / reserved
        struct.pack(">HHII", width, height, 0x480000, 0x480000),  # size, 72 dpi
        bytes(4),
        struct.pack(">H", 1),  # frame_count
        bytes(32),  # compressorname
        struct.pack(">Hh", 0x18, -1),  # depth, pre_defined
        avcc,
    )


def _moov(width: int, height: int, duration: int, sample: bytes, offset: int) -> bytes:
    sps, pps, _ = _keyframe(width, height)
    stbl = _box(
        b"stbl",
        _full_box(b"stsd", 0, 0, struct.pack(">I", 1), _avc_sample_entry(width, height, sps, pps)),
        _full_box(b"stts", 0, 0, struct.pack(">III", 1, 1, duration)),
        _full_box(b"stss", 0, 0, struct.pack(">II", 1, 1)),
        _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, 1, 1)),
        _full_box(b"stsz", 0, 0, struct.pack(">III", 0, 1, len(sample))),
        _full_box(b"stco", 0, 0, struct.pack(">II", 1, offset)),
    )
    minf = _box(
        b"minf",
        _full_box(b"vmhd", 0, 1, bytes(8)),
        _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1))),
        stbl,
    )
    mdia = _box(
        b"mdia",
        _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, TIMESCALE, duration, 0x55C4, 0)),
        _full_box(b"hdlr", 0, 0, bytes(4), b"vide", bytes(12), b"VideoHandler\x00"),
        minf,
    )
    tkhd = _full_box(
        b"tkhd",
        0,
        3,  # enabled, in movie
        struct.pack(">IIIII", 0, 0, 1, 0, duration),
        bytes(8),
        struct.pack(">hhhH", 0, 0, 0, 0),  # layer, alternate group, volume, reserved
        _MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )
    mvhd = _full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, TIMESCALE, duration),
        struct.pack(">IH", 0x10000, 0x100),  # rate 1.0, volume 1.0
        bytes(10),
        _MATRIX,
        bytes(24),
        struct.pack(">I", 2),  # next_track_ID
    )
    return _box(b"moov", mvhd, _box(b"trak", tkhd, mdia))


@lru_cache(maxsize=32)
def mp4_bytes(width: int, height: int, duration_ms: int) -> bytes:
    """A playable MP4 of ``duration_ms`` showing the bundled picture of that size."""
    if (width, height) not in VIDEO_SIZES.values():
        raise ValueError(f"no bundled picture of {width}x{height}")
    _, _, idr = _keyframe(width, height)
    sample = struct.pack(">I", len(idr)) + idr
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso2avc1mp41")
    moov_size = len(_moov(width, height, duration_ms, sample, 0))
    offset = len(ftyp) + moov_size + 8  # first byte of the sample, inside mdat
    return ftyp + _moov(width, height, duration_ms, sample, offset) + _box(b"mdat", sample)
