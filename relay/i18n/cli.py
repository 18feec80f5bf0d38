"""What the command line says to people, in English and French.

``TEXT`` holds every sentence (``say(key, lang, **values)``); keys are stable. Groups by prefix:
``help.*`` the commands' and options' help, ``col.*`` table headings, ``state.*``, ``hold.*``,
``reason.*``, ``kind.*``, ``role.*``, ``relation.*``, ``status.*`` words for the codes the relay
sends, ``demo.*`` the demo's narration. ``ARGPARSE`` is French for argparse's own messages.
"""

from __future__ import annotations

import os


def _t(en: str, fr: str) -> dict[str, str]:
    return {"en": en, "fr": fr}


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
    },    # -- what went wrong, and what to do ------------------------------------------------------
    "no-profile": _t("There is no profile in {path}. Check --profile, or set this device up first with 'relay"
                     " provision' (provision this device first).",
                     "Il n'y a pas de profil dans {path}. Vérifiez --profile, ou configurez d'abord cet appareil avec"
                     " « relay provision »."),
    "bad-profile": _t("The profile in {path} cannot be read. Set this device up again with 'relay provision'.",
                      "Le profil dans {path} est illisible. Configurez de nouveau cet appareil avec « relay provision »."),
    "no-such-file": _t("There is no file or folder at {path}. Check the name and try again.",
                       "Il n'y a ni fichier ni dossier à {path}. Vérifiez le nom et réessayez."),
    "permission": _t("You may not read or write {path}. Check its permissions, or use another location.",
                     "Vous ne pouvez pas lire ou écrire {path}. Vérifiez ses droits, ou choisissez un autre emplacement."),
    "is-a-directory": _t("{path} is a folder; give a file.", "{path} est un dossier; indiquez un fichier."),
    "not-a-directory": _t("{path} is not a folder; give a folder.", "{path} n'est pas un dossier; indiquez un dossier."),
    "disk-full": _t("The disk is full, so {path} could not be written. Free some space and try again.",
                    "Le disque est plein; {path} n'a pas pu être écrit. Libérez de l'espace et réessayez."),
    "file-problem": _t("{path} could not be used ({reason}). Check it and try again.",
                       "{path} n'a pas pu être utilisé ({reason}). Vérifiez-le et réessayez."),
    "unexpected": _t("Something unexpected went wrong ({kind}); nothing more is shown. Try again; if it happens again,"
                     " run with RELAY_DEBUG=1 and show the output to whoever looks after this computer.",
                     "Une erreur inattendue s'est produite ({kind}); rien de plus n'est affiché. Réessayez; si elle se"
                     " reproduit, relancez avec RELAY_DEBUG=1 et montrez le résultat à la personne responsable de cet"
                     " ordinateur."),
    "insecure": _t("Refusing to talk to {url}: tokens would travel in clear. Use an https:// address (plain http is"
                   " only for the relay on this same machine).",
                   "Refus de communiquer avec {url} : les jetons circuleraient en clair. Utilisez une adresse https://"
                   " (http seulement pour un relais sur cette même machine)."),
    "over-limit": _t("Nothing was sent: the relay does not accept this ({detail}). Send something smaller or shorter.",
                     "Rien n'a été envoyé : le relais n'accepte pas ce contenu ({detail}). Envoyez quelque chose de"
                     " plus petit ou de plus court."),
    "problem-ref": _t("(the relay answered {status} {type})", "(le relais a répondu {status} {type})"),
    "to-yourself": _t("You cannot send an item to yourself; nothing was sent. Give the other participant's id with"
                      " --to, or --to mediators.",
                      "Vous ne pouvez pas vous envoyer un élément; rien n'a été envoyé. Indiquez avec --to l'identifiant"
                      " de l'autre participant, ou --to mediators."),
    "to-mediator": _t("That id is one of the case's mediators; nothing was sent. To write to the mediators, use"
                      " --to mediators.",
                      "Cet identifiant est celui d'un médiateur du dossier; rien n'a été envoyé. Pour écrire aux"
                      " médiateurs, utilisez --to mediators."),
    "to-not-participant": _t("A mediator writes to the case's participants only; {to} is not one. Nothing was sent.",
                             "Un médiateur écrit seulement aux participants du dossier; {to} n'en est pas un. Rien"
                             " n'a été envoyé."),
    "terminal-person": _t("This is a terminal: say who is signing in with --person ID.",
                          "Ceci est une borne : indiquez qui se connecte avec --person IDENTIFIANT."),
    "data-dir-open": _t("The data directory {path} can be read by other users of this machine; the relay will not"
                        " start. Run: chmod 700 {path}",
                        "Le répertoire de données {path} est lisible par d'autres utilisateurs de cette machine; le"
                        " relais ne démarrera pas. Exécutez : chmod 700 {path}"),
    "address-in-use": _t("Something else is already listening on {host}:{port}. Stop it, or choose another --port.",
                         "Un autre programme écoute déjà sur {host}:{port}. Arrêtez-le, ou choisissez un autre --port."),
    "serve-failed": _t("The relay could not start: {reason}", "Le relais n'a pas pu démarrer : {reason}"),
    "first-start": _t("\nNo coordinator is enrolled yet. First coordinator's enrollment code (single use, shown once):"
                      "\n\n    {code}\n\nOn the coordinator's own computer run:\n"
                      "    relay coordinator init --url {url} --profile ~/.relay/coordinator --code {code}\n",
                      "\nAucun coordonnateur n'est encore inscrit. Code d'inscription du premier coordonnateur"
                      " (usage unique, affiché une seule fois) :\n\n    {code}\n\nSur l'ordinateur du coordonnateur,"
                      " exécutez :\n    relay coordinator init --url {url} --profile ~/.relay/coordinator"
                      " --code {code}\n"),
    "proxy-address": _t("https://ADDRESS-OF-THE-TLS-PROXY-IN-FRONT-OF-{host}:{port}",
                        "https://ADRESSE-DU-MANDATAIRE-TLS-DEVANT-{host}:{port}"),
    "out-needed": _t("--out FILE is needed.", "--out FICHIER est requis."),
    "export-file-needed": _t("Name the export to check.", "Indiquez l'export à vérifier."),
    "hold-needed": _t("Say --on or --off.", "Indiquez --on ou --off."),
    "retention-needed": _t("--rule and --days (a number, or 'default') are needed.",
                           "--rule et --days (un nombre, ou « default ») sont requis."),
    "not-days": _t("{text!r} is not a number of days.", "{text!r} n'est pas un nombre de jours."),
    "keys-needed": _t("Give --keys FILE (from 'relay keygen') or --generate-keys.",
                      "Indiquez --keys FICHIER (de « relay keygen ») ou --generate-keys."),
    "item-needed": _t("Name the item (its id, itm_…).", "Indiquez l'élément (son identifiant, itm_…)."),
    "needed": _t("{what} is needed for this.", "{what} est requis pour cela."),
    # -- devices and profiles
    "bad-device-file": _t("{path} is not a device file from 'relay coordinator device add'. Ask the coordinator for"
                          " the file again.",
                          "{path} n'est pas un fichier d'appareil produit par « relay coordinator device add »."
                          " Redemandez le fichier au coordonnateur."),
    "device-other-person": _t("This device file is for {person}, but the keys in {path} belong to someone else."
                              " Nothing was changed: use the profile where that person ran 'relay keygen'.",
                              "Ce fichier d'appareil est pour {person}, mais les clés de {path} appartiennent à"
                              " quelqu'un d'autre. Rien n'a été modifié : utilisez le profil où cette personne a"
                              " exécuté « relay keygen »."),
    "device-profile-other": _t("{path} is already set up for {other}; this device file is for {person}. Nothing was"
                               " changed: use another --profile.",
                               "{path} est déjà configuré pour {other}; ce fichier d'appareil est pour {person}."
                               " Rien n'a été modifié : utilisez un autre --profile."),
    "device-terminal-keys": _t("This is a terminal's device file, but {path} holds a person's key. Nothing was"
                               " changed: set the terminal up in a profile of its own.",
                               "Ceci est le fichier d'appareil d'une borne, mais {path} contient la clé d'une"
                               " personne. Rien n'a été modifié : configurez la borne dans un profil distinct."),
    "device-needs-keys": _t("{path} holds no key yet. Run 'relay keygen --profile {path}' there first (the"
                            " coordinator enrolls those keys), then provision it.",
                            "{path} ne contient pas encore de clé. Exécutez d'abord « relay keygen --profile {path} »"
                            " (le coordonnateur inscrit ces clés), puis configurez l'appareil."),
    # -- reading and writing content
    "fetched-release": _t("Verified the mediator's release and the content; {size} written to {path}.",
                          "Transmission du médiateur et contenu vérifiés; {size} écrits dans {path}."),
    "fetched-original": _t("Verified the sender's signature and the content; {size} written to {path}.",
                           "Signature de l'expéditeur et contenu vérifiés; {size} écrits dans {path}."),
    "fetched-note": _t("Verified the mediator's note; {size} written to {path}.",
                       "Note du médiateur vérifiée; {size} écrits dans {path}."),
    "binary-to-terminal": _t("This item is not text ({type}, {size}); it is not written to the terminal. Give --out"
                             " FILE, or redirect the output to a file.",
                             "Cet élément n'est pas du texte ({type}, {size}); il n'est pas écrit dans le terminal."
                             " Indiquez --out FICHIER, ou redirigez la sortie vers un fichier."),
    "hidden-chars": _t("Warning: this letter contains {n} hidden or control character(s), shown above as ⟦…⟧ marks."
                       " The recipient would receive them as written. --out FILE writes the exact bytes.",
                       "Attention : cette lettre contient {n} caractère(s) caché(s) ou de contrôle, indiqué(s)"
                       " ci-dessus par des marques ⟦…⟧. Le destinataire les recevrait tels quels. --out FICHIER écrit"
                       " les octets exacts."),
    "marked-read": _t("Marked {id} as read.", "{id} marqué comme lu."),
    # -- the outbox
    "resume-failed": _t("Not sent {id}: {reason}. It stays in the outbox: fix the cause and run 'relay resume' again,"
                        " or remove it with 'relay resume --drop {id}'.",
                        "Non envoyé {id} : {reason}. Il reste dans la boîte d'envoi : corrigez la cause et relancez"
                        " « relay resume », ou retirez-le avec « relay resume --drop {id} »."),
    "resume-already": _t("Sent {id} (the relay had it already).", "Envoyé {id} (le relais l'avait déjà)."),
    "resume-dropped": _t("Removed {id} from the outbox; it will not be sent. An upload the relay started for it"
                         " expires by itself.",
                         "{id} retiré de la boîte d'envoi; il ne sera pas envoyé. Un envoi commencé sur le relais"
                         " expirera de lui-même."),
    "resume-no-entry": _t("There is no unsent item {id} in this outbox. 'relay resume' without --drop lists and"
                          " retries what is there.",
                          "Il n'y a pas d'élément non envoyé {id} dans cette boîte d'envoi. « relay resume » sans"
                          " --drop liste et réessaie ce qui s'y trouve."),
    # -- how things are shown
    "yes": _t("yes", "oui"),
    "no": _t("no", "non"),
    "just-now": _t("just now", "à l'instant"),
    "age.minute": _t("{n} minute", "{n} minute"), "age.minutes": _t("{n} minutes", "{n} minutes"),
    "age.hour": _t("{n} hour", "{n} heure"), "age.hours": _t("{n} hours", "{n} heures"),
    "age.day": _t("{n} day", "{n} jour"), "age.days": _t("{n} days", "{n} jours"),
    "size.bytes": _t("{n} bytes", "{n} octets"), "size.kb": _t("{n} KB", "{n} ko"),
    "size.mb": _t("{n} MB", "{n} Mo"), "size.gb": _t("{n} GB", "{n} Go"),
    "flag.awaiting-approval": _t("awaiting the national unit's approval", "en attente de l'approbation de l'unité"
                                 " nationale"),
    "flag.poster": _t("poster frame", "image d'aperçu"),
    "to-mediators": _t("the mediators", "les médiateurs"),
    "someone": _t("someone not in this case", "une personne hors du dossier"),
    # table headings
    "col.id": _t("Id", "Identifiant"), "col.name": _t("Name", "Nom"), "col.created": _t("Created", "Créé le"),
    "col.role": _t("Role", "Rôle"), "col.relation": _t("Relation", "Lien"), "col.label": _t("Label", "Libellé"),
    "col.institution": _t("Institution", "Établissement"), "col.status": _t("Status", "État"),
    "col.kind": _t("Kind", "Type"), "col.person": _t("Person", "Personne"), "col.case": _t("Case", "Dossier"),
    "col.from": _t("From", "De"), "col.to": _t("To", "À"), "col.state": _t("State", "État"),
    "col.reason": _t("Reason", "Motif"), "col.hold": _t("Held because", "Retenu parce que"),
    "col.opened": _t("First opened", "Première ouverture"), "col.rule": _t("Rule", "Règle"),
    "col.due": _t("Due", "Échéance"), "col.reference": _t("Reference", "Référence"),
    "col.restricted": _t("Restricted", "Personne visée"), "col.direction": _t("Direction", "Sens"),
    "col.exception": _t("Program exception", "Exception du programme"), "col.until": _t("Until", "Jusqu'au"),
    "col.lifted": _t("Lifted", "Levée le"), "col.version": _t("Version", "Version"),
    "col.condition": _t("Condition", "Condition"), "col.directions": _t("Directions", "Sens"),
    "col.kinds": _t("Kinds", "Types"), "col.approved": _t("Approved", "Approuvée le"),
    "col.revoked": _t("Revoked", "Révoquée le"), "col.sent": _t("Sent", "Envoyé"),
    "col.waiting": _t("Waiting", "En attente depuis"), "col.size": _t("Size", "Taille"),
    "col.flags": _t("Notes", "Remarques"), "col.released": _t("Released", "Transmis"),
    # words for the codes the relay sends
    "state.uploading": _t("being sent", "en cours d'envoi"),
    "state.pending_review": _t("awaiting review", "en attente d'examen"),
    "state.released": _t("released, not yet opened", "transmis, pas encore ouvert"),
    "state.delivered": _t("opened by the recipient", "ouvert par le destinataire"),
    "state.returned": _t("returned to the sender", "retourné à l'expéditeur"),
    "state.withheld": _t("withheld", "retenu"),
    "state.held": _t("on hold", "en suspens"),
    "state.expired": _t("expired", "expiré"), "state.purged": _t("purged", "purgé"),
    "hold.condition-requires-approval": _t("a no-contact condition: awaiting the national unit's approval",
                                           "une condition de non-communication : en attente de l'approbation de"
                                           " l'unité nationale"),
    "hold.case-paused": _t("the case is paused", "le dossier est suspendu"),
    "hold.consent-withdrawn": _t("a participant withdrew", "un participant s'est retiré"),
    "kind.letter": _t("letter", "lettre"), "kind.video": _t("video", "vidéo"),
    "role.coordinator": _t("coordinator", "coordonnateur"), "role.mediator": _t("mediator", "médiateur"),
    "role.participant": _t("participant", "participant"),
    "relation.victim": _t("victim", "victime"),
    "relation.victim_representative": _t("victim's representative", "représentant de la victime"),
    "relation.victim_family": _t("victim's family", "famille de la victime"),
    "relation.offender_family": _t("offender's family", "famille du délinquant"),
    "relation.offender": _t("offender", "délinquant"),
    "status.active": _t("active", "actif"), "status.revoked": _t("revoked", "révoqué"),
    "status.open": _t("open", "ouvert"), "status.paused": _t("paused", "suspendu"),
    "status.closed": _t("closed", "fermé"),
    "device.participant_device": _t("participant's device", "appareil de participant"),
    "device.mediator_desk": _t("mediator's desk", "poste de médiateur"),
    "device.terminal": _t("institution terminal", "borne d'établissement"),
    "device.coordinator_console": _t("coordinator's console", "console du coordonnateur"),
    # reasons a mediator withholds an item (relay.wire.WITHHOLD_REASONS)
    # -- help texts
    "help.description": _t("Mediation relay: letters and video messages between the people in a restorative-justice"
                           " case, always reviewed by their mediator.",
                           "Relais de médiation : lettres et messages vidéo entre les personnes d'un dossier de"
                           " justice réparatrice, toujours examinés par leur médiateur."),
    "help.lang": _t("language of messages: en or fr (default: RELAY_LANG or LANG); works anywhere on the line",
                    "langue des messages : en ou fr (par défaut : RELAY_LANG ou LANG); acceptée n'importe où dans la"
                    " ligne"),
    "help.commands": _t("commands", "commandes"),
    "help.actions": _t("actions", "actions"),
    "help.profile": _t("this device's profile directory", "le répertoire du profil de cet appareil"),
    "help.person": _t("on a terminal: the participant signing in", "sur une borne : le participant qui se connecte"),
    "help.serve": _t("run the relay", "faire fonctionner le relais"),
    "help.serve.data-dir": _t("where the relay keeps its data (default: ./relay-data, or RELAY_DATA_DIR)",
                              "où le relais garde ses données (par défaut : ./relay-data, ou RELAY_DATA_DIR)"),
    "help.serve.host": _t("address to listen on (default: 127.0.0.1)", "adresse d'écoute (par défaut : 127.0.0.1)"),
    "help.serve.port": _t("port to listen on (default: 8787)", "port d'écoute (par défaut : 8787)"),
    "help.retention": _t("the retention schedule (TOML); default: the documented defaults",
                         "le calendrier de conservation (TOML); par défaut : les valeurs documentées"),
    "help.purge-interval": _t("seconds between purge runs inside the relay (0: never; run 'relay purge' instead)",
                              "secondes entre deux purges dans le relais (0 : jamais; utilisez « relay purge »)"),
    "help.purge-duty": _t("the share of time a purge run may work (0 to 1); it rests the remainder, for requests",
                          "la part du temps qu'une purge peut occuper (0 à 1); le reste est laissé aux demandes"),
    "help.demo": _t("a whole exchange on a throwaway relay, step by step",
                    "un échange complet sur un relais jetable, étape par étape"),
    "help.demo.url": _t("use this (freshly started) relay instead of starting one",
                        "utiliser ce relais (fraîchement démarré) au lieu d'en démarrer un"),
    "help.demo.code": _t("with --url: the first-start enrollment code it printed",
                         "avec --url : le code d'inscription qu'il a affiché au premier démarrage"),
    "help.demo.letter": _t("send this letter instead of the built-in one", "envoyer cette lettre au lieu de celle"
                           " fournie"),
    "help.demo.data-dir": _t("keep the relay's data directory here", "garder ici le répertoire de données du relais"),
    "help.demo.out": _t("write exactly what the recipient received here", "écrire ici exactement ce que le"
                        " destinataire a reçu"),
    "help.demo.video": _t("also send this video message, sanitized at the mediator's desk",
                          "envoyer aussi ce message vidéo, assaini au poste du médiateur"),
    "help.audit": _t("verify or export the audit chain of a data directory, or check an export",
                     "vérifier ou exporter la chaîne d'audit d'un répertoire de données, ou vérifier un export"),
    "help.audit.file": _t("with verify-export: the exported file", "avec verify-export : le fichier exporté"),
    "help.audit.out": _t("with export: where to write it", "avec export : où l'écrire"),
    "help.audit.format": _t("with export: JSON lines or CSV (auto: from the file name)",
                            "avec export : lignes JSON ou CSV (auto : d'après le nom du fichier)"),
    "help.audit.expect-head": _t("a head recorded earlier: detects entries removed from the end",
                                 "une tête notée plus tôt : détecte des entrées retirées à la fin"),
    "help.purge": _t("purge now what the retention schedule says is due (--dry-run: list it)",
                     "purger maintenant ce que le calendrier de conservation dit être échu (--dry-run : le lister)"),
    "help.purge.dry-run": _t("list what would go and why; change nothing", "lister ce qui partirait et pourquoi; ne"
                             " rien changer"),
    "help.purge.limit": _t("at most this many items", "au plus ce nombre d'éléments"),
    "help.desk": _t("the mediator's desk, in this computer's browser", "le poste du médiateur, dans le navigateur de"
                    " cet ordinateur"),
    "help.kiosk": _t("an institution's kiosk, for the participant in front of it", "la borne d'un établissement,"
                     " pour le participant qui s'y trouve"),
    "help.app": _t("a participant's own app, in this computer's browser", "l'application d'un participant, dans le"
                   " navigateur de cet ordinateur"),
    "help.web.port": _t("port on 127.0.0.1 (default: any free one)", "port sur 127.0.0.1 (par défaut : un port libre)"),
    "help.web.idle": _t("sign out after this many minutes without activity", "déconnecter après ce nombre de minutes"
                        " d'inactivité"),
    "help.web.no-browser": _t("only print the link; do not open a browser", "afficher le lien seulement; ne pas"
                              " ouvrir de navigateur"),
    "web.link": _t("Open this link in this computer's browser (it works once; keep it private):\n\n    {link}\n",
                   "Ouvrez ce lien dans le navigateur de cet ordinateur (il ne sert qu'une fois; gardez-le"
                   " privé) :\n\n    {link}\n"),
    "web.wrong-device": _t("This profile is for a {actual} device; relay {kind} needs a {expected} profile.",
                           "Ce profil est celui d'un appareil {actual}; relay {kind} demande un profil {expected}."),
    "help.scrub": _t("recheck every stored blob against its signed size and hash; mark and report damage",
                     "revérifier chaque fichier conservé contre sa taille et son empreinte signées; marquer et"
                     " signaler les dommages"),
    "help.keygen": _t("make your keys on this device", "créer vos clés sur cet appareil"),
    "help.keygen.out": _t("where to write the public keys (default: PROFILE/public-keys.json)",
                          "où écrire les clés publiques (par défaut : PROFIL/public-keys.json)"),
    "help.provision": _t("set this device up from the file the coordinator gave",
                         "configurer cet appareil avec le fichier remis par le coordonnateur"),
    "help.provision.file": _t("the device file", "le fichier d'appareil"),
    "help.coordinator": _t("the national unit's console", "la console de l'unité nationale"),
    "help.coordinator.init": _t("enroll the first coordinator with the first-start code",
                                "inscrire le premier coordonnateur avec le code du premier démarrage"),
    "help.init.url": _t("the relay's address", "l'adresse du relais"),
    "help.init.code": _t("the code the relay printed at its first start", "le code affiché par le relais au premier"
                         " démarrage"),
    "help.init.label": _t("how the coordinator is named to others", "comment le coordonnateur est nommé aux autres"),
    "help.init.device-label": _t("a name for this console", "un nom pour cette console"),
    "help.coordinator.institution": _t("institutions (add, list)", "établissements (ajouter, lister)"),
    "help.institution.name": _t("with add: the institution's name", "avec add : le nom de l'établissement"),
    "help.coordinator.person": _t("people (add, list, revoke)", "personnes (ajouter, lister, révoquer)"),
    "help.person.id": _t("with revoke: the person's id", "avec revoke : l'identifiant de la personne"),
    "help.person.label": _t("how the person is named to others", "comment la personne est nommée aux autres"),
    "help.person.role": _t("their role", "son rôle"),
    "help.person.relation": _t("a participant's relation to the offence", "le lien d'un participant avec"
                               " l'infraction"),
    "help.person.institution": _t("the institution where they use a terminal", "l'établissement où la personne"
                                  " utilise une borne"),
    "help.person.keys": _t("public keys from 'relay keygen' on the person's own device",
                           "les clés publiques de « relay keygen » sur l'appareil de la personne"),
    "help.person.key-bundle": _t("with --keys: the sealed identity.key the person made with 'relay keygen' (terminal"
                                 " users)",
                                 "avec --keys : le fichier identity.key scellé que la personne a créé avec « relay"
                                 " keygen » (utilisateurs de borne)"),
    "help.person.generate-keys": _t("for terminal users, when they cannot run keygen themselves: the key is made on"
                                    " this console (so its operator could read their mail); prefer --keys with"
                                    " --key-bundle",
                                    "pour les utilisateurs de borne qui ne peuvent pas exécuter keygen : la clé est"
                                    " créée sur cette console (son opérateur pourrait donc lire leur courrier);"
                                    " préférez --keys avec --key-bundle"),
    "help.coordinator.device": _t("devices (add, list, revoke)", "appareils (ajouter, lister, révoquer)"),
    "help.device.id": _t("with revoke: the device's id", "avec revoke : l'identifiant de l'appareil"),
    "help.device.kind": _t("what kind of device", "le type d'appareil"),
    "help.device.label": _t("a name for the device", "un nom pour l'appareil"),
    "help.device.person": _t("whose device it is (not for a terminal)", "à qui appartient l'appareil (pas pour une"
                             " borne)"),
    "help.device.institution": _t("a terminal's institution", "l'établissement d'une borne"),
    "help.device.out": _t("the device file to hand over", "le fichier d'appareil à remettre"),
    "help.coordinator.case": _t("cases: open, list, show, items, participants, mediators, consent, status, holds,"
                                " retention, erasure",
                                "dossiers : ouvrir, lister, afficher, éléments, participants, médiateurs,"
                                " consentement, état, conservation légale, conservation, effacement"),
    "help.case.id": _t("the case id", "l'identifiant du dossier"),
    "help.case.referral": _t("who referred the case: victim, institutional or community",
                             "qui a renvoyé le dossier : victim, institutional ou community"),
    "help.case.institution": _t("the institution of the case", "l'établissement du dossier"),
    "help.case.person": _t("the person concerned", "la personne concernée"),
    "help.case.consent": _t("with consent: given or withdrawn", "avec consent : given (donné) ou withdrawn (retiré)"),
    "help.case.status": _t("with status: open, paused or closed", "avec status : open, paused ou closed"),
    "help.case.on": _t("with legal-hold: set it", "avec legal-hold : l'imposer"),
    "help.case.off": _t("with legal-hold: lift it", "avec legal-hold : la lever"),
    "help.case.rule": _t("with retention: which rule of the schedule", "avec retention : quelle règle du calendrier"),
    "help.case.days": _t("with retention: this case's length in days, or 'default'",
                         "avec retention : la durée pour ce dossier en jours, ou « default »"),
    "help.coordinator.retention": _t("what retention keeps and has purged; what is due now",
                                     "ce que la conservation garde et a purgé; ce qui est échu maintenant"),
    "help.coordinator.condition": _t("no-contact conditions (court orders, parole, institutional)",
                                     "conditions de non-communication (ordonnances, libération conditionnelle,"
                                     " établissement)"),
    "help.condition.id": _t("the condition id (amend, lift, show)", "l'identifiant de la condition (amend, lift,"
                            " show)"),
    "help.condition.kind": _t("what imposes it", "ce qui l'impose"),
    "help.condition.reference": _t("the order's or condition's reference", "la référence de l'ordonnance ou de la"
                                   " condition"),
    "help.condition.restricted": _t("the person the condition restricts", "la personne visée par la condition"),
    "help.condition.protect": _t("a protected person (repeat as needed)", "une personne protégée (à répéter au"
                                 " besoin)"),
    "help.condition.protect-case": _t("with --protect-side: everyone on one side of this case",
                                      "avec --protect-side : toutes les personnes d'un côté de ce dossier"),
    "help.condition.protect-side": _t("the protected side of --protect-case", "le côté protégé de --protect-case"),
    "help.condition.direction": _t("which messages it bars", "quels messages elle interdit"),
    "help.condition.start": _t("effective from (2026-11-21T00:00:00Z)", "en vigueur à partir du"
                               " (2026-11-21T00:00:00Z)"),
    "help.condition.end": _t("effective until, if it ends", "en vigueur jusqu'au, si elle prend fin"),
    "help.condition.program-exception": _t("the condition carries 'unless deemed appropriate and facilitated by"
                                           " CSC's Restorative Opportunities Program'",
                                           "la condition porte « à moins que ce soit jugé approprié et facilité par"
                                           " le programme Possibilités de justice réparatrice du SCC »"),
    "help.coordinator.approval": _t("the national unit's approvals under a condition",
                                    "les approbations de l'unité nationale sous une condition"),
    "help.approval.id": _t("the approval id (revoke)", "l'identifiant de l'approbation (revoke)"),
    "help.approval.case": _t("the case it is for", "le dossier concerné"),
    "help.approval.condition": _t("the condition it is under", "la condition concernée"),
    "help.approval.direction": _t("which direction it allows (repeat for both)", "quel sens elle permet (à répéter"
                                  " pour les deux)"),
    "help.approval.kind": _t("which kind of item it allows (repeat for both)", "quel type d'élément elle permet"
                             " (à répéter pour les deux)"),
    "help.approval.until": _t("valid until (2027-05-01T00:00:00Z)", "valide jusqu'au (2027-05-01T00:00:00Z)"),
    "help.send": _t("seal and send a letter or a video", "sceller et envoyer une lettre ou une vidéo"),
    "help.send.file": _t("the letter or video to send", "la lettre ou la vidéo à envoyer"),
    "help.send.case": _t("the case", "le dossier"),
    "help.send.to": _t("the other participant's id, or 'mediators'", "l'identifiant de l'autre participant, ou"
                       " « mediators »"),
    "help.send.kind": _t("default: video for .mp4/.mov/.webm/.mkv files", "par défaut : video pour les fichiers"
                         " .mp4/.mov/.webm/.mkv"),
    "help.send.content-type": _t("default: guessed from the file name", "par défaut : d'après le nom du fichier"),
    "help.send.shrink": _t("a video: re-encode it here first (smaller; location and device tags never leave this"
                           " device)",
                           "une vidéo : la réencoder ici d'abord (plus petite; les étiquettes de lieu et d'appareil"
                           " ne quittent jamais cet appareil)"),
    "help.resume": _t("finish sends a lost connection or a restart interrupted",
                      "terminer les envois interrompus par une connexion perdue ou un redémarrage"),
    "help.resume.drop": _t("remove this unsent item from the outbox instead (it will not be sent)",
                           "retirer plutôt cet élément non envoyé de la boîte d'envoi (il ne sera pas envoyé)"),
    "help.sent": _t("what you sent and where it is", "ce que vous avez envoyé et où il en est"),
    "help.inbox": _t("items released to you", "les éléments qui vous ont été transmis"),
    "help.fetch": _t("verify and open a released item", "vérifier et ouvrir un élément transmis"),
    "help.note": _t("read the mediator's note on a returned item", "lire la note du médiateur sur un élément"
                    " retourné"),
    "help.item": _t("the item's id (itm_…)", "l'identifiant de l'élément (itm_…)"),
    "help.out": _t("write the exact bytes here instead of showing them", "écrire ici les octets exacts au lieu de"
                   " les afficher"),
    "help.review": _t("the mediator's desk", "le poste du médiateur"),
    "help.review.action": _t("queue: what waits for review; inbox: letters to the mediators; open: read an item;"
                             " release, return, withhold: decide; read: read a letter to the mediators and mark it"
                             " read; write: write to a participant",
                             "queue : ce qui attend l'examen; inbox : lettres aux médiateurs; open : lire un élément;"
                             " release, return, withhold : décider; read : lire une lettre aux médiateurs et la"
                             " marquer lue; write : écrire à un participant"),
    "help.review.rendition": _t("release this edited version instead of the letter as written",
                                "transmettre cette version modifiée au lieu de la lettre telle qu'écrite"),
    "help.review.note": _t("the note to the sender, with return", "la note à l'expéditeur, avec return"),
    "help.review.reason": _t("with withhold: why (one of the codes below)", "avec withhold : pourquoi (un des codes"
                             " ci-dessous)"),
    "help.review.reasons": _t("Reasons for withhold:", "Motifs pour withhold :"),
    "help.review.case": _t("with write: the case", "avec write : le dossier"),
    "help.review.to": _t("with write: the participant", "avec write : le participant"),
    "help.review.file": _t("with write: the letter", "avec write : la lettre"),
    "help.review.posters": _t("with queue: write each video's poster frame here as ITEM.jpg",
                              "avec queue : écrire ici l'image d'aperçu de chaque vidéo, ÉLÉMENT.jpg"),
    # -- the demo's narration
    "demo.start": _t("Starting a relay on loopback with its data in {path}",
                     "Démarrage d'un relais en boucle locale, données dans {path}"),
    "demo.listening": _t("relay listening at {url}", "relais à l'écoute à {url}"),
    "demo.has-coordinator": _t("{path} already has a coordinator; give an empty --data-dir",
                               "{path} a déjà un coordonnateur; indiquez un --data-dir vide"),
    "demo.url-needs-code": _t("--url needs --code, the enrollment code that relay printed at its first start",
                              "--url demande --code, le code d'inscription affiché par ce relais à son premier"
                              " démarrage"),
    "demo.failed": _t("DEMO FAILED: {reason}", "ÉCHEC DE LA DÉMONSTRATION : {reason}"),
    "demo.worked": _t("The whole exchange worked.", "L'échange complet a fonctionné."),
    "demo.1": _t("The coordinator (national unit) sets up the case", "Le coordonnateur (unité nationale) crée le"
                 " dossier"),
    "demo.1.coordinator": _t("coordinator enrolled with the first-start code; trust root {root}…",
                             "coordonnateur inscrit avec le code du premier démarrage; racine de confiance {root}…"),
    "demo.1.people": _t("institution, mediator, victim and offender enrolled; a terminal approved at the institution",
                        "établissement, médiateur, victime et délinquant inscrits; une borne approuvée à"
                        " l'établissement"),
    "demo.1.case": _t("case {id} opened on a victim referral; both participants added; mediator assigned",
                      "dossier {id} ouvert sur renvoi d'une victime; les deux participants ajoutés; médiateur"
                      " assigné"),
    "demo.2": _t("The victim seals a letter on their own device and sends it to the offender",
                 "La victime scelle une lettre sur son propre appareil et l'envoie au délinquant"),
    "demo.2.sent": _t("item {id}: {status}", "élément {id} : {status}"),
    "demo.2.keys": _t("the content key is sealed to the mediator and the victim only, not to the offender",
                      "la clé du contenu est scellée pour le médiateur et la victime seulement, pas pour le"
                      " délinquant"),
    "demo.3": _t("At the institution's terminal, the offender unlocks their key and checks the inbox: nothing yet",
                 "À la borne de l'établissement, le délinquant déverrouille sa clé et consulte sa boîte : rien"
                 " encore"),
    "demo.3.refused": _t("inbox empty; asking for the item directly gets {status} ({type})",
                         "boîte vide; demander l'élément directement donne {status} ({type})"),
    "demo.4": _t("The mediator opens the letter at the desk, verifies the victim's signature, and reviews it",
                 "Le médiateur ouvre la lettre à son poste, vérifie la signature de la victime et l'examine"),
    "demo.4.queue": _t("review queue: {items}", "file d'examen : {items}"),
    "demo.4.redact": _t("the letter names where the family lives now: the mediator redacts that line",
                        "la lettre indique où vit maintenant la famille : le médiateur retire cette ligne"),
    "demo.4.as-written": _t("the mediator releases the letter as written",
                            "le médiateur transmet la lettre telle qu'écrite"),
    "demo.4.released": _t("released: re-encrypted under a fresh key, sealed to the offender, release signed by the"
                          " mediator",
                          "transmise : rechiffrée sous une nouvelle clé, scellée pour le délinquant, transmission"
                          " signée par le médiateur"),
    "demo.5": _t("The offender fetches it at the terminal: release signature and hashes verified, decrypted in memory",
                 "Le délinquant la récupère à la borne : signature de transmission et empreintes vérifiées,"
                 " déchiffrée en mémoire"),
    "demo.5.hidden": _t("{n} hidden character(s) shown as ⟦…⟧ marks", "{n} caractère(s) caché(s) indiqué(s) par"
                        " des marques ⟦…⟧"),
    "demo.5.saved": _t("what the recipient received is in {path}", "ce que le destinataire a reçu est dans {path}"),
    "demo.6": _t("The victim sees that the letter was opened", "La victime voit que la lettre a été ouverte"),
    "demo.6.opened": _t("{status}: first opened {when}", "{status} : première ouverture {when}"),
    "demo.61": _t("The victim seals a video message ({name}) and uploads it resumably",
                  "La victime scelle un message vidéo ({name}) et l'envoie de façon reprenable"),
    "demo.62": _t("The mediator watches it at the desk, then sanitizes it: re-encoded to H.264/AAC at most 720p,"
                  " every tag (location, device, creation time), chapter and extra track stripped",
                  "Le médiateur la regarde à son poste, puis l'assainit : réencodée en H.264/AAC, 720p au plus,"
                  " chaque étiquette (lieu, appareil, date de création), chapitre et piste supplémentaire retirés"),
    "demo.62.progress": _t("sanitizing: {done:5.1f} of {total:.1f} s", "assainissement : {done:5.1f} sur {total:.1f} s"),
    "demo.62.released": _t("released: only the sanitized rendition is sealed to the offender; the original stays the"
                           " record",
                           "transmise : seule la version assainie est scellée pour le délinquant; l'original reste"
                           " au dossier"),
    "demo.63": _t("The terminal fetches and verifies the video, streaming it to a file",
                  "La borne récupère et vérifie la vidéo, en l'écrivant au fil de l'eau dans un fichier"),
    "demo.63.delivered": _t("delivered: {w}x{h} H.264/AAC MP4, {size}, no location or device tags",
                            "remise : MP4 H.264/AAC {w}x{h}, {size}, sans étiquette de lieu ni d'appareil"),
    "demo.63.saved": _t("the delivered rendition is in {path}", "la version remise est dans {path}"),
    "demo.7": _t("The relay never held the letter in plaintext", "Le relais n'a jamais détenu la lettre en clair"),
    "demo.7.clean": _t("no file under {path} contains the letter's text", "aucun fichier sous {path} ne contient le"
                       " texte de la lettre"),
    "demo.8": _t("The audit chain records what happened, never what was said, and verifies",
                 "La chaîne d'audit consigne ce qui s'est passé, jamais ce qui a été dit, et se vérifie"),
    "demo.8.ok": _t("{n} entries, head {head}…; actions: {actions}", "{n} entrées, tête {head}…; actions : {actions}"),
}

