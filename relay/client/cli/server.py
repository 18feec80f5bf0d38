"""Commands run on the relay's host: ``serve``, ``audit``, ``purge``; and ``demo``."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from pathlib import Path
from typing import Any

from relay.client.cli.common import CliError, command
from relay.i18n.cli import say

DEFAULT_DATA_DIR = "./relay-data"


def _data_dir_default() -> Path:
    return Path(os.environ.get("RELAY_DATA_DIR", DEFAULT_DATA_DIR))


def register(sub: Any, lang: str) -> None:
    p = command(sub, "serve", lang, "help.serve")
    p.add_argument("--data-dir", type=Path, default=_data_dir_default(), help=say("help.serve.data-dir", lang))
    p.add_argument("--host", default=os.environ.get("RELAY_HOST", "127.0.0.1"), help=say("help.serve.host", lang))
    p.add_argument("--port", type=int, default=int(os.environ.get("RELAY_PORT", "8787")),
                   help=say("help.serve.port", lang))
    p.add_argument("--retention", type=Path, default=os.environ.get("RELAY_RETENTION") or None,
                   help=say("help.retention", lang))
    p.add_argument("--purge-interval", type=float, default=float(os.environ.get("RELAY_PURGE_INTERVAL", "600")),
                   help=say("help.purge-interval", lang))
    p.add_argument("--purge-duty", type=float, default=float(os.environ.get("RELAY_PURGE_DUTY", "0.5")),
                   help=say("help.purge-duty", lang))
    p.set_defaults(run=cmd_serve)

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


def relay_address(host: str, port: int, lang: str) -> str:
    """The address people give clients: the relay itself on loopback, or the TLS proxy before it."""
    if host in ("localhost", "::1") or host.startswith("127."):
        return f"http://{'[::1]' if host == '::1' else host}:{port}"
    return say("proxy-address", lang, host=host, port=port)


def cmd_serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from relay.server import retention_config
    from relay.server.app import run
    from relay.server.settings import Settings

    data_dir = args.data_dir.resolve()
    if data_dir.is_dir() and data_dir.stat().st_mode & 0o077:
        raise CliError(say("data-dir-open", args.lang, path=data_dir))  # the relay refuses it too
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = Settings(data_dir=data_dir, host=args.host, port=args.port,
                            retention_file=args.retention.resolve() if args.retention else None,
                            purge_interval_seconds=args.purge_interval, purge_duty=args.purge_duty)
    except ValidationError as exc:
        wrong = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        print(f"relay: {wrong}", file=sys.stderr)
        return 2
    try:
        retention_config.load(settings.retention_file)  # refuse to start on a bad schedule, saying where
    except retention_config.ScheduleError as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 2
    address = relay_address(settings.host, settings.port, args.lang)

    # The first-start code goes to the terminal only (or a private file), never to the log; the
    # access log names no client address or user agent (relay/server/serving.py).
    try:
        run(settings, code_text=lambda code: say("first-start", args.lang, code=code, url=address))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CliError(say("address-in-use", args.lang, host=settings.host, port=settings.port)) from None
        raise
    except RuntimeError as exc:  # the relay refused to start (its data directory, its schema): it says why
        raise CliError(say("serve-failed", args.lang, reason=exc)) from None
    return 0


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


async def cmd_demo(args: argparse.Namespace) -> int:
    from relay.client.demo import run

    return await run(args)
