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
    "request-timeout": {
        "en": "The request arrived too slowly and the connection was closed. Check the connection and try again.",
        "fr": "La demande est arrivée trop lentement et la connexion a été fermée. Vérifiez la connexion et réessayez.",
    },
    "precondition-failed": {
        "en": "The condition in the request (If-Match or If-Unmodified-Since) does not hold. Fetch it again without it.",
        "fr": "La condition de la demande (If-Match ou If-Unmodified-Since) n'est pas remplie. Récupérez-le de nouveau sans elle.",
    },
    "range-not-satisfiable": {
        "en": "The requested part lies outside the file. Ask again from an offset within its length.",
        "fr": "La partie demandée est hors du fichier. Redemandez-la à partir d'une position comprise dans sa longueur.",
    },
    "headers-too-large": {
        "en": "The request's headers are too large or too many. Send shorter headers.",
        "fr": "Les en-têtes de la demande sont trop grands ou trop nombreux. Envoyez des en-têtes plus courts.",
    },
    "insufficient-storage": {
        "en": "The relay is short of disk space and cannot take new content now. Nothing was lost: try again later.",
        "fr": "Le relais manque d'espace disque et ne peut pas recevoir de nouveau contenu pour le moment."
              " Rien n'a été perdu : réessayez plus tard.",
    },
    "not-ready": {
        "en": "The relay cannot take work right now. The operator should look at the problems listed.",
        "fr": "Le relais ne peut pas recevoir de travail pour le moment. L'exploitant doit examiner les problèmes indiqués.",
    },
    "not-ready.database": {
        "en": "The database cannot be written to (the disk may be full or read-only).",
        "fr": "La base de données ne peut pas être modifiée (le disque est peut-être plein ou en lecture seule).",
    },
    "not-ready.schema": {
        "en": "The database schema is not the one this relay expects.",
        "fr": "Le schéma de la base de données n'est pas celui qu'attend ce relais.",
    },
    "not-ready.blobs": {
        "en": "The content store cannot take new files.",
        "fr": "Le magasin de contenu ne peut pas recevoir de nouveaux fichiers.",
    },
    "not-ready.disk": {
        "en": "Free disk space is below the reserve kept for the database: new content is refused.",
        "fr": "L'espace disque libre est sous la réserve gardée pour la base de données : le nouveau contenu est refusé.",
    },
    "not-ready.purge": {
        "en": "The retention worker has stopped: scheduled deletions are not running.",
        "fr": "Le processus de conservation s'est arrêté : les suppressions prévues ne s'exécutent pas.",
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


# -- limits and the mediator desk (issues 10 and 11): problems, reason codes, hold codes ---------

_LIMITS_AND_DESK: Mapping[str, Mapping[str, str]] = {
    "quota-exceeded": {
        "en": "You have reached the limit of what you can send for now. The answer says which limit and when"
              " it frees up; try again then, or ask your mediator.",
        "fr": "Vous avez atteint la limite de ce que vous pouvez envoyer pour le moment. La réponse indique"
              " quelle limite et quand elle se libère; réessayez à ce moment, ou adressez-vous à votre médiateur.",
    },
    "approval-required": {
        "en": "This item cannot be released yet: a no-contact condition requires the national unit's approval."
              " The answer names the condition and what an approval would have to allow; ask the coordinator.",
        "fr": "Cet élément ne peut pas encore être transmis : une condition de non-communication exige"
              " l'approbation de l'unité nationale. La réponse nomme la condition et ce qu'une approbation"
              " devrait permettre; adressez-vous au coordonnateur.",
    },
    "unknown-recipient": {
        "en": "No participant with this id takes part in this case (and you cannot write to yourself)."
              " Check the recipient, or write to the mediators.",
        "fr": "Aucun participant portant cet identifiant ne prend part à ce dossier (et vous ne pouvez pas"
              " vous écrire à vous-même). Vérifiez le destinataire, ou écrivez aux médiateurs.",
    },
    "already-decided": {
        "en": "This item was already decided; the answer says how and when. Nothing was changed.",
        "fr": "Une décision a déjà été prise sur cet élément; la réponse indique laquelle et quand."
              " Rien n'a été modifié.",
    },
    "content-damaged": {
        "en": "The stored copy of this item is damaged and cannot be served. The mediator has been told and"
              " can ask the sender to send it again.",
        "fr": "La copie conservée de cet élément est endommagée et ne peut pas être transmise. Le médiateur en"
              " a été informé et peut demander à l'expéditeur de l'envoyer de nouveau.",
    },
    # why a mediator withholds an item (relay.wire.WITHHOLD_REASONS)
    "withhold.not-ready": {"en": "The recipient is not ready to receive it now",
                           "fr": "Le destinataire n'est pas prêt à le recevoir maintenant"},
    "withhold.safety-concern": {"en": "Passing it on could put someone at risk",
                                "fr": "Le transmettre pourrait mettre quelqu'un en danger"},
    "withhold.harmful-content": {"en": "It could cause harm as written",
                                 "fr": "Tel qu'il est rédigé, il pourrait causer du tort"},
    "withhold.identifying-information": {"en": "It reveals where someone lives, works or is held",
                                         "fr": "Il révèle où une personne vit, travaille ou est détenue"},
    "withhold.condition-breach": {"en": "It would breach a no-contact condition or a court order",
                                  "fr": "Il contreviendrait à une condition de non-communication ou à une"
                                        " ordonnance du tribunal"},
    "withhold.outside-mediation": {"en": "It is not about the mediation",
                                   "fr": "Il ne porte pas sur la médiation"},
    "withhold.sender-withdrew": {"en": "The sender asked that it not be passed on",
                                 "fr": "L'expéditeur a demandé qu'il ne soit pas transmis"},
    "withhold.discuss-in-person": {"en": "The mediator will discuss it with the sender first",
                                   "fr": "Le médiateur en discutera d'abord avec l'expéditeur"},
    # why a case's mediator pauses or resumes it (relay.wire.PAUSE_REASONS, RESUME_REASONS)
    "pause.safety-assessment": {"en": "Ongoing safety assessment", "fr": "Évaluation continue de la sécurité"},
    "pause.participant-wellbeing": {"en": "A participant needs time", "fr": "Un participant a besoin de temps"},
    "pause.participant-request": {"en": "A participant asked for a pause",
                                  "fr": "Un participant a demandé une pause"},
    "pause.awaiting-information": {"en": "Waiting for information", "fr": "En attente de renseignements"},
    "pause.mediator-unavailable": {"en": "The mediator is away for a while",
                                   "fr": "Le médiateur est absent pour un temps"},
    "resume.assessment-complete": {"en": "Safety assessment complete",
                                   "fr": "Évaluation de la sécurité terminée"},
    "resume.participant-ready": {"en": "The participant is ready to continue",
                                 "fr": "Le participant est prêt à poursuivre"},
    "resume.information-received": {"en": "The information was received", "fr": "Les renseignements ont été reçus"},
    "resume.mediator-available": {"en": "The mediator is available again", "fr": "Le médiateur est de nouveau disponible"},
    # why an item is held, for the mediator's queue (hold codes)
    "hold.consent-withdrawn": {"en": "A participant withdrew their consent",
                               "fr": "Un participant a retiré son consentement"},
    "hold.condition-requires-approval": {"en": "A no-contact condition requires the national unit's approval",
                                         "fr": "Une condition de non-communication exige l'approbation de"
                                               " l'unité nationale"},
    "hold.case-paused": {"en": "The case is paused", "fr": "Le dossier est en pause"},
    "hold.case-closed": {"en": "The case is closed", "fr": "Le dossier est fermé"},
    "hold.other": {"en": "Screening does not allow it now", "fr": "Le filtrage ne le permet pas pour le moment"},
}
MESSAGES = {**MESSAGES, **_LIMITS_AND_DESK}
