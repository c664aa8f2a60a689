"""The provider-neutral data model: requests in, tasks out.

Nothing here knows a vendor. Field names and values of `Task`, `Output`, `File` and `Cost` are
the public contract that `klingbridge normalize` prints, so they change only with a major version.
"""

from __future__ import annotations

import binascii
import enum
import re
from base64 import b64decode
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PlainSerializer,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from .errors import ValidationError


def _decimal_to_json(value: Decimal) -> int | float:
    """Money and units go out as JSON numbers: integral values as ints, the rest as floats."""
    return int(value) if value == value.to_integral_value() else float(value)


JsonDecimal = Annotated[Decimal, PlainSerializer(_decimal_to_json, when_used="json")]


class TaskStatus(str, enum.Enum):
    """The five normalized statuses. Vendors' own values stay in `Task.provider_status`."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED)

    @property
    def rank(self) -> int:
        """How far along: queued 0, running 1, ended 2. A task's status never goes back."""
        return 2 if self.is_terminal else (1 if self is TaskStatus.RUNNING else 0)

    def __str__(self) -> str:
        return self.value


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- requests -------------------------------------------------------------------------------
# Only limits that hold for every vendor live here; each provider checks its own (prompt length,
# allowed durations, models) in `Provider.validate`, before any network call.


