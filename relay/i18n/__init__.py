"""Every sentence a person reads, in English and French, in one table.

Keys are stable; the French follows the wording of the program's bilingual pamphlet
(« Possibilités de justice réparatrice », « médiateur », « victime », « délinquant »).
"""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("en", "fr")

MESSAGES: Mapping[str, Mapping[str, str]] = {
    # problems
    "malformed-request": {
        "en": "The request could not be read. Check that it is well-formed JSON and try again.",
        "fr": "La demande n'a pas pu être lue. Vérifiez qu'elle est en JSON valide et réessayez.",
    },
    "invalid-field": {
        "en": "Some fields are missing or not valid. Correct them and try again.",
        "fr": "Certains champs sont manquants ou invalides. Corrigez-les et réessayez.",
    },
    "body-too-large": {
        "en": "The request is larger than the relay accepts. Send a smaller file.",
        "fr": "La demande dépasse la taille acceptée par le relais. Envoyez un fichier plus petit.",
    },
    "unauthenticated": {
        "en": "This device is not approved or its token is not valid. Ask the coordinator to register it.",
        "fr": "Cet appareil n'est pas approuvé ou son jeton n'est pas valide. Demandez au coordonnateur de l'enregistrer.",
    },
    "session-required": {
        "en": "Your session has ended or is not valid. Sign in again.",
        "fr": "Votre session a pris fin ou n'est pas valide. Reconnectez-vous.",
    },
    "login-refused": {
        "en": "Sign-in was refused. Check that you are using your own key on an approved device.",
        "fr": "La connexion a été refusée. Vérifiez que vous utilisez votre propre clé sur un appareil approuvé.",
    },
    "forbidden": {
        "en": "You are not permitted to do this.",
        "fr": "Vous n'êtes pas autorisé à faire cela.",
    },
    "not-found": {
        "en": "Nothing was found at this address, or you may not see it.",
        "fr": "Rien n'a été trouvé à cette adresse, ou vous ne pouvez pas le voir.",
    },
    "conflict": {
        "en": "This conflicts with the current state. Refresh and try again.",
        "fr": "Cela entre en conflit avec l'état actuel. Actualisez et réessayez.",
    },
    "legal-hold": {
        "en": "This case is under legal hold: nothing of it can be erased or purged until the hold is lifted.",
        "fr": "Ce dossier fait l'objet d'une conservation légale : rien ne peut en être effacé ou purgé"
              " avant la levée de la conservation.",
    },
    "signature-invalid": {
        "en": "A signature did not verify. Nothing was changed. Check that the right key was used.",
        "fr": "Une signature n'a pas pu être vérifiée. Rien n'a été modifié. Vérifiez que la bonne clé a été utilisée.",
    },
    "envelope-version-unsupported": {
        "en": "This was sealed in an envelope version the relay no longer accepts (version 1). Nothing was kept."
              " Update the relay app on this device, then send it again.",
        "fr": "Ceci a été scellé dans une version d'enveloppe que le relais n'accepte plus (version 1). Rien n'a été"
              " conservé. Mettez à jour l'application du relais sur cet appareil, puis renvoyez-le.",
    },
    "content-mismatch": {
        "en": "The uploaded content does not match its signed description. Nothing was kept. Send it again.",
        "fr": "Le contenu envoyé ne correspond pas à sa description signée. Rien n'a été conservé. Renvoyez-le.",
    },
    "screening-refused": {
        "en": "This message cannot be sent or delivered in this case at the moment. Your mediator can tell you more.",
        "fr": "Ce message ne peut pas être envoyé ni remis dans ce dossier pour le moment. Votre médiateur peut vous en dire plus.",
    },
    "offender-request-not-accepted": {
        "en": "A case is opened only from a staff, victim or community referral; requests made directly by an offender are not accepted.",
        "fr": "Un dossier est ouvert seulement sur renvoi du personnel, d'une victime ou de la collectivité; les demandes faites directement par un délinquant ne sont pas acceptées.",
    },
    "rate-limited": {
        "en": "Too many attempts. Wait a while, then try again.",
        "fr": "Trop de tentatives. Attendez un moment, puis réessayez.",
    },
    "bootstrap-refused": {
        "en": "The enrollment code is not valid, was already used, or has expired. Restart the relay to print a new one.",
        "fr": "Le code d'inscription n'est pas valide, a déjà été utilisé ou a expiré. Redémarrez le relais pour en obtenir un nouveau.",
    },
    "tus-version-unsupported": {
        "en": "This relay speaks tus 1.0.0 for resumable uploads. Send the header Tus-Resumable: 1.0.0.",
        "fr": "Ce relais utilise tus 1.0.0 pour les envois reprenables. Envoyez l'en-tête Tus-Resumable: 1.0.0.",
    },
    "unsupported-media-type": {
        "en": "Upload chunks must be sent as application/offset+octet-stream.",
        "fr": "Les segments d'envoi doivent être transmis en application/offset+octet-stream.",
    },
    "checksum-mismatch": {
        "en": "The chunk was damaged on the way: nothing of it was kept. Send it again from the same offset.",
        "fr": "Le segment a été endommagé en route : rien n'en a été conservé. Renvoyez-le à partir du même point.",
    },
    "upload-expired": {
        "en": "This upload was left unfinished too long and was removed. Start the upload again.",
        "fr": "Cet envoi est resté inachevé trop longtemps et a été supprimé. Recommencez l'envoi.",
    },
    "internal-error": {
        "en": "Something went wrong on the relay. Nothing was changed. Try again later.",
        "fr": "Une erreur s'est produite sur le relais. Rien n'a été modifié. Réessayez plus tard.",
    },
    # item states as a sender sees them: neutral, never naming the other person or a condition
    "state.pending_review": {
        "en": "Waiting for your mediator's review",
        "fr": "En attente de l'examen de votre médiateur",
    },
    "state.released": {
        "en": "Released by your mediator; not yet opened",
        "fr": "Transmis par votre médiateur; pas encore ouvert",
    },
    "state.delivered": {"en": "Opened by the recipient", "fr": "Ouvert par le destinataire"},
    "state.returned": {
        "en": "Returned to you by your mediator, with a note",
        "fr": "Retourné par votre médiateur, avec une note",
    },
    "state.withheld": {
        "en": "Not passed on by your mediator. Your mediator can tell you more.",
        "fr": "Non transmis par votre médiateur. Votre médiateur peut vous en dire plus.",
    },
    "state.held": {
        "en": "On hold for now. Your mediator will be in touch.",
        "fr": "En attente pour le moment. Votre médiateur communiquera avec vous.",
    },
    "state.expired": {"en": "No longer available", "fr": "N'est plus disponible"},
    "state.purged": {"en": "No longer available", "fr": "N'est plus disponible"},
    "state.uploading": {"en": "Being sent", "fr": "En cours d'envoi"},
}


def text(key: str, lang: str = "en") -> str:
    entry = MESSAGES[key]
    return entry.get(lang) or entry["en"]


def both(key: str) -> dict[str, str]:
    """The sentence in every language, for clients that pick one themselves."""
    return dict(MESSAGES[key])


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
