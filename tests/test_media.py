"""Media sanitizing with the real ffmpeg: metadata stripped, pictures upright and bounded,
broken input refused cleanly, and no process or scratch file left behind on any path."""

from __future__ import annotations

import ast
import asyncio
import errno
import json
import os
import time
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import media
from media import (
    AudioStream,
    DeliveryProfile,
    MediaError,
    MediaPolicy,
    ProbeResult,
    VideoStream,
    check,
    poster,
    probe,
    sanitize,
    sanitize_args,
    target_size,
)
from media.errors import CODES, MESSAGES
from media.probe import parse
from media.progress import ProgressReporter
from media.workspace import publish
from relay.i18n.catalogs import translation

from .media_fixtures import (
    DEVICE_MODEL,
    GPS,
    SENSITIVE,
    Clips,
    ffmpeg_children,
    ffprobe_json,
    top_level_boxes,
)

# The only tags an ffmpeg-made MP4 may carry: generic labels, none from the input.
TECHNICAL_TAGS = {"major_brand", "minor_version", "compatible_brands", "language",
                  "handler_name", "vendor_id", "encoder"}


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return Clips(tmp_path_factory.mktemp("clips"))


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The parent of the jobs' private scratch directories; must be empty after every job."""
    path = tmp_path / "work"
    path.mkdir()
    return path


def assert_nothing_left(work: Path, dst: Path) -> None:
    assert not dst.exists()
    assert list(work.iterdir()) == []
    assert ffmpeg_children() == []


def all_tags(info: dict) -> dict[str, str]:
    sections = [info.get("format", {}), *info.get("streams", []), *info.get("chapters", [])]
    return {k: v for section in sections for k, v in section.get("tags", {}).items()}


# -- metadata ---------------------------------------------------------------------------------


async def test_sanitize_strips_every_trace_of_the_sender(clips: Clips, work: Path, tmp_path: Path) -> None:
    src = clips.tagged
    before = ffprobe_json(src)
    before_text = json.dumps(before) + src.read_bytes().decode("latin-1")
    # The clip really carries what a phone would leak; otherwise this test proves nothing.
    assert [s for s in SENSITIVE if s not in before_text] == []
    assert len(before["chapters"]) == 2
    assert {s["codec_type"] for s in before["streams"]} == {"video", "audio", "subtitle", "data"}

    dst = tmp_path / "delivered.mp4"
    result = await sanitize(src, dst, workdir_parent=work)

    after = ffprobe_json(dst)
    after_text = json.dumps(after)
    after_bytes = dst.read_bytes()  # a test clip of a few hundred KiB
    for secret in SENSITIVE:
        assert secret not in after_text, secret
        assert secret.encode() not in after_bytes, secret
    assert GPS.encode() not in after_bytes and DEVICE_MODEL.encode() not in after_bytes
    assert set(all_tags(after)) <= TECHNICAL_TAGS
    assert "creation_time" not in after_text
    assert after["chapters"] == []
    assert [s["codec_type"] for s in after["streams"]] == ["video", "audio"]
    # No ffmpeg version string (+bitexact) and no x264 settings banner (SEI dropped).
    assert b"Lavf" not in after_bytes and b"x264 - core" not in after_bytes
    assert result.chapter_count == 0 and result.stream_kinds == ("video", "audio")
    assert list(work.iterdir()) == []


async def test_probe_keeps_tag_values_out_of_repr(clips: Clips) -> None:
    info = await probe(clips.tagged)
    assert "format/com.apple.quicktime.model" in info.tags
    assert info.tags["format/location"] == GPS
    assert GPS not in repr(info) and DEVICE_MODEL not in repr(info)


# -- picture ------------------------------------------------------------------------------------


async def test_rotated_clip_comes_out_upright_without_rotation(clips: Clips, work: Path, tmp_path: Path) -> None:
    src = clips.rotated
    source = await probe(src)
    assert (source.video.width, source.video.height) == (1280, 720)
    assert source.video.rotation in (90, 270)

    dst = tmp_path / "upright.mp4"
    result = await sanitize(src, dst, workdir_parent=work)

    stream = ffprobe_json(dst)["streams"][0]
    # Portrait now: the longer side (1280) is the height, and the shorter fits 720.
    assert (stream["width"], stream["height"]) == (720, 1280)
    assert not stream.get("side_data_list")
    assert "rotate" not in stream.get("tags", {})
    assert result.video.rotation == 0