class _Request(_Model):
    """A request: a mistake in one is a `klingbridge.ValidationError` (one error type to catch),
    naming each field, the limit it broke and the value given."""

    @model_validator(mode="wrap")
    @classmethod
    def _one_error_type(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        try:
            return handler(data)
        except PydanticValidationError as error:
            raise _request_error(cls.__name__, error) from error


#: Pydantic's "Input should be greater than 0" reads, after the field's name, "must be ...".
_SHOULD = re.compile(r"^(?:input |string |value )?should ")


def _request_error(model: str, error: PydanticValidationError) -> ValidationError:
    """The first problem as the error's field/limit/value; every problem in its message."""
    lines = []
    for problem in error.errors():
        field = ".".join(str(p) for p in problem["loc"]) or "request"
        limit = _SHOULD.sub("must ", problem["msg"][:1].lower() + problem["msg"][1:])
        lines.append((f"{model}.{field}", limit, problem.get("input")))
    found = ValidationError(None, *lines[0])
    if len(lines) > 1:
        more = "; ".join(str(ValidationError(None, *line)) for line in lines[1:])
        found.args = (f"{found}; {more}",)
    return found


class SoundRequest(_Request):
    """A sound effect from a text prompt."""

    kind: Literal["sound"] = "sound"
    prompt: str = Field(min_length=1)
    duration: float = Field(default=5.0, gt=0, description="seconds")


class SpeechRequest(_Request):
    """Text to speech."""

    kind: Literal["speech"] = "speech"
    text: str = Field(min_length=1)
    voice: str = Field(min_length=1, description="vendor voice id, e.g. Kling's oversea_male1")
    language: str | None = Field(default=None, description="e.g. 'en' or 'zh'; vendor default")
    speed: float = Field(default=1.0, gt=0)


def is_http_url(value: str) -> bool:
    """`http(s)://host...`, nothing else (no spaces, a host named)."""
    scheme, sep, rest = value.partition("://")
    return bool(sep) and scheme.lower() in ("http", "https") and bool(rest) and " " not in value


#: How an image file starts: JPEG, PNG, GIF, WebP (RIFF....WEBP), BMP.
_IMAGE_MAGIC = re.compile(rb"\xff\xd8\xff|\x89PNG|GIF8[79]a|RIFF....WEBP|BM", re.DOTALL)


def _image(value: str | None) -> str | None:
    """An image as the vendors take it: an http(s) URL, or an image file in bare base64 (Kling
    takes both [doc]; a provider that takes URLs only says so in its own `validate`). Checked
    here, before anything is paid: a typo (`notaurl`) would otherwise be sent, and billed."""
    if value is None or is_http_url(value):
        return value
    try:
        if _IMAGE_MAGIC.match(b64decode(value[:16], validate=True)):  # (its first 12 bytes)
            return value
    except (binascii.Error, ValueError):
        pass
    hint = " without its data:...;base64, prefix" if value.startswith("data:") else ""
    raise PydanticCustomError(
        "image", f"must be an http(s) URL or an image (JPEG, PNG, ...) in bare base64{hint}"
    )


class VideoRequest(_Request):
    """Text to video, or image to video when `image_url` is set."""

    kind: Literal["video"] = "video"
    prompt: str = Field(min_length=1)
    negative_prompt: str | None = None
    model: str = Field(default="kling-v2-6", description="Kling model name, e.g. kling-v2-6")
    mode: Literal["std", "pro"] = "std"
    aspect_ratio: str = "16:9"
    duration: int = Field(default=5, gt=0, description="seconds")
    sound: bool = False
    cfg_scale: float | None = Field(default=None, ge=0, le=1)
    image_url: str | None = None
    image_tail_url: str | None = None
    resolution: str | None = Field(
        default=None, description="e.g. 720p, 1080p, 4k (Kling's new design); vendor default"
    )

    _images = field_validator("image_url", "image_tail_url")(_image)


_NO_VIDEO = "must be given: task_id, video_id or video_url"


class SoundForVideoRequest(_Request):
    """Sound (effects, music) added to a video that exists: a generated one or a URL.

    `task_id` names the video task (PiAPI's `origin_task_id`); `video_id` the video itself
    (Kling's `video_id`, the id of the task's video output); `video_url` an uploaded video.
    """

    kind: Literal["sound-for-video"] = "sound-for-video"
    task_id: str | None = Field(default=None, min_length=1, description="the video task")
    video_id: str | None = Field(default=None, min_length=1, description="the vendor's video id")
    video_url: str | None = Field(default=None, min_length=1)
    prompt: str | None = Field(default=None, description="sound effects to make")
    music_prompt: str | None = Field(default=None, description="background music to make")
    asmr: bool = Field(default=False, description="Kling's ASMR mode: detailed sound effects")

    @model_validator(mode="after")
    def _has_a_video(self) -> SoundForVideoRequest:
        if not (self.task_id or self.video_id or self.video_url):
            # (raised as it is: a ValueError here escapes `_one_error_type`, which wraps the
            # field checks only, and reached the user as pydantic's own error)
            raise ValidationError(None, "SoundForVideoRequest.video", _NO_VIDEO, None)
        return self


Request = Annotated[
    SoundRequest | SpeechRequest | VideoRequest | SoundForVideoRequest,
    Field(discriminator="kind"),
]


# --- results --------------------------------------------------------------------------------


class File(_Model):
    """One downloadable rendition of an output."""

    url: str
    format: str
    watermarked: bool | None = None
    #: Where this copy comes from, when the vendor gives an output in several copies (PiAPI:
    #: "piapi" for its own copy, "kling-cdn" for Kling's): names the saved file of any copy but
    #: an output's first (`<stem>-1-kling-cdn.mp3`, not `-1-2.mp3`).
    source: str | None = None


class Output(_Model):
    """One generated media item: one audio clip, one video."""

    id: str | None = None
    kind: Literal["audio", "video", "image"]
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    files: list[File] = Field(default_factory=list)
    cover_url: str | None = None


#: The built-in units are "kling_unit", "piapi_point", "usd" and "cny"; a plugin may use its own
#: (lower-case letters, digits, "_": e.g. "acme_credit"). `Cost.usd` is what costs compare by.
CostUnit = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class Cost(_Model):
    """What a task costs, in the vendor's own unit and (when prices are known) in USD."""

    amount: JsonDecimal
    unit: CostUnit
    usd: JsonDecimal | None = None


class Task(_Model):
    """A vendor task, normalized. See docs/model.md for the mapping of each vendor."""

    provider: str
    id: str
    kind: str | None = None
    status: TaskStatus
    provider_status: str | int | None = None
    status_message: str | None = None
    external_id: str | None = None
    outputs: list[Output] = Field(default_factory=list)
    cost: Cost | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def files(self) -> list[File]:
        """Every file of every output, in order."""
        return [file for output in self.outputs for file in output.files]

    def keeping(self, before: Task | None) -> Task:
        """This task, with the kind and external id `before` knew where this one does not (a
        poll or a callback may know less than the create did)."""
        if before is None:
            return self
        update: dict[str, Any] = {}
        if self.kind is None and before.kind is not None:
            update["kind"] = before.kind
        if self.external_id is None and before.external_id is not None:
            update["external_id"] = before.external_id
        return self.model_copy(update=update) if update else self


class Quote(_Model):
    """A provider's price for a request, computed before anything is paid."""

    provider: str
    eligible: bool
    reason: str | None = None
    cost: Cost | None = None
    source: str | None = Field(default=None, description="where the price comes from, dated")


# --- account ---------------------------------------------------------------------------------


class Balance(_Model):
    """What an account has left: one resource pack, or one balance (`klingbridge account`)."""

    provider: str
    name: str
    kind: str | None = None
    remaining: JsonDecimal | None = None
    total: JsonDecimal | None = None
    unit: str | None = Field(default=None, description="kling_unit, piapi_point, usd, ...")
    status: str | None = None
    expires_at: datetime | None = None


class Voice(_Model):
    """A voice a speech request can name (`SpeechRequest.voice` takes its `id`)."""

    provider: str
    id: str
    name: str | None = None
    language: str | None = None
    sample_url: str | None = None
    owned_by: str | None = Field(default=None, description="the vendor's, or the account's")
