"""Long work in the background of a page (decrypting a video, sanitizing it, releasing it,
sending one), with progress a page can poll at ``/jobs/{id}``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from relay.client.web.person import Job, Unlocked

Work = Callable[[Job], Awaitable[Any]]


def start(person: Unlocked, kind: str, item_id: str, work: Work) -> Job:
    from relay.client.web.common import describe

    job = Job(kind=kind, item_id=item_id)

    async def run() -> None:
        try:
            job.result = await work(job)
            if job.state == "running":  # the work may have ended otherwise (paused)
                job.state = "finished"
        except asyncio.CancelledError:
            if job.state == "running":
                job.state = "failed"
            raise
        except Exception as exc:  # shown to the person in words; never a traceback
            job.state, job.error = "failed", describe(exc)

    job.task = asyncio.create_task(run(), name=f"{kind}:{job.id}")
    person.jobs[job.id] = job
    return job


def latest(person: Unlocked, kind: str, item_id: str) -> Job | None:
    found = [j for j in person.jobs.values() if j.kind == kind and j.item_id == item_id]
    return found[-1] if found else None