async def test_hd_60fps_becomes_delivery_profile_with_fast_start(clips: Clips, work: Path, tmp_path: Path) -> None:
    dst = tmp_path / "delivery.mp4"
    result = await sanitize(clips.hd60, dst, workdir_parent=work)

    info = ffprobe_json(dst)
    video, audio = info["streams"]
    assert (video["codec_name"], audio["codec_name"]) == ("h264", "aac")
    assert (video["width"], video["height"]) == (1280, 720)
    assert Fraction(video["avg_frame_rate"]) <= 30
    assert video["pix_fmt"] == "yuv420p"
    assert info["format"]["format_name"].startswith("mov,mp4")
    boxes = top_level_boxes(dst)
    assert boxes.index("moov") < boxes.index("mdat")  # fast start: index first
    assert result.duration_s == pytest.approx(2.0, abs=0.1)


async def test_small_clip_is_not_upscaled(clips: Clips, work: Path, tmp_path: Path) -> None:
    dst = tmp_path / "small.mp4"
    result = await sanitize(clips.plain, dst, workdir_parent=work)
    assert (result.video.width, result.video.height) == (320, 240)
    assert result.video.fps == 25


def test_sanitize_args_is_one_plain_ffmpeg_command() -> None:
    source = ProbeResult(
        container="mov,mp4,m4a,3gp,3g2,mj2", duration_s=10.0,
        video=VideoStream(index=0, codec="h264", width=1920, height=1080, fps=60.0),
        audio=AudioStream(index=1, codec="aac", channels=2, sample_rate=48000),
    )
    args = sanitize_args("in.mov", "/out/x.mp4", source)
    assert args[0] == "ffmpeg"
    joined = " ".join(args)
    for expected in ("-f mov -protocol_whitelist file -i file:", "-map_metadata -1", "-map_chapters -1", "-movflags +faststart",
                     "-fflags +bitexact", "-flags:v +bitexact", "-flags:a +bitexact", "-c:v libx264",
                     "-c:a aac", "loudnorm", "fps=30", "scale=1280:720", "-progress pipe:1", "file:/out/x.mp4"):
        assert expected in joined, expected
    assert "[0:0]" in joined and "[0:1]" in joined  # first video and first audio, by index


# -- broken or refused input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clip", "policy", "code"),
    [
        ("audio_only", MediaPolicy(), "no-video"),
        ("truncated_index_last", MediaPolicy(), "truncated"),
        ("truncated_index_first", MediaPolicy(), "truncated"),
        ("text", MediaPolicy(), "not-media"),
        ("plain", MediaPolicy(max_duration_s=1), "too-long"),
        ("unknown_length", MediaPolicy(max_duration_s=1), "too-long"),
        ("plain", MediaPolicy(max_long_side=160, max_short_side=120), "too-large-resolution"),
        ("mpeg_ts", MediaPolicy(), "container-not-allowed"),
        ("mpeg4_part2", MediaPolicy(), "codec-not-allowed"),
    ],
)
async def test_refused_input_leaves_nothing_behind(
    clips: Clips, work: Path, tmp_path: Path, clip: str, policy: MediaPolicy, code: str
) -> None:
    dst = tmp_path / "out.mp4"
    with pytest.raises(MediaError) as caught:
        await sanitize(getattr(clips, clip), dst, policy=policy, workdir_parent=work)
    assert caught.value.code == code
    assert caught.value.message_en and translation("fr").gettext(caught.value.message_en) != caught.value.message_en
    assert_nothing_left(work, dst)


async def test_failure_keeps_an_existing_destination(clips: Clips, work: Path, tmp_path: Path) -> None:
    dst = tmp_path / "earlier.mp4"
    dst.write_bytes(b"an earlier rendition")
    with pytest.raises(MediaError):
        await sanitize(clips.text, dst, workdir_parent=work)
    assert dst.read_bytes() == b"an earlier rendition"


