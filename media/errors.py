"""The one error type of ``media``: a stable ``code`` and a message in English and French.

A caller (the mediator's desk, the sender's client) shows ``message_en`` / ``message_fr`` to
people and maps ``code`` to whatever it needs (a problem type, a retry decision). ``detail`` is
for staff logs: what ffprobe/ffmpeg said, or which limit was hit. It may name a file path or a
codec but never carries media content or metadata values (tag values can hold a location).
"""

from __future__ import annotations

from typing import Literal, get_args

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

# (English, French) for each code; the wording is addressed to the person who sent or reviews
# the video, so it says what to do next, not how ffmpeg failed.
MESSAGES: dict[MediaErrorCode, tuple[str, str]] = {
    "not-media": (
        "This file is not a video that can be read.",
        "Ce fichier n'est pas une vidéo lisible.",
    ),
    "truncated": (
        "This video is incomplete (the file was cut short). Please record or send it again.",
        "Cette vidéo est incomplète (le fichier a été tronqué). Veuillez l'enregistrer ou l'envoyer de nouveau.",
    ),
    "no-video": (
        "This file has no picture: a video message is required.",
        "Ce fichier n'a pas d'image : un message vidéo est requis.",
    ),
    "too-long": (
        "This video is longer than allowed.",
        "Cette vidéo dépasse la durée permise.",
    ),
    "too-large-resolution": (
        "This video's picture size is larger than allowed.",
        "La taille d'image de cette vidéo dépasse la limite permise.",
    ),
    "codec-not-allowed": (
        "This video is encoded in a format that is not accepted.",
        "Cette vidéo est encodée dans un format qui n'est pas accepté.",
    ),
    "container-not-allowed": (
        "This type of video file is not accepted.",
        "Ce type de fichier vidéo n'est pas accepté.",
    ),
    "timeout": (
        "Processing this video took too long and was stopped.",
        "Le traitement de cette vidéo a pris trop de temps et a été interrompu.",
    ),
    "ffmpeg-failed": (
        "This video could not be converted.",
        "Cette vidéo n'a pas pu être convertie.",
    ),
}

CODES: frozenset[str] = frozenset(get_args(MediaErrorCode))


class MediaError(Exception):
    """A media file was refused or could not be processed. ``code`` is one of :data:`CODES`."""

    def __init__(self, code: MediaErrorCode, detail: str | None = None) -> None:
        if code not in MESSAGES:
            raise ValueError(f"unknown media error code {code!r}")
        self.code: MediaErrorCode = code
        self.message_en, self.message_fr = MESSAGES[code]
        self.detail = detail
        super().__init__(f"{code}: {self.message_en}" + (f" ({detail})" if detail else ""))
