"""Request options shared by `klingbridge generate` and `klingbridge quote`.

One table per kind: each CLI option is declared once and turned into the request's field, so the
two commands cannot drift apart.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import click

from ..errors import NoProviderAvailable, ValidationError
from ..models import Request, SoundForVideoRequest, SoundRequest, SpeechRequest, VideoRequest

F = Callable[..., Any]


@dataclass(frozen=True)
class Kind:
    name: str
    model: (
        type[SoundRequest] | type[SpeechRequest] | type[VideoRequest] | type[SoundForVideoRequest]
    )
    text_field: str | None  # the positional argument's field (prompt or text), if it has one
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
            click.Option(
                ["--negative-prompt"], default=None, help="What the video should not show."
            ),
            click.Option(["--image-url"], default=None, help="Image to video from this image."),
            click.Option(["--image-tail-url"], default=None, help="Last frame image."),
            click.Option(["--sound/--no-sound"], default=False, help="Generate audio too."),
            click.Option(
                ["--cfg-scale"],
                type=float,
                default=None,
                help="How closely the video follows the prompt, 0-1 (higher: closer); "
                "legacy-design models only. Default: the vendor's.",
            ),
            click.Option(
                ["--resolution"],
                default=None,
                help="720p, 1080p or 4k (Kling's new-design models; default from --mode).",
            ),
        ),
        "A video from a prompt (and an image, with --image-url).",
    ),
    "sound-for-video": Kind(
        "sound-for-video",
        SoundForVideoRequest,
        None,
        (
            click.Option(
                ["--from-task", "task_id"],
                default=None,
                help="The video task to add sound to (run by the same --provider).",
            ),
            click.Option(["--video-url"], default=None, help="A video by URL (Kling only)."),
            click.Option(["--prompt"], default=None, help="Sound effects to make."),
            click.Option(["--music-prompt"], default=None, help="Background music (Kling only)."),
            click.Option(["--asmr"], is_flag=True, default=False, help="Kling's ASMR mode."),
        ),
        "Add sound to a video: a task's (--from-task ID) or one by URL (--video-url).",
    ),
}
#: What a quote puts in place of what only a run can know (no call is made for a quote).
QUOTE_PLACEHOLDER = "(price quote)"


def build_request(
    kind: str, text: str | None, options: dict[str, Any], *, for_quote: bool = False
) -> Request:
    spec = KINDS[kind]
    fields = {o.name: options.pop(o.name) for o in spec.options if o.name in options}
    if spec.text_field is not None:
        fields[spec.text_field] = text if text is not None else QUOTE_PLACEHOLDER
    if spec.model is SoundForVideoRequest and for_quote and not fields.get("video_url"):
        # The price does not depend on which video: stand in for what a run reads from the task.
        fields["task_id"] = fields.get("task_id") or QUOTE_PLACEHOLDER
        fields["video_id"] = QUOTE_PLACEHOLDER
    try:
        return spec.model(**fields)
    except ValidationError as error:
        raise as_typed(spec, error) from error


def typed_names(spec: Kind) -> dict[str, str]:
    """Each request field by what the user typed for it: `--duration`, `--from-task`, `PROMPT`."""
    names = {o.name: o.opts[0] for o in spec.options if o.name is not None}
    if spec.text_field is not None:
        names[spec.text_field] = spec.text_field.upper()
    return names


def typed_reason(kind: str, reason: str) -> str:
    """A provider's reason (`kling: aspect_ratio must be one of ...`, `piapi skipped: duration
    must be 5 or 10 s`) with the field named by the option typed (`--aspect-ratio`)."""
    for field, typed in typed_names(KINDS[kind]).items():
        # (`image_url` is a field's name wherever it is; `sound`, `mode` only as the subject)
        where = rf"(?<![\w.-]){re.escape(field)}\b" if "_" in field else rf"(?<=: ){field}(?= )"
        reason = re.sub(where, typed, reason)
    return reason


@contextlib.contextmanager
def typed_errors(kind: str) -> Iterator[None]:
    """Provider checks' refusals (a `ValidationError`, or every provider skipped) reworded by
    `typed_reason`: raised again, of the same type, carrying the same details."""
    try:
        yield
    except (ValidationError, NoProviderAvailable) as error:
        error.args = (typed_reason(kind, str(error)),)
        raise


def as_typed(spec: Kind, error: ValidationError) -> ValidationError:
    """A request's own error (`SoundRequest.duration must be greater than 0`) as the CLI user
    reads it: named by the option typed (`--duration must be greater than 0`). A library user
    keeps the field's name: only the CLI knows which option set it."""
    prefix = f"{spec.model.__name__}."
    if error.field == f"{prefix}video":  # (no video given: none of the options that name one)
        return ValidationError(None, "--from-task or --video-url", "must name the video", None)
    renamed = {prefix + field: typed for field, typed in typed_names(spec).items()}
    field = renamed.get(error.field, error.field)
    typed = ValidationError(error.provider, field, error.limit, error.value)
    message = str(error)
    for name, option in sorted(renamed.items(), key=lambda item: -len(item[0])):
        message = message.replace(f"{name} ", f"{option} ")
    typed.args = (message,)
    return typed


def kind_commands(
    group: click.Group,
    callback: Callable[..., None],
    extra: tuple[click.Parameter, ...],
    *,
    text_required: bool,
) -> None:
    """Add one subcommand per kind to `group`, calling `callback(kind, text=..., **options)`."""
    for spec in KINDS.values():
        params: list[click.Parameter] = [*spec.options, *extra]
        if spec.text_field is not None:
            text = click.Argument(["text"], required=text_required, metavar=spec.text_field.upper())
            params.insert(0, text)
        group.add_command(
            click.Command(
                spec.name,
                callback=functools.partial(callback, spec.name, text=None)
                if spec.text_field is None
                else functools.partial(callback, spec.name),
                params=params,
                help=spec.help,
            )
        )
