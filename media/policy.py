"""What media is accepted, what a delivered video looks like, and the checks between them.

Pure: no I/O and no clock, so every rule is tested without ffmpeg. :class:`MediaPolicy` bounds
the *input* (what a participant may send); :class:`DeliveryProfile` describes the *output*
(what a recipient's device or an institutional terminal must be able to play).

Sizes are stated as a longer and a shorter side rather than width and height, so a portrait
recording gets the same allowance as a landscape one: the delivered picture fits in 1280x720
when it is wider than tall and in 720x1280 when it is taller than wide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from .errors import MediaError
from .probe import ProbeResult

ISO_MEDIA = "mov,mp4,m4a,3gp,3g2,mj2"  # ffprobe's format_name for MP4, MOV, 3GP and M4A alike
MATROSKA = "matroska,webm"

# A source whose container does not state its length is transcoded with the output cut at
# ``max_duration_s`` plus this margin; an output that long was over the limit.
LENGTH_CAP_MARGIN_S = 1.0


@dataclass(frozen=True)
class MediaPolicy:
    """Limits on an input video. Containers and codecs are ffprobe's names.

    The allow-lists keep decoding to well-trodden demuxers and decoders: those are what phones,
    cameras and browsers record, and every extra one is attack surface on the mediator's desk.
    """

    max_duration_s: float = 20 * 60
    max_long_side: int = 3840
    max_short_side: int = 2160
    allowed_containers: frozenset[str] = frozenset({ISO_MEDIA, MATROSKA})
    allowed_video_codecs: frozenset[str] = frozenset({"h264", "hevc", "vp8", "vp9", "av1"})
    allowed_audio_codecs: frozenset[str] = frozenset(
        {"aac", "opus", "vorbis", "mp3", "flac", "alac", "pcm_s16le", "pcm_s24le"}
    )


@dataclass(frozen=True)
class DeliveryProfile:
    """The delivery rendition: H.264 + AAC in MP4 with the index first ("fast start").

    The picture is scaled down (never up, aspect ratio kept, even sides) to fit
    ``max_long_side`` x ``max_short_side`` in its own orientation, at most ``max_fps`` frames a
    second. Sound is loudness-normalised to ``loudness_i`` LUFS (EBU R128 ``loudnorm``, one pass)
    so a quiet confession and a shouted one arrive at the same level. ``video_encoder`` may be
    any H.264 encoder of the local ffmpeg; ``crf`` and ``preset`` are libx264's.
    """

    max_long_side: int = 1280
    max_short_side: int = 720
    max_fps: int = 30
    video_encoder: str = "libx264"
    crf: int = 23
    preset: str = "veryfast"
    audio_encoder: str = "aac"
    audio_bitrate: str = "128k"
    audio_channels: int = 2
    audio_sample_rate: int = 48000
    loudness_i: float = -16.0
    loudness_tp: float = -1.5
    loudness_lra: float = 11.0

    def __post_init__(self) -> None:
        if self.max_short_side < 2 or self.max_long_side < self.max_short_side:
            raise ValueError("need 2 <= max_short_side <= max_long_side")
        if self.max_long_side % 2 or self.max_short_side % 2:
            raise ValueError("H.264 in 4:2:0 needs even sides")
        if self.max_fps <= 0:
            raise ValueError("max_fps must be positive")


# Immutable defaults, shared (frozen dataclasses, so one instance serves every call).
DEFAULT_POLICY = MediaPolicy()
DEFAULT_PROFILE = DeliveryProfile()


def check(probe: ProbeResult, policy: MediaPolicy = DEFAULT_POLICY) -> None:
    """Refuse an input the policy does not accept; return ``None`` if it is acceptable.

    Raises :class:`MediaError`, checking in this order so the message names the most useful
    problem: ``not-media`` (no picture and no sound), ``no-video``, ``container-not-allowed``,
    ``codec-not-allowed``, ``too-long``, ``too-large-resolution``. An unknown duration passes
    here; :mod:`media.transcode` caps the output length instead.
    """
    video, audio = probe.video, probe.audio
    if video is None and audio is None:
        raise MediaError("not-media", detail="no video or audio stream")
    if video is None:
        raise MediaError("no-video")
    if video.width < 1 or video.height < 1:
        raise MediaError("not-media", detail="video stream without a picture size")
    if probe.container not in policy.allowed_containers:
        raise MediaError("container-not-allowed", detail=probe.container)
    if video.codec not in policy.allowed_video_codecs:
        raise MediaError("codec-not-allowed", detail=f"video {video.codec}")
    if audio is not None and audio.codec not in policy.allowed_audio_codecs:
        raise MediaError("codec-not-allowed", detail=f"audio {audio.codec}")
    if probe.duration_s is not None and probe.duration_s > policy.max_duration_s:
        raise MediaError("too-long", detail=f"{probe.duration_s:.1f} s > {policy.max_duration_s} s")
    long_side, short_side = sorted((video.width, video.height), reverse=True)
    if long_side > policy.max_long_side or short_side > policy.max_short_side:
        raise MediaError("too-large-resolution", detail=f"{video.width}x{video.height}")


def target_size(
    width: int, height: int, rotation: int, *, max_long_side: int, max_short_side: int
) -> tuple[int, int]:
    """The (width, height) to scale a picture to, as shown upright.

    ``width`` x ``height`` is the stored picture in square pixels; ``rotation`` (degrees) is
    applied first, so a quarter turn swaps them. The result fits ``max_long_side`` along the
    picture's longer side and ``max_short_side`` along its shorter one, is never larger than the
    input, keeps the aspect ratio (each side within 2 px of the exact scaled size) and has even
    sides, as H.264 4:2:0 requires. The one exception to "never larger": a side of 1 px becomes
    2 px, the smallest even size.
    """
    if width < 1 or height < 1:
        raise ValueError("picture sides must be positive")
    if rotation % 180 == 90:
        width, height = height, width
    box_w, box_h = (max_long_side, max_short_side) if width >= height else (max_short_side, max_long_side)
    scale = min(Fraction(1), Fraction(box_w, width), Fraction(box_h, height))
    return _even(width * scale, ceiling=min(box_w, width)), _even(height * scale, ceiling=min(box_h, height))


def _even(exact: Fraction, *, ceiling: int) -> int:
    # Nearest even number, but never past the ceiling (the box, or the input: no upscaling).
    return max(2, min(2 * round(exact / 2), ceiling - ceiling % 2))


# Tags ffmpeg itself writes into an MP4 it made with +bitexact: generic technical labels. Any
# other tag, or one of these with another value, means something of the input came through.
_RENDITION_TAGS: dict[str, re.Pattern[str]] = {
    "major_brand": re.compile(r"[a-z0-9 ]{4}"),
    "minor_version": re.compile(r"[0-9]+"),
    "compatible_brands": re.compile(r"[a-z0-9 ]*"),
    "language": re.compile(r"und"),
    "handler_name": re.compile(r"VideoHandler|SoundHandler"),
    "vendor_id": re.compile(r"\[0\]\[0\]\[0\]\[0\]"),
    "encoder": re.compile(r"Lavc[0-9.]* [a-z0-9_]+"),
}

# A rendition may end this much earlier than its source (audio priming, frame-rate rounding)
# before it counts as cut short: one second, or 1% of a long recording.
_SHORTFALL_S = 1.0
_SHORTFALL_FRACTION = 0.01


def check_rendition(
    out: ProbeResult,
    *,
    source: ProbeResult,
    profile: DeliveryProfile = DEFAULT_PROFILE,
    policy: MediaPolicy = DEFAULT_POLICY,
) -> None:
    """Confirm a finished rendition is what the profile promises before anyone may receive it.

    This re-checks, on the output itself, what the ffmpeg command was built to do: so a
    change in ffmpeg's behaviour (a tag it starts copying, a rotation it stops applying) fails
    loudly instead of delivering a recipient the sender's location. Raises :class:`MediaError`:
    ``truncated`` when the output is clearly shorter than the source (a file cut short that
    ffprobe could still open), ``too-long`` when a source of unknown length hit the cap, and
    ``ffmpeg-failed`` for anything else that is not as promised.
    """
    expected_kinds = ("video", "audio") if source.audio is not None else ("video",)
    problems: list[str] = []
    if out.container != ISO_MEDIA:
        problems.append(f"container {out.container}")
    if out.stream_kinds != expected_kinds:
        problems.append(f"streams {out.stream_kinds}")
    if out.chapter_count:
        problems.append("chapters present")
    video = out.video
    if video is None or video.codec != "h264":
        problems.append("video is not H.264")
    else:
        if video.rotation:
            problems.append("rotation left in the output")
        long_side, short_side = sorted((video.width, video.height), reverse=True)
        if long_side > profile.max_long_side or short_side > profile.max_short_side:
            problems.append(f"picture {video.width}x{video.height}")
        if video.width % 2 or video.height % 2:
            problems.append("odd picture size")
        if video.fps is not None and video.fps > profile.max_fps + 0.01:
            problems.append(f"frame rate {video.fps:.2f}")
    if source.audio is not None and (out.audio is None or out.audio.codec != "aac"):
        problems.append("audio is not AAC")
    leaked = sorted(
        key for key, value in out.tags.items()
        if not ((p := _RENDITION_TAGS.get(key.rpartition("/")[2])) and p.fullmatch(value))
    )
    if leaked:
        problems.append(f"unexpected tags {leaked}")  # keys only: values may be a location
    if problems:
        raise MediaError("ffmpeg-failed", detail="rendition check: " + "; ".join(problems))

    if out.duration_s is None:
        raise MediaError("ffmpeg-failed", detail="rendition check: no duration")
    if out.duration_s > policy.max_duration_s + LENGTH_CAP_MARGIN_S / 2:
        raise MediaError("too-long", detail=f"{out.duration_s:.1f} s")
    if source.duration_s is not None:
        allowed = max(_SHORTFALL_S, _SHORTFALL_FRACTION * source.duration_s)
        if out.duration_s < source.duration_s - allowed:
            raise MediaError("truncated", detail=f"{out.duration_s:.1f} s of {source.duration_s:.1f} s")

