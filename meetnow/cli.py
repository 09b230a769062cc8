"""The ``meetnow`` command: ``serve``, ``loadtest`` and ``check``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from aiohttp import web
from dotenv import dotenv_values
from pydantic import ValidationError
from pydantic_settings import SettingsError

from bot.slack_settings import SLACK_LIBRARY_LOGGERS
from signaling.logging_setup import (
    MEDIA_LIBRARY_LOGGERS,
    SERVER_LIBRARY_LOGGERS,
    configure_logging,
    restrain,
)
from signaling.room_store import StoreError
from signaling.startup import (
    StartupFacts,
    settings_error_lines,
    startup_summary,
    startup_warnings,
    unknown_variables,
)

from .settings import SETTING_EXAMPLES, MeetnowSettings

__all__ = ["main"]


def _serve(args: argparse.Namespace) -> int:
    overrides: dict[str, object] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    try:
        settings = MeetnowSettings(**overrides)  # type: ignore[arg-type]
    except (ValidationError, SettingsError) as error:
        _print_settings_error(error, {field: f"--{field}" for field in overrides})
        return 2
    from .wiring import create_app  # imported late: aiortc is slow to import

    configure_logging(settings.log_format, level=logging.DEBUG if args.verbose else logging.INFO)
    # Libraries that log peer addresses, SDP, or what a client sent stay at WARNING or above,
    # even with -v (create_app and the Slack adapter hold their own loggers there too).
    restrain([*MEDIA_LIBRARY_LOGGERS, *SERVER_LIBRARY_LOGGERS, *SLACK_LIBRARY_LOGGERS])
    try:
        app = create_app(settings)
    except StoreError as error:  # unwritable MEETNOW_DATA_DIR, corrupt database: said, not replaced
        print(f"meetnow: {error}", file=sys.stderr)
        return 1

    facts = _startup_facts(settings)

    def announce(_: object) -> None:
        # The first line stays "meetnow is running": tests and benchmarks wait for it.
        lines = [f"meetnow is running: open {settings.base_url()}/"]
        lines += startup_summary(settings, facts)
        lines += [f"warning: {warning}" for warning in startup_warnings(settings, facts)]
        print("\n".join(lines), flush=True)

    try:
        web.run_app(
            app,
            host=settings.host,
            port=settings.port,
            print=announce,
            access_log=None,
            shutdown_timeout=5,
        )
    except OSError as error:
        print(
            f"meetnow: cannot listen on {settings.host}:{settings.port}: {error}", file=sys.stderr
        )
        return 1
    return 0


def _print_settings_error(
    error: ValidationError | SettingsError, options: dict[str, str] | None = None
) -> None:
    lines = settings_error_lines(error, options, SETTING_EXAMPLES)
    print("meetnow: invalid settings (environment or .env):", file=sys.stderr)
    for line in lines:
        print(f"  {line}", file=sys.stderr)


def _startup_facts(settings: MeetnowSettings) -> StartupFacts:
    import aioice.ice

    from signaling.workers import default_worker_count

    workers = settings.relay_workers
    dotenv = Path(".env")  # where the settings read it: the working directory
    return StartupFacts(
        relay_workers=default_worker_count() if workers is None else workers,
        ice_addresses=settings.ice_host_addresses
        or aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True),
        unknown=unknown_variables(
            os.environ,
            dotenv_values(dotenv) if dotenv.is_file() else {},
            MeetnowSettings.model_fields,
        ),
        chat=settings.chat_summary(),
        chat_warnings=settings.chat_warnings(),
        setting_fields=list(MeetnowSettings.model_fields),
    )


def _version() -> str:
    try:
        return version("meetnow")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _loadtest(args: argparse.Namespace) -> int:
    if args.participants < 1 or args.duration <= 0 or args.screens < 0:
        print(
            "meetnow loadtest: --participants must be >= 1, --duration > 0 and --screens >= 0",
            file=sys.stderr,
        )
        return 2
    from signaling.impairment import Impairment
    from signaling.loadtest import main as loadtest_main

    try:
        impairment = Impairment(
            loss_percent=args.loss,
            delay_ms=args.delay,
            jitter_ms=args.jitter,
            rate_kbps=args.rate,
            rate_direction=args.rate_direction,
            seed=args.seed,
        )
    except ValueError as error:
        print(f"meetnow loadtest: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    return loadtest_main(
        args.room_url,
        args.participants,
        args.duration,
        args.json,
        feedback=not args.no_feedback,
        impairment=impairment,
        layers=args.layers,
        screens=args.screens,
    )


def _check(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        print("meetnow check: --timeout must be > 0", file=sys.stderr)
        return 2
    try:
        settings = MeetnowSettings()
    except (ValidationError, SettingsError) as error:
        _print_settings_error(error)
        return 2
    from signaling.check import main as check_main

    logging.basicConfig(level=logging.WARNING)
    restrain([*MEDIA_LIBRARY_LOGGERS, *SERVER_LIBRARY_LOGGERS])
    return check_main(settings, args.url, args.timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="meetnow", description="Self-hosted Meet Now for chat teams."
    )
    parser.add_argument("--version", action="version", version=f"meetnow {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the web server, signaling and relay")
    serve.add_argument("--host", help="listen address (MEETNOW_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (MEETNOW_PORT, default 8080)")
    serve.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    serve.set_defaults(run=_serve)
    load = commands.add_parser(
        "loadtest", help="join synthetic participants to a room and measure what they receive"
    )
    load.add_argument(
        "room_url", metavar="ROOM_URL", help="a room link, e.g. http://127.0.0.1:8080/r/ID"
    )
    load.add_argument("--participants", "-n", type=int, required=True, help="how many to join")
    load.add_argument(
        "--duration", type=float, default=20.0, help="seconds to measure (default 20)"
    )
    load.add_argument(
        "--json", action="store_true", help="print one JSON object instead of a table"
    )
    load.add_argument(
        "--no-feedback",
        action="store_true",
        help="receivers send no RTCP (receiver reports, REMB, NACK, PLI): a lighter load than "
        "browsers give, for comparison",
    )
    load.add_argument(
        "--layers",
        type=int,
        choices=(1, 2, 3),
        default=1,
        help="VP8 temporal layers of the synthetic video (3: L1T3, as browsers publish; default 1)",
    )
    load.add_argument(
        "--screens",
        type=int,
        default=0,
        metavar="N",
        help="the first N participants also share a screen (the same synthetic video; default 0)",
    )
    network = load.add_argument_group(
        "network", "what each participant's packets go through, both directions (no root needed)"
    )
    network.add_argument("--loss", type=float, default=0.0, metavar="PCT", help="random loss, %%")
    network.add_argument("--delay", type=float, default=0.0, metavar="MS", help="one-way delay")
    network.add_argument(
        "--jitter", type=float, default=0.0, metavar="MS", help="uniform +- on the delay (reorders)"
    )
    network.add_argument(
        "--rate", type=float, default=None, metavar="KBPS", help="cap per direction, kbit/s"
    )
    network.add_argument(
        "--rate-direction",
        choices=("both", "down", "up"),
        default="both",
        help="where --rate applies: both directions (default), only what each participant "
        "receives (down), or only what it sends (up)",
    )
    network.add_argument(
        "--seed", type=int, default=1, help="seed of the random loss and jitter (default 1)"
    )
    load.set_defaults(run=_loadtest)
    check = commands.add_parser(
        "check",
        help="test this server as users will reach it: public URL, port range, TURN, a call",
    )
    check.add_argument(
        "--url", help="the public URL to test (default: MEETNOW_PUBLIC_URL, as serve uses it)"
    )
    check.add_argument(
        "--timeout", type=float, default=10.0, help="seconds each check may take (default 10)"
    )
    check.set_defaults(run=_check)
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
