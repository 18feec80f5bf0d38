"""A progress bar for long transfers, on stderr, only when a person is watching (a TTY)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Bar:
    def __init__(self, label: str, stream: TextIO = sys.stderr, unit: str = "MiB") -> None:
        self.label = label
        self.unit = unit
        self.stream = stream
        self.enabled = stream.isatty()
        self._last = 0.0
        self._done = False

    def __call__(self, done: float, total: float) -> None:
        if not self.enabled or self._done:
            return
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        fraction = done / total if total else 1.0
        filled = int(fraction * 30)
        scale = 2**20 if self.unit == "MiB" else 1
        self.stream.write(f"\r{self.label} [{'#' * filled}{' ' * (30 - filled)}] {fraction:6.1%}"
                          f" {done / scale:8.1f}/{total / scale:.1f} {self.unit}")
        if done >= total:
            self.stream.write("\n")
            self._done = True
        self.stream.flush()
