"""Sanitizing a video into its delivery rendition, and taking a poster frame from it.

Why re-encode instead of editing tags: metadata hides in many places (container tags, stream
tags, QuickTime ``mdta`` keys, chapters, subtitle and data tracks, encoder SEI messages inside
the H.264 stream). Decoding the first picture and the first sound and encoding them afresh
into a new file, with every copy of metadata switched off, leaves only what ffmpeg writes
itself; :func:`media.policy.check_rendition` then verifies that on the result.

The command lines are built with ffmpeg-python (:func:`sanitize_args`, :func:`poster_args`) and
run by :mod:`media.runner`, which kills ffmpeg on timeout or cancellation. Every job works in
a private scratch directory (:mod:`media.workspace`) that is removed on every path; the
caller's ``dst`` is written only on success. Python never reads the video itself: ffmpeg and
ffprobe stream it from disk.
"""

from __future__ import annotations

import logging
from pathlib import Path

import ffmpeg

from .errors import MediaError
from .policy import (
    DEFAULT_POLICY,
    DEFAULT_PROFILE,
    LENGTH_CAP_MARGIN_S,
    DeliveryProfile,
    MediaPolicy,
    check,
    check_rendition,
    target_size,
)
from .probe import ProbeResult, VideoStream, file_url, probe
from .progress import ProgressCallback, ProgressReporter
from .runner import Finished, deadline, run
from .workspace import private_workdir, publish

log = logging.getLogger(__name__)

FFMPEG = "ffmpeg"

# Options every job gets: no prompts and no reading of our stdin, only errors on stderr, and
# machine-readable progress on stdout four times a second (-stats_period needs ffmpeg >= 4.4).
_QUIET = ("-nostdin", "-hide_banner", "-nostats", "-v", "error")
_PROGRESS = ("-progress", "pipe:1", "-stats_period", "0.25")

# Output options that keep anything of the input's metadata, and any ffmpeg version string, out
# of a file. -map_metadata -1 stops the copying of global, stream and chapter tags alike;
# -map_chapters -1 the chapter list; +bitexact drops "Lavf59.27.100"-style version strings from
# the container and the stream headers.
_NO_METADATA = {
    "map_metadata": -1,
    "map_chapters": -1,
    "fflags": "+bitexact",
    "flags:v": "+bitexact",
}


def sanitize_args(
    src: Path | str,
    dst: Path | str,
    info: ProbeResult,
    profile: DeliveryProfile = DEFAULT_PROFILE,
    *,
    max_duration_s: float | None = None,
) -> list[str]:
    """The complete ffmpeg command that turns ``src``, described by ``info``, into a delivery
    rendition at ``dst``.

    Only the probed first video stream and first audio stream are mapped (by index, so cover art
    counts for nothing), so subtitles, data tracks, attachments and chapters have nowhere to go.
    The picture is turned upright by ffmpeg's autorotation on decode (on by default; it also
    clears the display matrix on the output), then frame-rate capped, scaled to
    :func:`target_size` with square pixels, and converted to 8-bit 4:2:0. The sound is
    loudness-normalised and resampled. The demuxer is pinned to the one ffprobe identified, so
    ffmpeg decodes exactly the container that was validated. ``max_duration_s`` cuts the output
    there (for sources whose length was unknown). The x264 SEI message naming the encoder and
    its settings is dropped with the ``filter_units`` bitstream filter.
    """
    video = info.video
    if video is None:
        raise ValueError("a rendition needs a video stream")
    width, height = _upright_size(video, profile.max_long_side, profile.max_short_side)
    source = ffmpeg.input(file_url(src), format=_demuxer(info), protocol_whitelist="file")

    picture = source[str(video.index)]
    if video.fps is None or video.fps > profile.max_fps:
        picture = picture.filter("fps", profile.max_fps)  # drops frames; never invents them
    picture = picture.filter("scale", width, height).filter("setsar", 1).filter("format", "yuv420p")
    streams = [picture]
    options: dict[str, object] = {
        "format": "mp4",
        "movflags": "+faststart",  # index (moov) before the media data: playable while it downloads
        "c:v": profile.video_encoder,
        "preset": profile.preset,
        "crf": profile.crf,
        "bsf:v": "filter_units=remove_types=6",  # NAL type 6 = SEI, where x264 signs its name
        **_NO_METADATA,
    }
    if info.audio is not None:
        sound = source[str(info.audio.index)].filter(
            "loudnorm", I=profile.loudness_i, TP=profile.loudness_tp, LRA=profile.loudness_lra
        )
        streams.append(sound)
        options |= {
            "c:a": profile.audio_encoder,
            "b:a": profile.audio_bitrate,
            "ac": profile.audio_channels,
            "ar": profile.audio_sample_rate,  # loudnorm works at 192 kHz; bring it back down
            "flags:a": "+bitexact",
        }
    if max_duration_s is not None:
        options["t"] = f"{max_duration_s:.3f}"
    command = ffmpeg.output(*streams, file_url(dst), **options).global_args(*_QUIET, *_PROGRESS)
    return command.compile(cmd=FFMPEG)


