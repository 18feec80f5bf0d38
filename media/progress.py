"""Turning ffmpeg's ``-progress`` output into ``progress(done_seconds, total_seconds)`` calls.

With ``-progress pipe:1`` ffmpeg writes blocks of ``key=value`` lines to stdout, each block
ending with ``progress=continue`` (or ``progress=end`` once, at the end). ``out_time_us`` is the
output timestamp reached, in microseconds; it reads ``N/A`` (or a negative number) until the
first frame is written. ffmpeg 5.1 also prints ``out_time_ms``, which is microseconds too
despite its name, so only ``out_time_us`` is read.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[float, float], None]


class ProgressReporter:
    """Feed it ffmpeg's progress lines; it calls ``callback(done, total)`` as work advances.

    Calls are made at the end of each block whose time moved forward, plus once at
    ``progress=end``, so ``done`` never decreases and the last call is the end. ``done`` is
    capped at ``total``, the probed duration (a rendition may run a frame past it).
    """

    def __init__(self, total_s: float, callback: ProgressCallback | None) -> None:
        self.total_s = total_s
        self.callback = callback
        self.done_s = 0.0
        self._reported: float | None = None

    def feed(self, line: str) -> None:
        key, _, value = line.partition("=")
        if key == "out_time_us":
            try:
                micros = int(value)
            except ValueError:  # "N/A" before the first frame
                return
            self.done_s = min(max(self.done_s, micros / 1_000_000), self.total_s)
        elif key == "progress":
            if value == "end" or self._reported is None or self.done_s > self._reported:
                self._report()

    def _report(self) -> None:
        self._reported = self.done_s
        if self.callback is not None:
            self.callback(self.done_s, self.total_s)
