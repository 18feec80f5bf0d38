"""Writing verified content where the person asked: a file (exact bytes, renamed into place only
once everything verified), or the terminal (a letter, with its hidden characters made visible;
never a video's bytes), or a pipe (a video's exact bytes)."""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO

from relay.client.cli.common import CliError, human_size
from relay.client.visible import reveal_bytes
from relay.i18n.cli import say

Fetcher = Callable[[BinaryIO], Awaitable[Any]]


def is_text(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower().startswith("text/")


async def show_or_write(out: Path | None, fetch: Fetcher, *, content_type: str | None, size: int | None,
                        done_key: str, lang: str) -> None:
    """Verified content to ``out``, or to standard output as :mod:`module <relay.client.cli.content>`
    says. ``content_type`` and ``size`` are what the item says it holds (to choose before fetching)."""
    if out is not None:
        await into_place(out, fetch)
        print(say(done_key, lang, size=human_size(out.stat().st_size, lang), path=out), file=sys.stderr)
        return
    if is_text(content_type):
        buffer = io.BytesIO()  # a letter is small (the relay's limit), and stays in memory
        await fetch(buffer)
        show_text(buffer.getvalue(), lang)
        return
    if sys.stdout.isatty():
        raise CliError(say("binary-to-terminal", lang, type=content_type or "?", size=human_size(size, lang)))
    # A pipe or a redirect gets the bytes exactly as decrypted (each chunk is authenticated before
    # it is written; a failure at the end still exits non-zero).
    sys.stdout.flush()
    await fetch(sys.stdout.buffer)
    sys.stdout.buffer.flush()


def show_text(data: bytes, lang: str) -> None:
    """A letter on standard output with every hidden character shown as a mark, and a warning
    (on standard error) that says how many there were."""
    marked, findings = reveal_bytes(data)
    sys.stdout.write(marked)
    sys.stdout.flush()
    if findings:
        print(("\n" if not marked.endswith("\n") else "") + say("hidden-chars", lang, n=len(findings)),
              file=sys.stderr)


async def into_place(dst: Path, fetch: Fetcher) -> Any:
    """``fetch(out)`` into a private file beside ``dst``, renamed to ``dst`` only if it succeeds."""
    fd, name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".partial", dir=dst.parent)
    partial = Path(name)  # created afresh (O_EXCL, 0600): nothing planted beforehand is written into
    try:
        with os.fdopen(fd, "wb") as out:
            result = await fetch(out)
        os.replace(partial, dst)
        return result
    finally:
        partial.unlink(missing_ok=True)