# argparse's own messages (Python 3.11's msgids), for French. Keys are argparse's English text.
ARGPARSE: dict[str, str] = {
    "usage: ": "utilisation : ",
    "positional arguments": "arguments positionnels",
    "options": "options",
    "show this help message and exit": "afficher cette aide et quitter",
    "commands": "commandes",
    "%(prog)s: error: %(message)s\n": "%(prog)s : erreur : %(message)s\n",
    "argument %(argument_name)s: %(message)s": "argument %(argument_name)s : %(message)s",
    "the following arguments are required: %s": "les arguments suivants sont requis : %s",
    "unrecognized arguments: %s": "arguments non reconnus : %s",
    "invalid choice: %(value)r (choose from %(choices)s)": "choix invalide : %(value)r (choisissez parmi"
                                                           " %(choices)s)",
    "invalid %(type)s value: %(value)r": "valeur %(type)s invalide : %(value)r",
    "expected one argument": "un argument attendu",
    "expected at most one argument": "au plus un argument attendu",
    "expected at least one argument": "au moins un argument attendu",
    "expected %s argument": "%s argument attendu",
    "expected %s arguments": "%s arguments attendus",
    "not allowed with argument %s": "non permis avec l'argument %s",
    "one of the arguments %s is required": "l'un des arguments %s est requis",
    "ambiguous option: %(option)s could match %(matches)s": "option ambiguë : %(option)s pourrait correspondre à"
                                                             " %(matches)s",
    "ignored explicit argument %r": "argument explicite ignoré %r",
    "unexpected option string: %s": "option inattendue : %s",
    "can't open '%(filename)s': %(error)s": "impossible d'ouvrir « %(filename)s » : %(error)s",
}


def language(explicit: str | None = None) -> str:
    if explicit in ("en", "fr"):
        return explicit
    env = os.environ.get("RELAY_LANG") or os.environ.get("LC_ALL") or os.environ.get("LANG") or ""
    return "fr" if env.lower().startswith("fr") else "en"


def say(key: str, lang: str, **values: object) -> str:
    entry = TEXT[key]
    return (entry.get(lang) or entry["en"]).format(**values)
