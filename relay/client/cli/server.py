"""Commands run on the relay's host: ``serve``, ``audit``, ``purge``, ``scrub``, ``backup``, ``restore``;
and ``demo``."""

from __future__ import annotations

import argparse
import errno
import os
import ssl
import sys
from pathlib import Path
from typing import Any

from relay.client.cli.common import CliError, command
from relay.i18n.cli import say

DEFAULT_DATA_DIR = "./relay-data"


def _data_dir_default() -> Path:
    return Path(os.environ.get("RELAY_DATA_DIR", DEFAULT_DATA_DIR))


def register(sub: Any, lang: str) -> None:
    # No defaults here: what the command line does not say comes from the environment, secret
    # files, the --config file or the defaults, in that order (relay/server/settings.py).
    p = command(sub, "serve", lang, "help.serve")
    _settings_options(p, lang)
    p.set_defaults(run=cmd_serve)

    p = command(sub, "config", lang, "help.config")
    p.add_argument("action", choices=["check"])
    _settings_options(p, lang)
    p.set_defaults(run=cmd_config)

    p = command(sub, "demo", lang, "help.demo")
    p.add_argument("--url", help=say("help.demo.url", lang))
    p.add_argument("--code", help=say("help.demo.code", lang))
    p.add_argument("--letter", type=Path, help=say("help.demo.letter", lang))
    p.add_argument("--data-dir", type=Path, help=say("help.demo.data-dir", lang))
    p.add_argument("--out", type=Path, help=say("help.demo.out", lang))
    p.add_argument("--video", type=Path, help=say("help.demo.video", lang))
    p.add_argument("--keep", type=Path, metavar="DIR", help=say("help.demo.keep", lang))
    p.add_argument("--no-browser", action="store_true", help=say("help.web.no-browser", lang))
    p.set_defaults(run=cmd_demo)

    p = command(sub, "audit", lang, "help.audit")
    p.add_argument("action", choices=["verify", "export", "verify-export"])
    p.add_argument("file", nargs="?", type=Path, help=say("help.audit.file", lang))
    p.add_argument("--data-dir", type=Path, default=_data_dir_default(), help=say("help.serve.data-dir", lang))
    p.add_argument("--out", type=Path, help=say("help.audit.out", lang))
    p.add_argument("--format", choices=["auto", "jsonl", "csv"], default="auto", help=say("help.audit.format", lang))
    p.add_argument("--expect-head", help=say("help.audit.expect-head", lang))
    p.set_defaults(run=cmd_audit)

    p = command(sub, "purge", lang, "help.purge")
    p.add_argument("--data-dir", type=Path, default=_data_dir_default(), help=say("help.serve.data-dir", lang))
    p.add_argument("--retention", type=Path, default=os.environ.get("RELAY_RETENTION") or None,
                   help=say("help.retention", lang))
    p.add_argument("--dry-run", action="store_true", help=say("help.purge.dry-run", lang))
    p.add_argument("--limit", type=int, help=say("help.purge.limit", lang))
    p.set_defaults(run=cmd_purge)

    p = command(sub, "scrub", lang, "help.scrub")
    p.add_argument("--data-dir", type=Path, default=_data_dir_default(), help=say("help.serve.data-dir", lang))
    p.set_defaults(run=cmd_scrub)

    p = command(sub, "backup", lang, "help.backup")
    p.add_argument("dest", type=Path, metavar="DEST", help=say("help.backup.dest", lang))
    p.add_argument("--data-dir", type=Path, default=_data_dir_default(), help=say("help.serve.data-dir", lang))
    p.set_defaults(run=cmd_backup)

    p = command(sub, "restore", lang, "help.restore")
    p.add_argument("src", type=Path, metavar="SRC", help=say("help.restore.src", lang))
    p.add_argument("--data-dir", type=Path, required=True, help=say("help.restore.data-dir", lang))
    p.add_argument("--expect-manifest", metavar="HASH", help=say("help.restore.expect-manifest", lang))
    p.set_defaults(run=cmd_restore)


