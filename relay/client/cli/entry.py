"""The ``relay`` command's entry point: the parser built from each command group, ``--lang``
anywhere on the line, and the one place where an expected failure becomes one sentence in the
person's language and a non-zero exit (no traceback reaches a person; ``RELAY_DEBUG=1`` shows one).

Adding a command group is one line in ``GROUPS``: a module with ``register(subparsers, lang)``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import inspect
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import ModuleType

import aiohttp

from media import MediaError
from relay.client.cli import coordinator, keys, receiving, review, sending, server
from relay.client.cli.common import CliError, subcommands
from relay.client.profile import BadProfile, NoProfile
from relay.client.sdk import InsecureTransport, InvalidRecipient, OverLimit, ProblemError, VerificationError
from relay.client.web import command as web_command
from relay.i18n.catalogs import translation
from relay.i18n.cli import ARGPARSE, language, say

# Each group registers its own commands. The order is the order of `relay --help`.
GROUPS: tuple[ModuleType, ...] = (
    server,  # serve, demo, audit, purge
    keys,  # keygen, provision
    coordinator,  # coordinator init|institution|person|device|case|retention|condition|approval
    sending,  # send, resume, sent
    receiving,  # inbox, fetch, note
    review,  # review queue|inbox|open|release|return|withhold|read|write
    web_command,  # desk, kiosk, app: the local web interfaces
)


def parser(lang: str | None = None) -> argparse.ArgumentParser:
    lang = language(lang)
    with argparse_language(lang):
        top = argparse.ArgumentParser(prog="relay", description=say("help.description", lang))
        top.add_argument("--lang", choices=["en", "fr"], default=None, help=say("help.lang", lang))
        sub = subcommands(top, "command", lang)
        for group in GROUPS:
            group.register(sub, lang)
    return top


@contextlib.contextmanager
def argparse_language(lang: str) -> Iterator[None]:
    """argparse's own words ('usage:', 'the following arguments are required') in ``lang``.
    argparse looks them up through its module's gettext functions at the moment it needs them."""
    if lang == "en":
        yield
        return
    saved = argparse._, argparse.ngettext  # type: ignore[attr-defined]

    def gettext(message: str) -> str:
        return translation(lang).gettext(message) if message in ARGPARSE else message

    def ngettext(singular: str, plural: str, n: int) -> str:
        return gettext(singular if n == 1 else plural)

    argparse._, argparse.ngettext = gettext, ngettext  # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._, argparse.ngettext = saved  # type: ignore[attr-defined]


def requested_language(argv: Sequence[str]) -> str:
    """``--lang`` from anywhere on the line (before ``--``), else RELAY_LANG, LC_ALL, LANG."""
    explicit = None
    for index, word in enumerate(argv):
        if word == "--":
            break
        if word == "--lang" and index + 1 < len(argv):
            explicit = argv[index + 1]
        elif word.startswith("--lang="):
            explicit = word.split("=", 1)[1]
    return language(explicit)


def _stop_as_on_ctrl_c(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # SIGTERM (a service manager, `kill`, `timeout`) stops a command as Ctrl-C does, so what it
    # started stops with it (the demo's relay, an interface's scratch). `relay serve` installs
    # its own handler for a graceful stop.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_as_on_ctrl_c)
    lang = requested_language(argv)
    try:
        with argparse_language(lang):
            args = parser(lang).parse_args(argv)
        args.lang = language(getattr(args, "lang", None) or lang)
        if inspect.iscoroutinefunction(args.run):
            return int(asyncio.run(args.run(args)))
        return int(args.run(args))
    except BrokenPipeError:
        # The reader went away (``relay ... | head``): nothing more to say, and nothing to flush.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a command ended by SIGPIPE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place every failure becomes a sentence
        if os.environ.get("RELAY_DEBUG") == "1":
            raise
        sentence = explain(exc, locals().get("args"), lang)
        print(sentence, file=sys.stderr)
        return 1


def explain(exc: BaseException, args: argparse.Namespace | None, lang: str) -> str:
    """One sentence (or a title and its details) for an expected failure; a neutral one otherwise."""
    from relay.server.admin import OperatorError

    if isinstance(exc, CliError | OperatorError):
        return str(exc)
    if isinstance(exc, ProblemError):
        return describe_problem(exc, lang)
    if isinstance(exc, VerificationError):
        return say("verify-failed", lang)
    if isinstance(exc, OverLimit):
        return say("over-limit", lang, detail=exc)
    if isinstance(exc, InsecureTransport):
        return say("insecure", lang, url=_relay_url(args))
    if isinstance(exc, MediaError):
        return translation(lang).gettext(exc.message_en)
    if isinstance(exc, aiohttp.ClientConnectionError | asyncio.TimeoutError):
        return say("unreachable", lang, url=_relay_url(args))
    if isinstance(exc, NoProfile):
        return say("no-profile", lang, path=exc.directory)
    if isinstance(exc, BadProfile):
        return say("bad-profile", lang, path=exc.directory)
    if isinstance(exc, InvalidRecipient):
        return say(_RECIPIENT.get(exc.reason, "to-not-participant"), lang, to=exc.recipient)
    if isinstance(exc, OSError):
        return _describe_os_error(exc, lang)
    return say("unexpected", lang, kind=type(exc).__name__)


def _relay_url(args: argparse.Namespace | None) -> str:
    return str(getattr(args, "relay_url", None) or getattr(args, "url", None) or "?")


_RECIPIENT = {"self": "to-yourself", "mediator": "to-mediator", "not-participant": "to-not-participant"}


def _describe_os_error(exc: OSError, lang: str) -> str:
    path = exc.filename or "?"
    if isinstance(exc, FileNotFoundError):
        return say("no-such-file", lang, path=path)
    if isinstance(exc, PermissionError):
        return say("permission", lang, path=path)
    if isinstance(exc, IsADirectoryError):
        return say("is-a-directory", lang, path=path)
    if isinstance(exc, NotADirectoryError):
        return say("not-a-directory", lang, path=path)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return say("disk-full", lang, path=path)
    return say("file-problem", lang, path=path, reason=exc.strerror or type(exc).__name__)


_PROBLEM_CORE = ("type", "title", "status", "instance")


def describe_problem(exc: ProblemError, lang: str) -> str:
    """The problem's title (already in ``lang``: the client asks for it), its reference, and every
    other field it carries (detail, a condition's reference and kind, the accepted values...),
    shown generically so new fields appear without a change here."""
    lines = [f"{exc} {say('problem-ref', lang, status=exc.status, type=exc.type)}"]
    for key, value in exc.problem.items():
        if key in _PROBLEM_CORE or value in (None, "", [], {}):
            continue
        lines.append(f"  {key}: {_flat(value)}")
    return "\n".join(lines)


def _flat(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(_flat(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k} {_flat(v)}" for k, v in value.items())
    return str(value)
