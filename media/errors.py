"""The one error type of ``media``: a stable ``code`` and a message in English.

A caller (the mediator's desk, the sender's client) shows ``message_en``, translated through the
relay's gettext catalogs, to people and maps ``code`` to whatever it needs (a problem type, a retry decision). ``detail`` is
for staff logs: what ffprobe/ffmpeg said, or which limit was hit. It may name a file path or a
codec but never carries media content or metadata values (tag values can hold a location).
"""

from __future__ import annotations

from typing import Literal, get_args


def N_(message: str) -> str:  # noqa: N802 - gettext's marker: extracted into the relay's catalogs
    return message


MediaErrorCode = Literal[
    "not-media",
    "truncated",
    "no-video",
    "too-long",
    "too-large-resolution",
    "codec-not-allowed",
    "container-not-allowed",
    "timeout",
    "ffmpeg-failed",
]

# The English for each code, addressed to the person who sent or reviews the video: it says what
# to do next, not how ffmpeg failed. It is the gettext msgid: the clients show it translated
# (relay/i18n/locale), since media/ imports nothing of the relay.
MESSAGES: dict[MediaErrorCode, str] = {
    "not-media": N_("This file is not a video that can be read."),
    "truncated": N_("This video is incomplete (the file was cut short). Please record or send it again."),
    "no-video": N_("This file has no picture: a video message is required."),
    "too-long": N_("This video is longer than allowed."),
    "too-large-resolution": N_("This video's picture size is larger than allowed."),
    "codec-not-allowed": N_("This video is encoded in a format that is not accepted."),
    "container-not-allowed": N_("This type of video file is not accepted."),
    "timeout": N_("Processing this video took too long and was stopped."),
    "ffmpeg-failed": N_("This video could not be converted."),
}

CODES: frozenset[str] = frozenset(get_args(MediaErrorCode))


class MediaError(Exception):
    """A media file was refused or could not be processed. ``code`` is one of :data:`CODES`."""

    def __init__(self, code: MediaErrorCode, detail: str | None = None) -> None:
        if code not in MESSAGES:
            raise ValueError(f"unknown media error code {code!r}")
        self.code: MediaErrorCode = code
        self.message_en = MESSAGES[code]
        self.detail = detail
        super().__init__(f"{code}: {self.message_en}" + (f" ({detail})" if detail else ""))