def _settings_options(p: Any, lang: str) -> None:
    p.add_argument("--config", type=Path, metavar="FILE", help=say("help.config-file", lang))
    p.add_argument("--data-dir", type=Path, help=say("help.serve.data-dir", lang))
    p.add_argument("--host", help=say("help.serve.host", lang))
    p.add_argument("--port", type=int, help=say("help.serve.port", lang))
    p.add_argument("--retention", type=Path, help=say("help.retention", lang))
    p.add_argument("--purge-interval", type=float, help=say("help.purge-interval", lang))
    p.add_argument("--purge-duty", type=float, help=say("help.purge-duty", lang))
    p.add_argument("--shutdown-grace", type=float, metavar="SECONDS", help=say("help.shutdown-grace", lang))
    p.add_argument("--tls-cert", type=Path, metavar="FILE", help=say("help.tls-cert", lang))
    p.add_argument("--tls-key", type=Path, metavar="FILE", help=say("help.tls-key", lang))
    p.add_argument("--behind-proxy", action="store_true", default=None, help=say("help.behind-proxy", lang))
    p.add_argument("--log-format", choices=["json", "text"], help=say("help.log-format", lang))


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """What the command line said, as settings (relative paths made absolute)."""
    given = {"data_dir": args.data_dir, "host": args.host, "port": args.port, "retention_file": args.retention,
             "purge_interval_seconds": args.purge_interval, "purge_duty": args.purge_duty,
             "shutdown_grace_seconds": args.shutdown_grace, "tls_cert": args.tls_cert, "tls_key": args.tls_key,
             "behind_proxy": args.behind_proxy, "log_format": args.log_format}
    return {k: v.resolve() if isinstance(v, Path) else v for k, v in given.items() if v is not None}


def relay_address(host: str, port: int, lang: str, *, tls: bool = False) -> str:
    """The address people give clients: the relay itself (on loopback, or serving TLS), or the
    TLS proxy before it."""
    if tls:
        return f"https://{f'[{host}]' if ':' in host else host}:{port}"
    if host in ("localhost", "::1") or host.startswith("127."):
        return f"http://{'[::1]' if host == '::1' else host}:{port}"
    return say("proxy-address", lang, host=host, port=port)


def cmd_serve(args: argparse.Namespace) -> int:
    from relay.server import configuration

    report = configuration.check(args.config, _given(args), args.lang, for_serving=True)
    if report.problems:
        for problem in report.problems:
            print(f"relay: {problem}", file=sys.stderr)
        return 2
    settings = report.settings
    assert settings is not None
    from relay.server import logs
    from relay.server.app import run

    logs.configure(settings.log_format, settings.log_level)  # stderr, one JSON object a line by default
    address = relay_address(settings.host, settings.port, args.lang, tls=settings.tls)

    # The first-start code goes to the terminal only (or a private file), never to the log; the
    # access log names no client address or user agent (relay/server/serving.py).
    try:
        run(settings, code_text=lambda code: say("first-start", args.lang, code=code, url=address))
    except ssl.SSLError as exc:  # the certificate or key could not be used
        raise CliError(say("tls-unusable", args.lang, reason=exc.reason or exc)) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CliError(say("address-in-use", args.lang, host=settings.host, port=settings.port)) from None
        raise
    except RuntimeError as exc:  # the relay refused to start (its data directory, its schema): it says why
        raise CliError(say("serve-failed", args.lang, reason=exc)) from None
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    """``relay config check``: every problem, explained, then the effective settings (secrets masked)."""
    from relay.server import configuration

    report = configuration.check(args.config, _given(args), args.lang)
    for problem in report.problems:
        print(f"- {problem}", file=sys.stderr)
    print(report.effective)
    print(say("config-bad" if report.problems else "config-ok", args.lang, n=len(report.problems)),
          file=sys.stderr)
    return 1 if report.problems else 0


async def cmd_audit(args: argparse.Namespace) -> int:
    from relay.server import admin

    if args.action == "verify":
        return await admin.verify(args.data_dir, args.expect_head, args.lang)
    if args.action == "export":
        if args.out is None:
            raise CliError(say("out-needed", args.lang))
        return await admin.export(args.data_dir, args.out, args.format, args.lang)
    if args.file is None:
        raise CliError(say("export-file-needed", args.lang))
    return admin.verify_export(args.file, args.expect_head, args.lang)


async def cmd_purge(args: argparse.Namespace) -> int:
    from relay.server import admin

    return await admin.purge(args.data_dir, args.retention.resolve() if args.retention else None,
                             dry_run=args.dry_run, limit=args.limit, lang=args.lang)


async def cmd_scrub(args: argparse.Namespace) -> int:
    from relay.server import admin

    return await admin.scrub(args.data_dir, args.lang)


async def cmd_backup(args: argparse.Namespace) -> int:
    from relay.server import backup

    return await backup.backup(args.data_dir, args.dest, args.lang)


async def cmd_restore(args: argparse.Namespace) -> int:
    from relay.server import backup

    return await backup.restore(args.src, args.data_dir, args.lang, args.expect_manifest)


async def cmd_demo(args: argparse.Namespace) -> int:
    from relay.client.demo import run

    return await run(args)
