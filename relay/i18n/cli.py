"""What the command line says to people, in English and French."""

from __future__ import annotations

import os

TEXT: dict[str, dict[str, str]] = {
    "passphrase-new": {
        "en": "Passphrase for this key (write it down and keep it private; it is not stored anywhere):",
        "fr": "Phrase de passe de cette clé (notez-la et gardez-la secrète; elle n'est conservée nulle part) :",
    },
    "passphrase-ask": {"en": "Passphrase: ", "fr": "Phrase de passe : "},
    "passphrase-missing": {
        "en": "A passphrase is needed: set RELAY_PASSPHRASE or run this from a terminal.",
        "fr": "Une phrase de passe est requise : définissez RELAY_PASSPHRASE ou lancez la commande dans un terminal.",
    },
    "passphrase-wrong": {
        "en": "That passphrase does not open this key. Check it and try again.",
        "fr": "Cette phrase de passe n'ouvre pas cette clé. Vérifiez-la et réessayez.",
    },
    "device-token": {
        "en": "Device file written to {path}. Hand it over privately; it holds the device's token (shown only this once).",
        "fr": "Fichier d'appareil écrit dans {path}. Remettez-le en privé; il contient le jeton de l'appareil (affiché cette seule fois).",
    },
    "provisioned": {
        "en": "This device is now set up in {path}. Delete the device file you were given.",
        "fr": "Cet appareil est maintenant configuré dans {path}. Supprimez le fichier d'appareil reçu.",
    },
    "keys-written": {
        "en": "Keys created in {path}. Give {pub} to the coordinator to be enrolled.",
        "fr": "Clés créées dans {path}. Remettez {pub} au coordonnateur pour l'inscription.",
    },
    "profile-exists": {
        "en": "{path} already holds a profile; nothing was changed. Give another --profile directory.",
        "fr": "{path} contient déjà un profil; rien n'a été modifié. Indiquez un autre répertoire --profile.",
    },
    "init-interrupted": {
        "en": "An earlier 'coordinator init' stopped before it finished and left {path}. Delete that file, then run"
              " the command again.",
        "fr": "Un « coordinator init » précédent s'est arrêté avant la fin et a laissé {path}. Supprimez ce fichier,"
              " puis relancez la commande.",
    },
    "enrolled": {"en": "Enrolled {id} ({role}).", "fr": "Inscrit {id} ({role})."},
    "terminal-passphrase": {
        "en": "Passphrase to give this person privately (needed on the kiosk; shown only once):",
        "fr": "Phrase de passe à remettre en privé à cette personne (requise à la borne; affichée une seule fois) :",
    },
    "sent": {"en": "Sent {id}: {status}", "fr": "Envoyé {id} : {status}"},
    "released": {"en": "Released {id} to the recipient.", "fr": "{id} transmis au destinataire."},
    "returned": {"en": "Returned {id} to the sender with your note.", "fr": "{id} retourné à l'expéditeur avec votre note."},
    "withheld": {"en": "Withheld {id} ({reason}).", "fr": "{id} retenu ({reason})."},
    "fetched": {
        "en": "Verified the mediator's release and the content; {n} bytes written to {path}.",
        "fr": "Transmission du médiateur et contenu vérifiés; {n} octets écrits dans {path}.",
    },
    "nothing": {"en": "Nothing here.", "fr": "Rien ici."},
    "verify-failed": {
        "en": "What the relay sent did not verify, so nothing is shown. Tell the coordinator.",
        "fr": "Ce que le relais a envoyé n'a pas pu être vérifié; rien n'est affiché. Avisez le coordonnateur.",
    },
    "unreachable": {
        "en": "The relay at {url} cannot be reached. Check the address and the network, then try again.",
        "fr": "Le relais à {url} est injoignable. Vérifiez l'adresse et le réseau, puis réessayez.",
    },
    "audit-ok": {
        "en": "Audit chain verified: {n} entries; head {head}. Record the head somewhere else to detect removals at the end.",
        "fr": "Chaîne d'audit vérifiée : {n} entrées; tête {head}. Notez la tête ailleurs pour détecter des retraits à la fin.",
    },
    "audit-bad": {
        "en": "Audit chain BROKEN at entry {seq}: {problem}.",
        "fr": "Chaîne d'audit ROMPUE à l'entrée {seq} : {problem}.",
    },
    "audit-anchored": {
        "en": "The chain starts at entry {seq}: earlier entries passed their retention period and were pruned.",
        "fr": "La chaîne commence à l'entrée {seq} : les entrées antérieures ont dépassé leur durée de conservation"
              " et ont été retirées.",
    },
    "audit-exported": {
        "en": "Exported {n} audit entries to {path} ({fmt}). Check it with: relay audit verify-export {path}",
        "fr": "{n} entrées d'audit exportées dans {path} ({fmt}). Vérifiez avec : relay audit verify-export {path}",
    },
    "purge-would": {
        "en": "{n} item(s) would be purged now (nothing was changed).",
        "fr": "{n} élément(s) seraient purgés maintenant (rien n'a été modifié).",
    },
    "posters-written": {
        "en": "{n} poster frame(s) written to {path} (ITEM.jpg each; delete them when the review is done).",
        "fr": "{n} image(s) d'aperçu écrite(s) dans {path} (ÉLÉMENT.jpg chacune; supprimez-les une fois l'examen terminé).",
    },
    "purge-progress": {"en": "Purging: {n} batch(es) done", "fr": "Purge : {n} lot(s) terminé(s)"},
    "purge-done": {
        "en": "Purged {items} item(s) (by rule: {rules}); reclaimed {uploads} abandoned upload(s);"
              " removed {sessions} old session record(s) and {audit} audit entries past their period.",
        "fr": "{items} élément(s) purgé(s) (par règle : {rules}); {uploads} téléversement(s) abandonné(s) récupéré(s);"
              " {sessions} ancien(s) enregistrement(s) de session et {audit} entrées d'audit échues retirés.",
    },
}


def language(explicit: str | None = None) -> str:
    if explicit in ("en", "fr"):
        return explicit
    env = os.environ.get("RELAY_LANG") or os.environ.get("LC_ALL") or os.environ.get("LANG") or ""
    return "fr" if env.lower().startswith("fr") else "en"


def say(key: str, lang: str, **values: object) -> str:
    entry = TEXT[key]
    return (entry.get(lang) or entry["en"]).format(**values)
