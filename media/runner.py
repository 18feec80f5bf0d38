"""Running ffmpeg and ffprobe as asyncio subprocesses, and never leaving one behind.

ffmpeg-python only builds command lines (its own ``run`` blocks), so the processes are started
here with :func:`asyncio.create_subprocess_exec`. The contract of :func:`run`: when it returns
or raises, for any reason (normal exit, an exception from a line callback, the awaiting task
being cancelled, a :func:`deadline` expiring around it), the child has exited and been reaped.
Callers may then delete its working files without racing a process that still writes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from .errors import MediaError

log = logging.getLogger(__name__)

# Limits on every child: a crafted file that makes a decoder misbehave cannot take the desk's
# memory, fill its disk, open files without end or leave a core dump holding decoded frames.
LIMITS = (f"--as={8 * 1024**3}", f"--fsize={6 * 1024**3}", "--nofile=256", "--core=0")


def confined(args: Sequence[str]) -> list[str]:
    """``args`` under ``prlimit`` (util-linux, on every Debian) with :data:`LIMITS`, when it is
    there; ``prlimit`` execs the program, so the child's pid is the program's own."""
    program = shutil.which(args[0])
    if program is None:
        raise FileNotFoundError(args[0])
    limiter = shutil.which("prlimit")
    return [limiter, *LIMITS, "--", program, *args[1:]] if limiter else [program, *args[1:]]


# Enough of ffmpeg's stderr to explain a failure in a staff log; older lines are dropped so a
# chatty decoder cannot grow memory.
STDERR_TAIL_BYTES = 4096


@dataclass(frozen=True)
class Finished:
    """How a child process ended: its exit status, captured stdout, and the end of its stderr."""

    returncode: int
    stdout: bytes
    stderr_tail: str


async def run(
    args: Sequence[str],
    *,
    on_line: Callable[[str], None] | None = None,
    max_stdout: int = 16 * 1024 * 1024,
) -> Finished:
    """Run ``args`` to completion and return how it ended (a non-zero exit is not an error here).

    With ``on_line``, each stdout line is handed to it as it arrives (ffmpeg ``-progress``) and
    nothing is kept; without it, stdout is collected (ffprobe JSON), at most ``max_stdout`` bytes,
    beyond which the run fails, so a file stuffed with metadata cannot exhaust memory.
    Raises :class:`MediaError` ``ffmpeg-failed`` if the program is missing or its output is too
    large; an exception raised by ``on_line`` and cancellation propagate after the child is reaped.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *confined(args),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise MediaError("ffmpeg-failed", detail=f"{args[0]} is not installed") from None
    assert proc.stdout is not None and proc.stderr is not None
    log.debug("started %s (pid %d)", args[0], proc.pid)
    stderr_task = asyncio.create_task(_tail(proc.stderr))
    try:
        stdout = await _read_stdout(proc.stdout, on_line, max_stdout)
        returncode = await proc.wait()
    finally:
        # Runs on every path. On cancellation or an exception the child may still be running:
        # kill it (synchronously, so it dies even if this task is cancelled again while it
        # waits) and reap it, so no process and no zombie outlives this call.
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        # The child is gone, so its stderr is at EOF and the reader finishes on its own.
        await asyncio.wait([stderr_task])
    return Finished(returncode=returncode, stdout=stdout, stderr_tail=stderr_task.result())


@contextlib.asynccontextmanager
async def deadline(seconds: float | None) -> AsyncIterator[None]:
    """Bound the enclosed block to ``seconds`` (``None``: no bound); raise ``MediaError('timeout')``.

    Expiry cancels the block, so a :func:`run` inside it kills and reaps its child first.
    """
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise MediaError("timeout", detail=f"stopped after {seconds} s") from None


async def _read_stdout(
    stream: asyncio.StreamReader, on_line: Callable[[str], None] | None, limit: int
) -> bytes:
    if on_line is not None:
        async for raw in stream:
            on_line(raw.decode("utf-8", "replace").rstrip("\r\n"))
        return b""
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(65536):
        size += len(chunk)
        if size > limit:
            raise MediaError("ffmpeg-failed", detail=f"output larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _tail(stream: asyncio.StreamReader) -> str:
    kept: deque[bytes] = deque()
    size = 0
    while chunk := await stream.read(4096):
        kept.append(chunk)
        size += len(chunk)
        while size - len(kept[0]) >= STDERR_TAIL_BYTES:
            size -= len(kept.popleft())
    return b"".join(kept)[-STDERR_TAIL_BYTES:].decode("utf-8", "replace")
