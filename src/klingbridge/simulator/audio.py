"""WAV and MP3 bytes of an exact duration, with no encoder dependency.

WAV: 16-bit mono PCM at 22,050 Hz, an audible little melody chosen by a seed (the simulator
derives the seed from the prompt).  Every note lasts 0.2 s and has a frequency that is a
multiple of 5 Hz, so it starts and ends at phase zero: the notes are computed once, cached, and
concatenated, which keeps a 10 s file to a few milliseconds of work.

MP3: consecutive MPEG-1 Layer III frames (64 kbps, 44.1 kHz, mono) whose side information and
main data are all zeros; every decoder reads that as silence.  The duration is
``frames * 1152 / 44100`` seconds, so it is the requested duration rounded to 26.1 ms.
"""

from __future__ import annotations

import io
import math
import random
import sys
import wave
from array import array
from functools import lru_cache

WAV_RATE = 22_050
_NOTE_SAMPLES = WAV_RATE // 5  # 0.2 s
_SCALE_HZ = (220, 245, 275, 330, 370, 440, 490, 550, 660, 740)  # pentatonic-ish, all k * 5 Hz

MP3_RATE = 44_100
MP3_SAMPLES_PER_FRAME = 1152
MP3_BITRATE = 64_000
# Sync 0xFFF, MPEG-1 (11), Layer III (01), no CRC (1) | bitrate index 5 (64 kbps), 44.1 kHz (00),
# padding bit set per frame | mono (11), original (1).
MP3_HEADER = (0xFF, 0xFB, 0x50, 0xC4)
_MP3_SIDE_INFO_MONO = 17


# Amplitude of every note: a 9 ms attack, then an exponential decay (computed once).
_ENVELOPE = [
    12_000 * min(1.0, n / 200) * math.exp(-2.5 * n / _NOTE_SAMPLES) for n in range(_NOTE_SAMPLES)
]


@lru_cache(maxsize=len(_SCALE_HZ))
def _note(freq: int) -> bytes:
    """One 0.2 s note: a tone plus 30 % of its octave (sin 2x = 2 sin x cos x), enveloped."""
    step = 2 * math.pi * freq / WAV_RATE
    samples = array("h")
    for n, amp in enumerate(_ENVELOPE):
        x = step * n
        samples.append(int(amp * math.sin(x) * (1 + 0.6 * math.cos(x))))
    if sys.byteorder == "big":
        samples.byteswap()  # WAV is little-endian
    return samples.tobytes()


def wav_frames(duration_ms: int) -> int:
    return round(duration_ms * WAV_RATE / 1000)


@lru_cache(maxsize=32)
def wav_bytes(seed: int, duration_ms: int) -> bytes:
    """A WAV file holding exactly ``duration_ms`` (to the sample) of a seeded melody."""
    frames = wav_frames(duration_ms)
    rng = random.Random(seed)
    notes = [_note(rng.choice(_SCALE_HZ)) for _ in range(-(-frames // _NOTE_SAMPLES))]
    pcm = b"".join(notes)[: frames * 2]
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(WAV_RATE)
        wav.writeframes(pcm)
    return out.getvalue()


def mp3_frame_count(duration_ms: int) -> int:
    return max(1, round(duration_ms / 1000 * MP3_RATE / MP3_SAMPLES_PER_FRAME))


def mp3_duration_s(duration_ms: int) -> float:
    """The real duration of ``mp3_bytes(duration_ms)``: whole frames of 1152 samples."""
    return mp3_frame_count(duration_ms) * MP3_SAMPLES_PER_FRAME / MP3_RATE


def _mp3_frame(padded: bool) -> bytes:
    size = 144 * MP3_BITRATE // MP3_RATE + (1 if padded else 0)
    header = bytes((*MP3_HEADER[:2], MP3_HEADER[2] | (0x02 if padded else 0), MP3_HEADER[3]))
    return header + bytes(size - len(header))  # zero side info and main data: silence


_FRAME_PLAIN, _FRAME_PADDED = _mp3_frame(False), _mp3_frame(True)


@lru_cache(maxsize=32)
def mp3_bytes(duration_ms: int) -> bytes:
    """A constant-bitrate MP3 stream of silence, padded per frame as the standard prescribes.

    The padding slot is added whenever the running remainder of 144 * bitrate / rate reaches a
    full byte, which keeps the average frame length exact (so bitrate-based duration estimates,
    as ffprobe makes, agree with the frame count).
    """
    remainder_step = 144 * MP3_BITRATE % MP3_RATE
    acc = 0
    frames = []
    for _ in range(mp3_frame_count(duration_ms)):
        acc += remainder_step
        if acc >= MP3_RATE:
            acc -= MP3_RATE
            frames.append(_FRAME_PADDED)
        else:
            frames.append(_FRAME_PLAIN)
    return b"".join(frames)
