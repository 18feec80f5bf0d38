"""Constants of the HTTP protocol that the relay and its clients must agree on.

Both sides import this leaf module (it imports nothing of ours), so a header name or a size
limit is written once.
"""

from __future__ import annotations

from typing import Final

DEVICE_HEADER: Final = "X-Relay-Device"  # the approved device's token; the session rides in Authorization
MAX_POSTER_BYTES: Final = 128 * 1024  # a sealed 320x180 JPEG poster frame is a few tens of KiB
RESUMABLE_ABOVE: Final = 8 * 1024 * 1024  # clients send larger sealed content with tus, in resumable chunks

# Why a mediator withholds an item: a fixed list, so no free text reaches the seven-year audit
# chain. The relay refuses any other code; clients show each code's words from relay.i18n.
WITHHOLD_REASONS: Final = ("not-ready", "safety-concern", "harmful-content", "identifying-information",
                           "condition-in-force", "participant-withdrew", "other-mediator-judgement")