def poster_args(
    src: Path | str,
    dst: Path | str,
    info: ProbeResult,
    *,
    at_s: float,
    max_long_side: int = 320,
    max_short_side: int = 180,
) -> list[str]:
    """The ffmpeg command that writes one upright, metadata-free JPEG frame from ``at_s`` seconds."""
    video = info.video
    if video is None:
        raise ValueError("a poster needs a video stream")
    width, height = _upright_size(video, max_long_side, max_short_side)
    source = ffmpeg.input(file_url(src), format=_demuxer(info), protocol_whitelist="file", ss=f"{at_s:.3f}")
    picture = source[str(video.index)].filter("scale", width, height).filter("setsar", 1)
    command = ffmpeg.output(
        picture, file_url(dst),
        # update=1: the name is one file, never a numbered pattern ("%d" in a folder name).
        format="image2", update=1, **{"frames:v": 1, "c:v": "mjpeg", "q:v": 3}, **_NO_METADATA,
    ).global_args(*_QUIET)
    return command.compile(cmd=FFMPEG)


async def sanitize(
    src: Path | str,
    dst: Path | str,
    *,
    profile: DeliveryProfile = DEFAULT_PROFILE,
    policy: MediaPolicy = DEFAULT_POLICY,
    progress: ProgressCallback | None = None,
    timeout_s: float | None = None,
    workdir_parent: Path | str | None = None,
) -> ProbeResult:
    """Validate ``src`` against ``policy``, transcode it to ``profile``, and write it to ``dst``.

    Returns the probe of the *output*. ``progress(done_s, total_s)`` is called as ffmpeg
    advances, ``done_s`` never decreasing, the last call at the end; ``total_s`` is the probed
    duration (or the policy's limit when the container does not state one).
    ``timeout_s`` bounds the whole job. Scratch files live in a private directory under
    ``workdir_parent`` (default: the system temp dir) that is removed on every path.

    On any failure ``dst`` is left untouched (absent if it was absent) and no ffmpeg process is
    left running. Raises :class:`MediaError` (see :mod:`media.errors` for the codes);
    cancellation of the awaiting task kills ffmpeg and re-raises ``CancelledError``. ``OSError``
    if ``dst`` cannot be written.
    """
    src, dst = Path(src), Path(dst)
    async with deadline(timeout_s):
        source = await probe(src, timeout_s=None)
        check(source, policy)
        with private_workdir(workdir_parent) as work:
            rendition_path = work / "rendition.mp4"
            args = sanitize_args(
                src, rendition_path, source, profile,
                max_duration_s=policy.max_duration_s + LENGTH_CAP_MARGIN_S,
            )
            reporter = ProgressReporter(source.duration_s or policy.max_duration_s, progress)
            _raise_if_failed(await run(args, on_line=reporter.feed))
            rendition = await probe(rendition_path, timeout_s=None)
            check_rendition(rendition, source=source, profile=profile, policy=policy)
            publish(rendition_path, dst)
    log.info("sanitized a %.1f s video", rendition.duration_s or 0.0)
    return rendition


async def poster(
    src: Path | str,
    dst: Path | str,
    *,
    at_fraction: float = 0.1,
    max_long_side: int = 320,
    max_short_side: int = 180,
    policy: MediaPolicy = DEFAULT_POLICY,
    timeout_s: float | None = 60,
    workdir_parent: Path | str | None = None,
) -> None:
    """Write a JPEG still of ``src``, taken ``at_fraction`` of the way in, to ``dst``.

    The picture is upright and fits ``max_long_side`` x ``max_short_side`` in its own
    orientation (320x180 landscape, 180x320 portrait), with no metadata. ``src`` is
    validated against ``policy`` first, as for :func:`sanitize`. Same failure guarantees as
    :func:`sanitize`: ``dst`` written only on success, nothing left behind, ffmpeg killed on
    timeout or cancellation.
    """
    if not 0 <= at_fraction < 1:
        raise ValueError("at_fraction must be in [0, 1)")
    src, dst = Path(src), Path(dst)
    async with deadline(timeout_s):
        source = await probe(src, timeout_s=None)
        check(source, policy)
        with private_workdir(workdir_parent) as work:
            still = work / "poster.jpg"
            at_s = (source.duration_s or 0.0) * at_fraction
            _raise_if_failed(
                await run(poster_args(src, still, source, at_s=at_s,
                                      max_long_side=max_long_side, max_short_side=max_short_side))
            )
            if not still.is_file() or still.stat().st_size == 0:
                raise MediaError("ffmpeg-failed", detail="no frame at the poster time")
            publish(still, dst)


def _upright_size(video: VideoStream, max_long_side: int, max_short_side: int) -> tuple[int, int]:
    # Non-square pixels (old camcorders, some screen recorders) are made square before sizing,
    # so the picture keeps the shape it is shown with.
    square_width = max(1, round(video.width * video.sample_aspect_ratio))
    return target_size(
        square_width, video.height, video.rotation,
        max_long_side=max_long_side, max_short_side=max_short_side,
    )


def _demuxer(info: ProbeResult) -> str:
    # ffprobe names a demuxer by all its aliases ("matroska,webm"); ffmpeg -f takes any one.
    return info.container.split(",")[0]


def _raise_if_failed(done: Finished) -> None:
    if done.returncode != 0:
        raise MediaError("ffmpeg-failed", detail=f"ffmpeg exit {done.returncode}: {done.stderr_tail.strip()[-500:]}")

