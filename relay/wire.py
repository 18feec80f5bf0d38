"""Constants of the HTTP protocol that the relay and its clients must agree on.

Both sides import this leaf module (it imports nothing of ours), so a header name, a size
limit or the rule for where plain http is allowed is written once.
"""

from __future__ import annotations

import ipaddress
from typing import Final

DEVICE_HEADER: Final = "X-Relay-Device"  # the approved device's token; the session rides in Authorization
MAX_POSTER_BYTES: Final = 128 * 1024  # a sealed 320x180 JPEG poster frame is a few tens of KiB
RESUMABLE_ABOVE: Final = 8 * 1024 * 1024  # clients send larger sealed content with tus, in resumable chunks

# Reason codes a mediator chooses from, never free text: they go into the seven-year audit chain,
# which may say that something happened but never what was said. Their words, in English and
# French, are in relay.i18n under "withhold.<code>", "pause.<code>" and "resume.<code>".
WITHHOLD_REASONS: Final = (
    "not-ready",  # the recipient is not ready to receive it now
    "safety-concern",  # passing it on could put someone at risk
    "harmful-content",  # it could cause harm as written
    "identifying-information",  # it reveals where someone lives, works or is held
    "condition-breach",  # it would breach a no-contact condition or court order
    "outside-mediation",  # it is not about the mediation
    "sender-withdrew",  # the sender asked that it not be passed on
    "discuss-in-person",  # the mediator will discuss it with the sender first
)
PAUSE_REASONS: Final = (
    "safety-assessment",  # the program's ongoing assessment of safety
    "participant-wellbeing",  # a participant needs time
    "participant-request",  # a participant asked for a pause
    "awaiting-information",  # the mediator waits for information
    "mediator-unavailable",  # the mediator is away for a while
)
RESUME_REASONS: Final = (
    "assessment-complete",
    "participant-ready",
    "information-received",
    "mediator-available",
)

# How a case may be referred (the program: "a staff, victim or community referral"); "staff" is
# the program's word, "institutional" the stored one. An offender's own request opens nothing.
REFERRAL_SOURCES: Final = ("victim", "staff", "institutional", "community")
REFERRAL_STORED: Final = {"staff": "institutional"}

# The kiosk code a participant types at a terminal: 8 characters from an alphabet without
# look-alikes (no 0/O, 1/I/L, U), shown as XXXX-XXXX; case and the dash do not matter.
KIOSK_CODE_ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
KIOSK_CODE_LENGTH: Final = 8


def is_loopback(host: str) -> bool:
    """Only this machine can reach ``host``, so plain http to or on it exposes nothing: the name
    ``localhost`` or a loopback address (127.0.0.0/8, ::1). Never a name that merely starts like
    one (``127.0.0.1.example.org`` resolves wherever its owner wants), nor ``*.localhost``, which
    glibc asks the network's DNS about. The relay refuses to listen elsewhere without TLS; a
    client refuses plain http to anywhere else."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
