"""Domain errors of the relay. Each maps to one RFC 9457 problem type in ``relay.problems``.

Messages shown to people come from ``relay.i18n`` by the error's ``type``; an error's
``detail`` is for staff-facing codes only and never carries content, names or secrets.
"""

from __future__ import annotations

from typing import Any


class RelayError(Exception):
    """Base: a failure a client can act on. ``type`` is the stable problem slug."""

    status = 500
    type = "internal-error"
    retry_after: int | None = None  # seconds, for a Retry-After header, when known (a 429)

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.type)
        self.detail = detail
        self.extra = extra


class MalformedRequest(RelayError):
    """The body is not JSON, or not the shape expected."""

    status, type = 400, "malformed-request"


class InvalidField(RelayError):
    """Fields failed validation; ``extra['errors']`` lists where."""

    status, type = 422, "invalid-field"


class BodyTooLarge(RelayError):
    """The body is over the limit for this endpoint."""

    status, type = 413, "body-too-large"


class Unauthenticated(RelayError):
    """No approved device token, or a revoked or wrong one."""

    status, type = 401, "unauthenticated"


class SessionRequired(RelayError):
    """No session, or an expired, idle, ended or foreign one."""

    status, type = 401, "session-required"


class LoginRefused(RelayError):
    """The challenge or its signature did not check out, or this device may not serve that person."""

    status, type = 401, "login-refused"


class Forbidden(RelayError):
    """Authenticated, but this role or device may not do this."""

    status, type = 403, "forbidden"


class NotFound(RelayError):
    """Unknown, or not visible to the caller (the two are deliberately indistinguishable)."""

    status, type = 404, "not-found"


class Conflict(RelayError):
    """The request conflicts with the current state."""

    status, type = 409, "conflict"


class LegalHold(RelayError):
    """The case is under legal hold: nothing of it is erased or purged until the hold is lifted."""

    status, type = 409, "legal-hold"


class SignatureInvalid(RelayError):
    """A signed document did not verify or does not match the request."""

    status, type = 422, "signature-invalid"


class EnvelopeVersionUnsupported(RelayError):
    """A document (or blob) of an envelope version this relay does not accept: version 1 is retired."""

    status, type = 422, "envelope-version-unsupported"


class ContentMismatch(RelayError):
    """Uploaded bytes differ from the signed size or hash."""

    status, type = 422, "content-mismatch"


class ScreeningRefused(RelayError):
    """Screening did not allow the exchange now; staff see the code, senders a neutral sentence."""

    status, type = 403, "screening-refused"


class OffenderRequestNotAccepted(RelayError):
    """A case was asked for on an offender's own request."""

    status, type = 422, "offender-request-not-accepted"


class RateLimited(RelayError):
    """Too many attempts in the window; ``retry_after_seconds``, when given, also becomes the
    Retry-After header."""

    status, type = 429, "rate-limited"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = extra.get("retry_after_seconds")


class BootstrapRefused(RelayError):
    """The first-coordinator enrollment code is wrong, used or expired."""

    status, type = 403, "bootstrap-refused"


class TusVersionUnsupported(RelayError):
    """A resumable-upload request without ``Tus-Resumable: 1.0.0``."""

    status, type = 412, "tus-version-unsupported"


class UnsupportedMediaType(RelayError):
    """A PATCH whose body is not ``application/offset+octet-stream``."""

    status, type = 415, "unsupported-media-type"


class ChecksumMismatch(RelayError):
    """The chunk does not match its ``Upload-Checksum``; nothing of it was kept."""

    status, type = 460, "checksum-mismatch"


class UploadExpired(RelayError):
    """The upload was abandoned too long and its bytes were reclaimed."""

    status, type = 410, "upload-expired"


class RequestTimeout(RelayError):
    """The request's headers or body stopped arriving; the connection is closed."""

    status, type = 408, "request-timeout"


class PreconditionFailed(RelayError):
    """A conditional request (If-Match, If-Unmodified-Since) whose condition does not hold."""

    status, type = 412, "precondition-failed"


class RangeNotSatisfiable(RelayError):
    """A Range that lies outside the content; ``Content-Range`` gives its length."""

    status, type = 416, "range-not-satisfiable"


class ExpectationFailed(RelayError):
    """An ``Expect`` header other than ``100-continue`` (the only expectation the relay meets)."""

    status, type = 417, "expectation-failed"


class HeadersTooLarge(RelayError):
    """A header line or the header section is over the relay's limit, or there are too many."""

    status, type = 431, "headers-too-large"


class InsufficientStorage(RelayError):
    """The relay's disk is (nearly) full: new content is refused for now, reads still work."""

    status, type = 507, "insufficient-storage"


class TooBusy(RelayError):
    """Too many connections are open (``max_connections``): this one is answered and closed."""

    status, type = 503, "too-busy"
    retry_after = 5


class NotReady(RelayError):
    """The relay cannot take work now; ``problems`` says what is wrong, in words."""

    status, type = 503, "not-ready"


# -- limits and the mediator desk (issue 10 and 11) -------------------------------------------


class QuotaExceeded(RelayError):
    """A person's quota (items a day, bytes waiting for review) is spent; ``extra`` says which,
    the limit, what is used and when it frees up."""

    status, type = 429, "quota-exceeded"


class ApprovalRequired(RelayError):
    """A release of an item that a no-contact condition refers to the national unit, before its
    approval; staff see the condition and what an approval would have to allow."""

    status, type = 403, "approval-required"


class UnknownRecipient(RelayError):
    """The recipient a sender named is not a participant of the case (or is the sender)."""

    status, type = 422, "unknown-recipient"


class AlreadyDecided(RelayError):
    """A decision on an item a mediator has already decided; ``extra`` says what and when."""

    status, type = 409, "already-decided"


class ContentDamaged(RelayError):
    """The stored ciphertext no longer matches its signed size or hash (found by a scrub)."""

    status, type = 409, "content-damaged"
