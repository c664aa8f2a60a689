"""Request options shared by `klingbridge generate` and `klingbridge quote`.

One table per kind: each CLI option is declared once and turned into the request's field, so the
two commands cannot drift apart.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from ..models import Request, SoundRequest, SpeechRequest, VideoRequest

F = Callable[..., Any]


@dataclass(frozen=True)
class Kind:
    name: str
    model: type[SoundRequest] | type[SpeechRequest] | type[VideoRequest]
    text_field: str  # the positional argument's field: prompt or text
    options: tuple[click.Option, ...]
    help: str


KINDS = {
    "sound": Kind(
        "sound",
        SoundRequest,
        "prompt",
        (
            click.Option(
                ["--duration"], type=float, default=5.0, show_default=True, help="Seconds of audio."
            ),
        ),
        "A sound effect from a text prompt.",
    ),
    "speech": Kind(
        "speech",
        SpeechRequest,
        "text",
        (
            click.Option(
                ["--voice"], default="oversea_male1", show_default=True, help="Vendor voice id."
            ),
            click.Option(["--language"], default=None, help="Voice language, e.g. en or zh."),
            click.Option(["--speed"], type=float, default=1.0, show_default=True),
        ),
        "Text to speech.",
    ),
    "video": Kind(
        "video",
        VideoRequest,
        "prompt",
        (
            click.Option(
                ["--model"], default="kling-v2-6", show_default=True, help="Kling model name."
            ),
            click.Option(
                ["--mode"], type=click.Choice(["std", "pro"]), default="std", show_default=True
            ),
            click.Option(["--aspect-ratio"], default="16:9", show_default=True),
            click.Option(
                ["--duration"], type=int, default=5, show_default=True, help="Seconds of video."
            ),
            click.Option(["--negative-prompt"], default=None),
            click.Option(["--image-url"], default=None, help="Image to video from this image."),
            click.Option(["--image-tail-url"], default=None, help="Last frame image."),
            click.Option(["--sound/--no-sound"], default=False, help="Generate audio too."),
            click.Option(["--cfg-scale"], type=float, default=None),
        ),
        "A video from a prompt (and an image, with --image-url).",
    ),
}


def build_request(kind: str, text: str | None, options: dict[str, Any]) -> Request:
    spec = KINDS[kind]
    fields = {o.name: options.pop(o.name) for o in spec.options if o.name in options}
    fields[spec.text_field] = text if text is not None else "(price quote)"
    return spec.model(**fields)


def kind_commands(
    group: click.Group,
    callback: Callable[..., None],
    extra: tuple[click.Parameter, ...],
    *,
    text_required: bool,
) -> None:
    """Add one subcommand per kind to `group`, calling `callback(kind, text=..., **options)`."""
    for spec in KINDS.values():
        text = click.Argument(["text"], required=text_required, metavar=spec.text_field.upper())
        group.add_command(
            click.Command(
                spec.name,
                callback=functools.partial(callback, spec.name),
                params=[text, *spec.options, *extra],
                help=spec.help,
            )
        )
