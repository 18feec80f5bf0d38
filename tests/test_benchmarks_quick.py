"""Every benchmark still runs: each ``bench/*.py`` (helpers start with ``_``) in its ``--quick``
mode, as a subprocess with a timeout, must exit 0 within the time (none may hang at exit on
threads or child servers left open) and print its ratio line. Quick mode checks that a benchmark
works, not its figures: those come from full runs (README, Performance)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
BENCHMARKS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))
RATIO_LINE = re.compile(r"^.*ratio[^\n:]*:\s+\d+\.\d+", re.MULTILINE)


def test_every_benchmark_is_covered() -> None:
    assert {p.stem for p in BENCHMARKS} >= {"download", "letter_roundtrip", "load", "purge", "screening", "sealing",
                                             "transcode", "upload", "writes"}


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_benchmark_runs_in_quick_mode(script: Path) -> None:
    done = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=300,
                          cwd=BENCH.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    assert RATIO_LINE.search(done.stdout), done.stdout
