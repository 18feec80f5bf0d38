"""Media work (probe, validate, transcode, strip metadata) over ffmpeg: arrives with video messages.

Plaintext video exists only on endpoints (the sender's device before sealing, the mediator's
desk before release), so this package runs there, never on the relay server. Every video a
recipient receives goes through :func:`sanitize`: a re-encode to the delivery profile that
leaves none of the sender's metadata (GPS location, device make and model, creation time,
titles, chapters, extra tracks) in the file.

Modules, in the order a reader meets them:

- ``errors``: :class:`MediaError`, a stable ``code`` plus English and French messages.
- ``probe``: :func:`probe` (ffprobe) and :class:`ProbeResult`.
- ``policy``: pure rules: :class:`MediaPolicy` (inputs), :class:`DeliveryProfile` (outputs),
  :func:`check`, :func:`target_size`, :func:`check_rendition`.
- ``transcode``: :func:`sanitize`, :func:`poster` and the command builders behind them.
- ``runner``, ``progress``, ``workspace``: running ffmpeg without leaving a process or a
  scratch file behind, progress reports, private scratch directories.

This package imports nothing from ``relay`` or ``storage``.
"""

from .errors import MediaError
from .policy import DeliveryProfile, MediaPolicy, check, check_rendition, target_size
from .probe import AudioStream, ProbeResult, VideoStream, probe
from .transcode import poster, poster_args, sanitize, sanitize_args

__all__ = [
    "AudioStream",
    "DeliveryProfile",
    "MediaError",
    "MediaPolicy",
    "ProbeResult",
    "VideoStream",
    "check",
    "check_rendition",
    "poster",
    "poster_args",
    "probe",
    "sanitize",
    "sanitize_args",
    "target_size",
]
