"""The README's run command, as a new user runs it: the installed `klingbridge` script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import pytest

SCRIPT = shutil.which("klingbridge")


@pytest.mark.skipif(SCRIPT is None, reason="the console script is installed by pip install -e .")
def test_demo_saves_playable_audio_from_both_vendors(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KLING", "PIAPI"))}
    result = subprocess.run(
        [SCRIPT or "klingbridge", "demo", "--out", "clips", "--duration", "5"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "kling" in result.stdout and "piapi" in result.stdout
    clips = tmp_path / "clips"
    wavs = sorted(clips.glob("kling-*.wav"))
    assert len(wavs) == 1
    with wave.open(str(wavs[0])) as audio:
        assert audio.getnframes() / audio.getframerate() == pytest.approx(5.0, abs=0.01)
    mp3s = {p.name.split("-")[0] for p in clips.glob("*.mp3")}
    assert mp3s == {"kling", "piapi"}
    for mp3 in clips.glob("*.mp3"):
        head = mp3.read_bytes()[:3]
        assert head == b"ID3" or head[:2] == b"\xff\xfb"


def test_module_entry_point_prints_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "klingbridge.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "generate" in result.stdout and "normalize" in result.stdout