async def test_missing_source_is_the_callers_mistake(work: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    with pytest.raises(FileNotFoundError):
        await sanitize(tmp_path / "nowhere.mp4", dst, workdir_parent=work)
    assert_nothing_left(work, dst)


def test_publish_across_filesystems_never_shows_a_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    finished = tmp_path / "scratch" / "rendition.mp4"
    finished.parent.mkdir()
    finished.write_bytes(b"x" * 3_000_000)
    dst = tmp_path / "desk" / "video.mp4"
    dst.parent.mkdir()
    real_replace = os.replace
    renames: list[tuple[str, str]] = []

    def replace(a: str | Path, b: str | Path) -> None:
        if Path(a) == finished:  # the scratch dir is on another filesystem
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        renames.append((str(a), str(b)))
        real_replace(a, b)

    monkeypatch.setattr(os, "replace", replace)
    publish(finished, dst)
    assert dst.read_bytes() == b"x" * 3_000_000
    assert (dst.stat().st_mode & 0o777) == 0o600
    (staged, final), = renames
    assert Path(staged).parent == dst.parent and Path(staged).name.startswith(".video.mp4.")
    assert final == str(dst)
    assert sorted(p.name for p in dst.parent.iterdir()) == ["video.mp4"]


def test_every_code_has_both_languages() -> None:
    assert set(MESSAGES) == CODES
    for code in CODES:
        error = MediaError(code)  # type: ignore[arg-type]
        assert error.code == code and error.message_en
        assert translation("fr").gettext(error.message_en) != error.message_en  # French in the catalog
    with pytest.raises(ValueError):
        MediaError("no-such-code")  # type: ignore[arg-type]


# -- progress, timeout, cancellation --------------------------------------------------------------


async def test_progress_rises_to_the_total(clips: Clips, work: Path, tmp_path: Path) -> None:
    calls: list[tuple[float, float]] = []
    await sanitize(clips.slow, tmp_path / "out.mp4", workdir_parent=work,
                   progress=lambda done, total: calls.append((done, total)))
    done = [d for d, _ in calls]
    assert len(calls) >= 2
    assert done == sorted(done)
    assert all(total == pytest.approx(4.0, abs=0.05) for _, total in calls)
    assert done[-1] == pytest.approx(4.0, abs=0.1)


def test_progress_reporter_parses_ffmpeg_blocks() -> None:
    calls: list[tuple[float, float]] = []
    reporter = ProgressReporter(10.0, lambda d, t: calls.append((d, t)))
    for line in ["out_time_us=N/A", "progress=continue", "out_time_us=2500000", "out_time_ms=2500000",
                 "progress=continue", "out_time_us=2500000", "progress=continue",
                 "out_time_us=10040000", "progress=end"]:
        reporter.feed(line)
    assert calls == [(0.0, 10.0), (2.5, 10.0), (10.0, 10.0)]


async def test_timeout_kills_ffmpeg(clips: Clips, work: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    started = time.monotonic()
    with pytest.raises(MediaError) as caught:
        # veryslow makes the 4 s clip take several seconds: the deadline lands mid-encode.
        await sanitize(clips.slow, dst, profile=DeliveryProfile(preset="veryslow"),
                       timeout_s=0.75, workdir_parent=work)
    assert caught.value.code == "timeout"
    assert time.monotonic() - started < 3
    assert_nothing_left(work, dst)


async def test_cancellation_kills_ffmpeg_and_cleans_up(clips: Clips, work: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    running = asyncio.Event()
    pids: list[int] = []

    def on_progress(done: float, total: float) -> None:
        pids.extend(ffmpeg_children())
        running.set()

    task = asyncio.create_task(sanitize(clips.slow, dst, profile=DeliveryProfile(preset="veryslow"),
                                        progress=on_progress, workdir_parent=work))
    await asyncio.wait_for(running.wait(), timeout=30)
    assert pids, "ffmpeg should be running while it reports progress"
    assert len(list(work.iterdir())) == 1  # the private scratch directory, while it works
    assert (next(work.iterdir()).stat().st_mode & 0o777) == 0o700

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()
    assert_nothing_left(work, dst)


async def test_failing_progress_callback_stops_ffmpeg(clips: Clips, work: Path, tmp_path: Path) -> None:
    def explode(done: float, total: float) -> None:
        raise RuntimeError("the desk closed")

    dst = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        await sanitize(clips.slow, dst, profile=DeliveryProfile(preset="veryslow"),
                       progress=explode, workdir_parent=work)
    assert_nothing_left(work, dst)


# -- poster -------------------------------------------------------------------------------------------


async def test_poster_is_small_upright_and_bare(clips: Clips, work: Path, tmp_path: Path) -> None:
    landscape = tmp_path / "landscape.jpg"
    await poster(clips.tagged, landscape, workdir_parent=work)
    info = ffprobe_json(landscape)
    (picture,) = info["streams"]
    assert picture["codec_name"] == "mjpeg"
    assert (picture["width"], picture["height"]) == (240, 180)
    assert all_tags(info) == {}
    data = landscape.read_bytes()
    assert data.startswith(b"\xff\xd8")
    assert b"Exif" not in data and b"Lavc" not in data
    for secret in SENSITIVE:
        assert secret.encode() not in data

    portrait = tmp_path / "portrait.jpg"
    await poster(clips.rotated, portrait, workdir_parent=work)
    (picture,) = ffprobe_json(portrait)["streams"]
    assert (picture["width"], picture["height"]) == (180, 320)
    assert list(work.iterdir()) == []


async def test_poster_of_broken_input_leaves_nothing(clips: Clips, work: Path, tmp_path: Path) -> None:
    dst = tmp_path / "poster.jpg"
    with pytest.raises(MediaError) as caught:
        await poster(clips.audio_only, dst, workdir_parent=work)
    assert caught.value.code == "no-video"
    assert_nothing_left(work, dst)


# -- pure rules: target size, policy, probe parsing -------------------------------------------------

SIZES = [
    # (stored w, h, rotation) -> upright target within 1280x720 / 720x1280
    ((1920, 1080, 0), (1280, 720)),
    ((1280, 720, 0), (1280, 720)),
    ((1280, 720, 90), (720, 1280)),
    ((1280, 720, 270), (720, 1280)),
    ((1280, 720, 180), (1280, 720)),
    ((3840, 2160, 90), (720, 1280)),
    ((1080, 1920, 0), (720, 1280)),
    ((640, 480, 0), (640, 480)),
    ((1440, 1080, 0), (960, 720)),
    ((1000, 1000, 0), (720, 720)),
    ((321, 241, 0), (320, 240)),
    ((2560, 1080, 0), (1280, 540)),
    ((1920, 800, 0), (1280, 534)),
    ((3, 3, 0), (2, 2)),
    ((1, 1, 0), (2, 2)),
]


@pytest.mark.parametrize(("stored", "expected"), SIZES)
def test_target_size_table(stored: tuple[int, int, int], expected: tuple[int, int]) -> None:
    assert target_size(*stored, max_long_side=1280, max_short_side=720) == expected


sides = st.integers(min_value=2, max_value=8000)
bounds = st.tuples(st.integers(1, 1000), st.integers(1, 1000)).map(
    lambda t: (2 * max(t), 2 * min(t)))  # (long, short), both even


@given(width=sides, height=sides, rotation=st.sampled_from([0, 90, 180, 270, -90]), box=bounds)
def test_target_size_properties(width: int, height: int, rotation: int, box: tuple[int, int]) -> None:
    long_side, short_side = box
    w, h = target_size(width, height, rotation, max_long_side=long_side, max_short_side=short_side)
    upright = (height, width) if rotation % 180 else (width, height)
    assert w % 2 == 0 and h % 2 == 0
    assert w <= max(2, upright[0]) and h <= max(2, upright[1])  # never upscaled
    assert max(w, h) <= long_side and min(w, h) <= short_side  # within the box
    if upright[0] > upright[1]:
        assert w >= h  # orientation kept (a very thin picture may round to a square)
    elif upright[0] < upright[1]:
        assert w <= h
    scale = min(1, Fraction(long_side if upright[0] >= upright[1] else short_side, upright[0]),
                Fraction(short_side if upright[0] >= upright[1] else long_side, upright[1]))
    assert abs(w - upright[0] * scale) < 2 and abs(h - upright[1] * scale) < 2  # aspect kept


def _probe(**changes: object) -> ProbeResult:
    base = dict(
        container="mov,mp4,m4a,3gp,3g2,mj2", duration_s=30.0,
        video=VideoStream(index=0, codec="h264", width=1920, height=1080, fps=30.0),
        audio=AudioStream(index=1, codec="aac", channels=2, sample_rate=48000),
    )
    return ProbeResult(**(base | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("probe_result", "code"),
    [
        (_probe(video=None, audio=None), "not-media"),
        (_probe(video=None), "no-video"),
        (_probe(container="avi"), "container-not-allowed"),
        (_probe(video=VideoStream(0, "mpeg2video", 720, 576, 25.0)), "codec-not-allowed"),
        (_probe(audio=AudioStream(1, "wmav2", 2, 44100)), "codec-not-allowed"),
        (_probe(duration_s=1200.5), "too-long"),
        (_probe(video=VideoStream(0, "h264", 7680, 4320, 30.0)), "too-large-resolution"),
        (_probe(video=VideoStream(0, "h264", 2160, 3840, 30.0)), None),  # portrait 4K is fine
        (_probe(duration_s=None), None),  # unknown length: capped while transcoding instead
        (_probe(audio=None), None),  # a silent video is still a video
        (_probe(container="matroska,webm", video=VideoStream(0, "vp9", 1280, 720, 30.0),
                audio=AudioStream(1, "opus", 2, 48000)), None),
    ],
)
def test_policy_check(probe_result: ProbeResult, code: str | None) -> None:
    if code is None:
        check(probe_result, MediaPolicy())
    else:
        with pytest.raises(MediaError) as caught:
            check(probe_result, MediaPolicy())
        assert caught.value.code == code


def test_parse_skips_cover_art_and_reads_rotation() -> None:
    result = parse({
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "N/A",
                   "tags": {"location": GPS}},
        "streams": [
            {"index": 0, "codec_type": "video", "codec_name": "mjpeg", "width": 600, "height": 600,
             "disposition": {"attached_pic": 1}},
            {"index": 1, "codec_type": "audio", "codec_name": "aac", "channels": 2, "sample_rate": "48000"},
            {"index": 2, "codec_type": "video", "codec_name": "hevc", "width": 1920, "height": 1080,
             "avg_frame_rate": "0/0", "r_frame_rate": "30000/1001", "sample_aspect_ratio": "1:1",
             "duration": "12.5", "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]},
        ],
    })
    assert result.video == VideoStream(index=2, codec="hevc", width=1920, height=1080,
                                       fps=pytest.approx(29.97, abs=0.01), rotation=90)
    assert result.audio is not None and result.audio.index == 1
    assert result.duration_s == 12.5
    assert result.tags == {"format/location": GPS}
    legacy = parse({"format": {}, "streams": [{"index": 0, "codec_type": "video", "tags": {"rotate": "180"}}]})
    assert legacy.video is not None and legacy.video.rotation == 180
    with pytest.raises(MediaError):
        parse({"streams": []})


def test_media_imports_nothing_of_relay_or_storage() -> None:
    package = Path(media.__file__).parent
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            assert not any(n.split(".")[0] in ("relay", "storage") for n in names), module.name


async def test_a_playlist_disguised_as_a_video_is_not_opened(tmp_path: Path) -> None:
    """An HLS playlist named .mp4 would make ffprobe (and ffmpeg) open the files it lists: any file
    of the desk. Only recorded-media containers are probed, so it is simply not media."""
    segment = Clips(tmp_path).mpeg_ts
    playlist = tmp_path / "holiday.mp4"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2.0,\nfile:{segment}\n#EXT-X-ENDLIST\n")
    with pytest.raises(MediaError) as refused:
        await probe(playlist)
    assert refused.value.code == "not-media"


async def test_every_child_runs_under_resource_limits() -> None:
    from media.runner import run

    done = await run(["sh", "-c", "ulimit -n; ulimit -c; ulimit -v; ulimit -f"])
    nofile, core, memory_kib, fsize_blocks = done.stdout.decode().split()
    assert (nofile, core) == ("256", "0")
    assert int(memory_kib) == 8 * 1024**2 and int(fsize_blocks) * 512 == 6 * 1024**3
