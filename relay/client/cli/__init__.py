"""The ``relay`` command: run the server, and act as coordinator, participant, mediator or terminal.

One module per command group, each registering its own parser: ``server`` (serve, demo, audit,
purge), ``keys`` (keygen, provision), ``coordinator``, ``sending`` (send, resume, sent),
``receiving`` (inbox, fetch, note) and ``review`` (the mediator's desk); ``entry`` builds the
parser from them and turns every expected failure into one sentence in the person's language.

Every person-facing command logs in afresh (challenge signed with the person's key), does its
work, and signs out; the unlocked key lives only in this process. Passphrases come from
``RELAY_PASSPHRASE`` or a prompt; tokens and keys are never printed except the one-time
secrets a person must hand over (a new device's file, a generated passphrase).
"""

from relay.client.cli.entry import GROUPS, main, parser

__all__ = ["GROUPS", "main", "parser"]
