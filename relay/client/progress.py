"""A progress bar for long work, on stderr, only when a person is watching (a TTY): what is being
done in the person's language, and how much in MB (or seconds, for a transcode)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from relay.i18n.cli import language, say


class Bar:
    def __init__(self, step: str, stream: TextIO = sys.stderr, unit: str = "MB", lang: str | None = None) -> None:
        """``step`` names the work: ``upload``, ``download``, ``sealing``, ``sanitizing``, ``shrinking``."""
        self.lang = language(lang)
        self.label = say(f"bar.{step}", self.lang)
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
        scale = 1e6 if self.unit == "MB" else 1
        unit = say("bar.mb", self.lang) if self.unit == "MB" else say("bar.seconds", self.lang)
        percent = f"{fraction:6.1%}" if self.lang == "en" else f"{fraction * 100:5.1f} %".replace(".", ",")
        self.stream.write(f"\r{self.label} [{'#' * filled}{' ' * (30 - filled)}] {percent}"
                          f" {done / scale:8.1f}/{total / scale:.1f} {unit}")
        if done >= total:
            self.stream.write("\n")
            self._done = True
        self.stream.flush()
