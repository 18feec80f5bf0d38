"""What a media file holds, read with ffprobe: container, duration, the streams that matter, tags.

:func:`probe` runs ffprobe; :func:`parse` turns its JSON into a :class:`ProbeResult` and is pure,
so odd ffprobe output can be tested without a file. Only the first video stream (cover art and
thumbnails excluded) and the first audio stream are described: they are the only ones
:mod:`media.transcode` ever maps to an output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from .errors import MediaError
from .runner import Finished, deadline, run

FFPROBE = "ffprobe"
# Demuxers ffprobe may use: recorded-media containers only. The policy narrows this further; a
# wider list here lets it say "this kind of file is not accepted" rather than "not a video".
PROBE_FORMATS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,mpegts,mpeg,avi,flv,ogg,wav,mp3,aac,flac,asf"

# ISO base media (MP4, MOV, 3GP) files start with a box whose type is one of these. If ffprobe
# cannot read such a file, it is almost always a recording cut short (the index is missing),
# which deserves a better message than "not a video".
_ISO_BOX_TYPES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"}


@dataclass(frozen=True)
class VideoStream:
    """The first real video stream. ``width``/``height`` are as stored, before ``rotation``.

    ``rotation`` is clockwise degrees a player turns the picture (0, 90, 180 or 270), from the
    display matrix or the older ``rotate`` tag. ``fps`` is the average frame rate, ``None`` if
    ffprobe could not tell. ``sample_aspect_ratio`` is the pixel shape (1 for square pixels).
    """

    index: int
    codec: str
    width: int
    height: int
    fps: float | None
    rotation: int = 0
    sample_aspect_ratio: Fraction = Fraction(1)


@dataclass(frozen=True)
class AudioStream:
    """The first audio stream."""

    index: int
    codec: str
    channels: int
    sample_rate: int


@dataclass(frozen=True)
class ProbeResult:
    """A media file as ffprobe sees it.

    ``container`` is ffprobe's ``format_name`` (e.g. ``"mov,mp4,m4a,3gp,3g2,mj2"``);
    ``duration_s`` is ``None`` when the container does not say (some live WebM recordings).
    ``stream_kinds`` lists every stream's ``codec_type`` in order; ``chapter_count`` counts
    chapters. ``tags`` holds every tag found anywhere, keyed ``"format/KEY"``,
    ``"stream:N/KEY"`` or ``"chapter:N/KEY"``. Tag values can reveal where and on what device
    a video was made: log the keys if needed, never the values (they are kept out of ``repr``).
    """

    container: str
    duration_s: float | None
    video: VideoStream | None
    audio: AudioStream | None
    stream_kinds: tuple[str, ...] = ()
    chapter_count: int = 0
    tags: Mapping[str, str] = field(default_factory=dict, repr=False)


async def probe(path: Path | str, *, timeout_s: float | None = 30) -> ProbeResult:
    """Describe the media file at ``path``.

    Raises :class:`MediaError`: ``truncated`` for an MP4/MOV whose index is missing (cut short),
    ``not-media`` for anything else ffprobe cannot read, ``timeout`` past ``timeout_s``;
    ``FileNotFoundError`` if there is no such file.
    The file is read by ffprobe only; Python reads at most its first 12 bytes.
    """
    Path(path).stat()  # a missing file is the caller's mistake: FileNotFoundError, not "not-media"
    args = [
        FFPROBE, "-hide_banner", "-v", "error",
        "-print_format", "json", "-show_format", "-show_streams", "-show_chapters",
        # Untrusted input: only plain local reads (no http, no concat: or subfile:), and only
        # ordinary containers, never one that opens other files (an HLS playlist or a concat
        # list disguised as a video could make ffprobe read arbitrary files of the desk).
        "-protocol_whitelist", "file", "-format_whitelist", PROBE_FORMATS,
        file_url(path),
    ]
    async with deadline(timeout_s):
        done: Finished = await run(args)
    if done.returncode != 0:
        code = "truncated" if _looks_like_iso_media(Path(path)) else "not-media"
        raise MediaError(code, detail=f"ffprobe: {done.stderr_tail.strip()[-300:]}")
    try:
        return parse(json.loads(done.stdout))
    except (ValueError, TypeError, KeyError) as exc:
        raise MediaError("not-media", detail=f"unreadable ffprobe output: {type(exc).__name__}") from None


def file_url(path: Path | str) -> str:
    """``path`` as an ffmpeg URL that can only mean a local file (for inputs and outputs).

    Without the ``file:`` prefix ffmpeg would treat a name such as ``concat:a|b`` or
    ``http://...`` as a protocol and open something else.
    """
    return "file:" + str(Path(path).absolute())


def parse(data: Mapping[str, Any]) -> ProbeResult:
    """Build a :class:`ProbeResult` from ffprobe's JSON (``-show_format -show_streams -show_chapters``).

    Raises :class:`MediaError` ``not-media`` if there is no format section.
    """
    fmt = data.get("format")
    if not isinstance(fmt, Mapping):
        raise MediaError("not-media", detail="ffprobe found no container")
    streams = [s for s in data.get("streams", []) if isinstance(s, Mapping)]
    chapters = [c for c in data.get("chapters", []) if isinstance(c, Mapping)]

    tags: dict[str, str] = {}
    _collect_tags(tags, "format", fmt)
    for s in streams:
        _collect_tags(tags, f"stream:{s.get('index')}", s)
    for n, c in enumerate(chapters):
        _collect_tags(tags, f"chapter:{n}", c)

    video = next((_video(s) for s in streams if _is_real_video(s)), None)
    audio = next((_audio(s) for s in streams if s.get("codec_type") == "audio"), None)
    duration = _number(fmt.get("duration"))
    if duration is None and video is not None:
        duration = _number(next(s for s in streams if s.get("index") == video.index).get("duration"))
    return ProbeResult(
        container=str(fmt.get("format_name", "")),
        duration_s=duration,
        video=video,
        audio=audio,
        stream_kinds=tuple(str(s.get("codec_type", "unknown")) for s in streams),
        chapter_count=len(chapters),
        tags=tags,
    )


def _is_real_video(stream: Mapping[str, Any]) -> bool:
    # An MP3's cover art or a MOV's thumbnail track is a "video" stream of one still image;
    # it must be neither validated as the video nor mapped to the output.
    disposition = stream.get("disposition") or {}
    return (
        stream.get("codec_type") == "video"
        and not disposition.get("attached_pic")
        and not disposition.get("timed_thumbnails")
    )


def _video(s: Mapping[str, Any]) -> VideoStream:
    return VideoStream(
        index=int(s["index"]),
        codec=str(s.get("codec_name", "")),
        width=int(s.get("width") or 0),
        height=int(s.get("height") or 0),
        fps=_rate(s.get("avg_frame_rate")) or _rate(s.get("r_frame_rate")),
        rotation=_rotation(s),
        sample_aspect_ratio=_ratio(s.get("sample_aspect_ratio")) or Fraction(1),
    )


def _audio(s: Mapping[str, Any]) -> AudioStream:
    return AudioStream(
        index=int(s["index"]),
        codec=str(s.get("codec_name", "")),
        channels=int(s.get("channels") or 0),
        sample_rate=int(s.get("sample_rate") or 0),
    )


def _rotation(s: Mapping[str, Any]) -> int:
    """The display rotation in degrees, snapped to 0, 90, 180 or 270.

    ffprobe's display-matrix ``rotation`` counts counter-clockwise (``-90`` for an upright phone
    recording), the legacy ``rotate`` tag clockwise; both become clockwise here. ffmpeg turns
    the picture itself when decoding, so callers only need to know whether it is a quarter turn
    (width and height swap). ffmpeg autorotates only by right angles, hence the snapping.
    """
    for side in s.get("side_data_list") or []:
        if isinstance(side, Mapping) and "rotation" in side:
            degrees = -float(side["rotation"])
            break
    else:
        degrees = _number((s.get("tags") or {}).get("rotate")) or 0.0
    return int(round(degrees / 90.0)) % 4 * 90


def _collect_tags(into: dict[str, str], where: str, section: Mapping[str, Any]) -> None:
    for key, value in (section.get("tags") or {}).items():
        into[f"{where}/{key}"] = str(value)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _ratio(value: Any) -> Fraction | None:
    """``"30000/1001"`` or ``"16:15"`` as a positive Fraction; ``None`` for ``0/0``, ``N/A``..."""
    if not isinstance(value, str):
        return None
    num, sep, den = value.replace(":", "/").partition("/")
    try:
        ratio = Fraction(int(num), int(den)) if sep else Fraction(num)
    except (ValueError, ZeroDivisionError):
        return None
    return ratio if ratio > 0 else None


def _rate(value: Any) -> float | None:
    ratio = _ratio(value)
    return float(ratio) if ratio is not None else None


def _looks_like_iso_media(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return len(head) >= 8 and head[4:8] in _ISO_BOX_TYPES
