"""Constants of the HTTP protocol that the relay and its clients must agree on.

Both sides import this leaf module (it imports nothing of ours), so a header name or a size
limit is written once.
"""

from __future__ import annotations

from typing import Final

DEVICE_HEADER: Final = "X-Relay-Device"  # the approved device's token; the session rides in Authorization
MAX_POSTER_BYTES: Final = 128 * 1024  # a sealed 320x180 JPEG poster frame is a few tens of KiB
RESUMABLE_ABOVE: Final = 8 * 1024 * 1024  # clients send larger sealed content with tus, in resumable chunks
