"""`netvol-server` and `volctl server`: start the storage server."""

import argparse
import sys

from storage_server import config, logs
from storage_server.settings import DEFAULT_LISTEN, ServerSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", help=f"address to serve on (default {DEFAULT_LISTEN})")
    parser.add_argument("--data-dir", help="where metadata, blobs and the token are kept")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in data dir)")
    parser.add_argument("--blob-dir", help="where blobs are kept (default: DATA_DIR/blobs)")
    parser.add_argument("--token-file", help="file holding the access token")
    parser.add_argument("--tls-cert", help="PEM certificate; serve TLS when given")
    parser.add_argument("--tls-key", help="PEM private key for --tls-cert")
    parser.add_argument("--max-volume-size", help="largest volume allowed, e.g. 1Pi")
    parser.add_argument("--inline-max", help="keep extents up to this size in metadata (0: never)")
    parser.add_argument("--blob-grace-seconds", help="age before an unreferenced blob is deleted")
    parser.add_argument("--collect-interval-seconds", help="how often blobs are collected")
    parser.add_argument(
        "--lock-lease-seconds", help="how long a silent mount keeps its locks (default 30)"
    )
    parser.add_argument(
        "--orphan-grace-seconds",
        help="how long a silent mount's open unlinked files are kept after its locks go "
        "(default 3600)",
    )
    parser.add_argument("--log-level", help="debug, info, warning or error")


def run(args: argparse.Namespace) -> int:
    # Imported here so that volctl's client commands do not pay for SQLAlchemy.
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    from storage_server.memory import keep_large_buffers  # noqa: PLC0415
    from storage_server.server import serve  # noqa: PLC0415

    flags = {k: v for k, v in vars(args).items() if k != "config"}
    try:
        settings = config.load(
            ServerSettings,
            section="server",
            env_prefix="NETVOL_SERVER_",
            flags=flags,
            config_file=args.config,
        )
        logs.setup(settings.log_level)
        keep_large_buffers()
        serve(settings)
    except (ValueError, SQLAlchemyError, OSError) as exc:
        # Driver errors run to several lines; the first says what failed.
        print(f"netvol-server: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="netvol-server", description="the netvol storage server")
    parser.add_argument("--config", help="TOML file with a [server] table")
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
