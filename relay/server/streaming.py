"""Deliveries being streamed right now, so that a change which stops a delivery can stop one
already under way (``relay.server.services.deliveries`` decides which; this only keeps them).

Screening at fetch decides when a download starts, and a video's can last minutes: a
withdrawal of consent takes effect at once, so the bytes still to come must not follow it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from relay.server.principal import Principal


@dataclass(eq=False)
class Streaming:
    """One delivery's ciphertext on its way to its recipient, over ``transport``."""

    item_id: str
    who: Principal  # the recipient's device and session, as the guard let them in
    transport: asyncio.BaseTransport

    def cut(self) -> None:
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            self.transport.close()
            return
        with contextlib.suppress(OSError):
            # When it closes, drop what the kernel still holds for the recipient (a reset, not
            # the rest of the file), then end the connection both ways: the sendfile under way
            # fails and aiohttp closes the connection. Not transport.abort(): aborting during
            # loop.sendfile trips asyncio (InvalidStateError in _call_connection_lost, 3.11).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RDWR)


class Deliveries:
    """The deliveries being streamed in this process."""

    def __init__(self) -> None:
        self._now: set[Streaming] = set()
        # Changes accepted so far (services.deliveries.follow_changes): a delivery screened
        # before one, and registered after its recheck looked, is checked again before it starts.
        self.changes = 0

    def __len__(self) -> int:
        return len(self._now)

    def __iter__(self) -> Iterator[Streaming]:
        return iter(list(self._now))  # a copy: rechecking awaits, and streams end meanwhile

    @contextlib.contextmanager
    def streaming(self, item_id: str, who: Principal,
                  transport: asyncio.BaseTransport | None) -> Iterator[Streaming | None]:
        if transport is None or transport.is_closing():
            yield None  # nothing left to cut: aiohttp ends the answer itself
            return
        entry = Streaming(item_id, who, transport)
        self._now.add(entry)
        try:
            yield entry
        finally:
            self._now.discard(entry)

    def cut(self, entry: Streaming) -> bool:
        """Cut ``entry`` off if it is still streaming; whether it was."""
        if entry not in self._now:
            return False
        self._now.discard(entry)
        entry.cut()
        return True


__all__ = ["Deliveries", "Streaming"]
