"""The relay's sentences for people (problem titles, item states, reason codes), by stable key.

The English is here, marked for extraction; every translation is in the gettext catalogs
(``relay/i18n/catalogs.py``), whose French follows the wording of the program's bilingual
pamphlet (« Possibilités de justice réparatrice », « médiateur », « victime », « délinquant »).
"""

from __future__ import annotations

from collections.abc import Mapping

from relay.i18n.catalogs import LANGUAGES, N_, translation

__all__ = ["LANGUAGES", "MESSAGES", "both", "negotiate", "text"]

MESSAGES: Mapping[str, str] = {
    "malformed-request": N_("The request could not be read: its body or one of its headers is not well-formed. Check them and try again."),
    "invalid-field": N_("Some fields are missing or not valid. Correct them and try again."),
    "body-too-large": N_("The request is larger than the relay accepts. Send a smaller file."),
    "unauthenticated": N_("This device is not approved or its token is not valid. Ask the coordinator to register it."),
    "session-required": N_("Your session has ended or is not valid. Sign in again."),
    "login-refused": N_("Sign-in was refused. Check that you are using your own key on an approved device."),
    "forbidden": N_("You are not permitted to do this."),
    "not-found": N_("Nothing was found at this address, or you may not see it."),
    "conflict": N_("This conflicts with the current state. Refresh and try again."),
    "legal-hold": N_("This case is under legal hold: nothing of it can be erased or purged until the hold is lifted."),
    "signature-invalid": N_("A signature did not verify. Nothing was changed. Check that the right key was used."),
    "envelope-version-unsupported": N_("This was sealed in an envelope version the relay no longer accepts (version 1). Nothing was kept. Update the relay app on this device, then send it again."),
    "content-mismatch": N_("The uploaded content does not match its signed description. Nothing was kept. Send it again."),
    "screening-refused": N_("This message cannot be sent or delivered in this case at the moment. Your mediator can tell you more."),
    "offender-request-not-accepted": N_("A case is opened only from a staff, victim or community referral; requests made directly by an offender are not accepted."),
    "rate-limited": N_("Too many attempts. Wait a while, then try again."),
    "bootstrap-refused": N_("The enrollment code is not valid, was already used, or has expired. Restart the relay to print a new one."),
    "tus-version-unsupported": N_("This relay speaks tus 1.0.0 for resumable uploads. Send the header Tus-Resumable: 1.0.0."),
    "unsupported-media-type": N_("Upload chunks must be sent as application/offset+octet-stream."),
    "checksum-mismatch": N_("The chunk was damaged on the way: nothing of it was kept. Send it again from the same offset."),
    "upload-expired": N_("This upload was left unfinished too long and was removed. Start the upload again."),
    "request-timeout": N_("The request arrived too slowly and the connection was closed. Check the connection and try again."),
    "precondition-failed": N_("The condition in the request (If-Match or If-Unmodified-Since) does not hold. Fetch it again without it."),
    "range-not-satisfiable": N_("The requested part lies outside the file. Ask again from an offset within its length."),
    "expectation-failed": N_("The relay cannot meet the request's Expect header. Send the request without it."),
    "headers-too-large": N_("The request's headers are too large or too many. Send shorter headers."),
    "insufficient-storage": N_("The relay is short of disk space and cannot take new content now. Nothing was lost: try again later."),
    "too-busy": N_("The relay has too many connections open right now. Try again in a few seconds."),
    "not-ready": N_("The relay cannot take work right now. The operator should look at the problems listed."),
    "not-ready.database": N_("The database cannot be written to (the disk may be full or read-only)."),
    "not-ready.schema": N_("The database schema is not the one this relay expects."),
    "not-ready.blobs": N_("The content store cannot take new files."),
    "not-ready.disk": N_("Free disk space is below the reserve kept for the database: new content is refused."),
    "not-ready.purge": N_("The retention worker has stopped: scheduled deletions are not running."),
    "internal-error": N_("Something went wrong on the relay. Nothing was changed. Try again later."),
    "state.pending_review": N_("Waiting for your mediator's review"),
    "state.released": N_("Released by your mediator; not yet opened"),
    "state.to-mediators": N_("Sent to your mediators"),
    "state.delivered": N_("Opened by the recipient"),
    "state.returned": N_("Returned to you by your mediator, with a note"),
    "state.withheld": N_("Not passed on by your mediator. Your mediator can tell you more."),
    "state.held": N_("On hold for now. Your mediator will be in touch."),
    "state.expired": N_("No longer available"),
    "state.purged": N_("No longer available"),
    "state.uploading": N_("Being sent"),
    "quota-exceeded": N_("You have reached the limit of what you can send for now. The answer says which limit and when it frees up; try again then, or ask your mediator."),
    "approval-required": N_("This item cannot be released yet: a no-contact condition requires the national unit's approval. The answer names the condition and what an approval would have to allow; ask the coordinator."),
    "unknown-recipient": N_("No participant with this id takes part in this case (and you cannot write to yourself). Check the recipient, or write to the mediators."),
    "already-decided": N_("This item was already decided; the answer says how and when. Nothing was changed."),
    "content-damaged": N_("The stored copy of this item is damaged and cannot be served. The mediator has been told and can ask the sender to send it again."),
    "withhold.not-ready": N_("The recipient is not ready to receive it now"),
    "withhold.safety-concern": N_("Passing it on could put someone at risk"),
    "withhold.harmful-content": N_("It could cause harm as written"),
    "withhold.identifying-information": N_("It reveals where someone lives, works or is held"),
    "withhold.condition-breach": N_("It would breach a no-contact condition or a court order"),
    "withhold.outside-mediation": N_("It is not about the mediation"),
    "withhold.sender-withdrew": N_("The sender asked that it not be passed on"),
    "withhold.discuss-in-person": N_("The mediator will discuss it with the sender first"),
    "pause.safety-assessment": N_("Ongoing safety assessment"),
    "pause.participant-wellbeing": N_("A participant needs time"),
    "pause.participant-request": N_("A participant asked for a pause"),
    "pause.awaiting-information": N_("Waiting for information"),
    "pause.mediator-unavailable": N_("The mediator is away for a while"),
    "resume.assessment-complete": N_("Safety assessment complete"),
    "resume.participant-ready": N_("The participant is ready to continue"),
    "resume.information-received": N_("The information was received"),
    "resume.mediator-available": N_("The mediator is available again"),
    "hold.consent-withdrawn": N_("A participant withdrew their consent"),
    "hold.condition-requires-approval": N_("A no-contact condition requires the national unit's approval"),
    "hold.case-paused": N_("The case is paused"),
    "hold.case-closed": N_("The case is closed"),
    "hold.other": N_("Screening does not allow it now"),
}


def text(key: str, lang: str = "en") -> str:
    """The sentence ``key`` in ``lang``, from the gettext catalog."""
    return translation(lang).gettext(MESSAGES[key])


def both(key: str) -> dict[str, str]:
    """The sentence in every language, for clients that pick one themselves."""
    return {lang: text(key, lang) for lang in LANGUAGES}


def negotiate(accept_language: str | None) -> str:
    """The best of our languages for an ``Accept-Language`` header; English by default."""
    if not accept_language:
        return "en"
    best, best_q = "en", -1.0
    for part in accept_language.split(","):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if lang in LANGUAGES and q > best_q:
            best, best_q = lang, q
    return best
