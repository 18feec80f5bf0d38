"""Short media clips made with ffmpeg's test sources, and probes of what ffmpeg left running.

Each clip is generated on first use and kept for the test session; all are a few seconds long
and small, so the media tests stay quick on a two-core machine.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
from functools import cached_property
from pathlib import Path
from typing import Any

GPS = "+45.4215-075.6972/"
DEVICE_MAKE = "Apple"
DEVICE_MODEL = "iPhone 15 Pro"
CREATION_TIME = "2024-01-02T03:04:05Z"

# Strings the tagged clip carries in its metadata, subtitles and chapters; none may survive.
SENSITIVE = (
    GPS,
    "45.4215",
    "075.6972",
    DEVICE_MODEL,
    "com.apple.quicktime",
    "2024-01-02",
    "Message-for-the-harmed-person",
    "Recorded-in-my-kitchen",
    "CameraAppEncoder",
    "MyPhoneHandler",
    "ChapterSecretOne",
    "SubtitleSecretText",
)

_CHAPTERS = """;FFMETADATA1
[CHAPTER]
TIMEBASE=1/1000
START=0
END=1000
title=ChapterSecretOne
[CHAPTER]
TIMEBASE=1/1000
START=1000
END=2000
title=ChapterSecretTwo
"""

_SUBTITLES = "1\n00:00:00,000 --> 00:00:01,500\nSubtitleSecretText\n"


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", *args], check=True)


def ffprobe_json(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json",
         "-show_format", "-show_streams", "-show_chapters", str(path)],
        check=True, capture_output=True,
    ).stdout
    return json.loads(out)


def encode(dst: Path, *, size: str = "320x240", rate: int = 25, seconds: float = 2,
           audio: bool = True, extra: tuple[str, ...] = ()) -> Path:
    """A testsrc2 picture (and a sine tone) encoded fast with libx264 + AAC."""
    inputs = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    ffmpeg(*inputs, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           *(["-c:a", "aac"] if audio else []), *extra, str(dst))
    return dst


class Clips:
    """The clips, each made the first time a test asks for it."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    @cached_property
    def plain(self) -> Path:
        return encode(self.dir / "plain.mp4")

    @cached_property
    def tagged(self) -> Path:
        """A phone-like recording: location, make/model, creation time, titles, chapters,
        a subtitle track (plus the chapter text track MOV adds), and encoder names."""
        chapters = self.dir / "chapters.txt"
        chapters.write_text(_CHAPTERS)
        subtitles = self.dir / "subtitles.srt"
        subtitles.write_text(_SUBTITLES)
        dst = self.dir / "tagged.mov"
        ffmpeg(
            "-i", str(self.plain), "-f", "ffmetadata", "-i", str(chapters), "-i", str(subtitles),
            "-map", "0", "-map", "2", "-map_chapters", "1", "-c", "copy", "-c:s", "mov_text",
            # use_metadata_tags writes arbitrary keys as QuickTime mdta atoms, as iPhones do.
            "-movflags", "use_metadata_tags",
            "-metadata", f"location={GPS}",
            "-metadata", f"com.apple.quicktime.location.ISO6709={GPS}",
            "-metadata", f"com.apple.quicktime.make={DEVICE_MAKE}",
            "-metadata", f"com.apple.quicktime.model={DEVICE_MODEL}",
            "-metadata", f"creation_time={CREATION_TIME}",
            "-metadata", "title=Message-for-the-harmed-person",
            "-metadata", "comment=Recorded-in-my-kitchen",
            "-metadata:s:v", f"location={GPS}",
            "-metadata:s:v", "encoder=CameraAppEncoder",
            "-metadata:s:v", "handler_name=MyPhoneHandler",
            str(dst),
        )
        return dst

    @cached_property
    def rotated(self) -> Path:
        """1280x720 as stored, with a display matrix saying "turn a quarter" (a phone held upright).

        ffmpeg 5.1 has no -display_rotation (added in 6.0), and a rotate tag given while
        encoding is dropped, so the tag is added in a stream-copy remux, which the MP4 muxer
        turns into a display matrix.
        """
        stored = encode(self.dir / "landscape.mp4", size="1280x720")
        dst = self.dir / "rotated.mp4"
        ffmpeg("-i", str(stored), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(dst))
        return dst

    @cached_property
    def hd60(self) -> Path:
        return encode(self.dir / "hd60.mp4", size="1920x1080", rate=60)

    @cached_property
    def slow(self) -> Path:
        """Four seconds of 720p: long enough to catch ffmpeg mid-run."""
        return encode(self.dir / "slow.mp4", size="1280x720", rate=30, seconds=4)

    @cached_property
    def audio_only(self) -> Path:
        dst = self.dir / "audio.m4a"
        ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac", str(dst))
        return dst

    @cached_property
    def truncated_index_last(self) -> Path:
        """An MP4 cut in half whose index (moov) was at the end: the index is gone."""
        return _first_half(self.plain, self.dir / "half-index-last.mp4")

    @cached_property
    def truncated_index_first(self) -> Path:
        """An MP4 cut in half whose index came first: it opens, but half the frames are missing."""
        faststart = self.dir / "faststart.mp4"
        ffmpeg("-i", str(self.plain), "-c", "copy", "-movflags", "+faststart", str(faststart))
        return _first_half(faststart, self.dir / "half-index-first.mp4")

    @cached_property
    def text(self) -> Path:
        dst = self.dir / "letter.mp4"
        dst.write_text("Dear mediator, this is a letter, not a video.\n")
        return dst

    @cached_property
    def unknown_length(self) -> Path:
        """Matroska written to a pipe, as live recorders do: no duration in the header."""
        dst = self.dir / "live.mkv"
        with open(dst, "wb") as out:
            subprocess.run(
                ["ffmpeg", "-nostdin", "-v", "error",
                 "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=3",
                 "-c:v", "libx264", "-preset", "ultrafast", "-f", "matroska", "pipe:1"],
                check=True, stdout=out,
            )
        return dst

    @cached_property
    def mpeg_ts(self) -> Path:
        return encode(self.dir / "clip.ts", audio=False)

    @cached_property
    def mpeg4_part2(self) -> Path:
        return self._reencode(self.plain, "mpeg4.mp4", "-c:v", "mpeg4", "-an")

    def _reencode(self, src: Path, name: str, *args: str) -> Path:
        dst = self.dir / name
        ffmpeg("-i", str(src), *args, str(dst))
        return dst


def _first_half(src: Path, dst: Path) -> Path:
    data = src.read_bytes()  # a test clip of a few hundred KiB
    dst.write_bytes(data[: len(data) // 2])
    return dst


def top_level_boxes(path: Path) -> list[str]:
    """The types of the top-level ISO-BMFF boxes of an MP4, in file order."""
    kinds: list[str] = []
    with open(path, "rb") as f:
        while header := f.read(8):
            size, kind = struct.unpack(">I4s", header)
            kinds.append(kind.decode("latin-1"))
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0] - 8
            elif size == 0:
                break
            f.seek(size - 8, os.SEEK_CUR)
    return kinds


def ffmpeg_children() -> list[int]:
    """Pids of ffmpeg/ffprobe processes whose parent is this test process, zombies included.

    A killed-but-unreaped child still shows here (state Z), so an empty list means every child
    was both killed and waited for.
    """
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == me and comm in ("ffmpeg", "ffprobe"):
            found.append(int(entry))
    return found
