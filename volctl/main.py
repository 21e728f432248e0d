"""volctl: manage netvol volumes and snapshots from the command line.

Exit codes: 0 success, 1 unexpected server error, 2 bad input or configuration,
3 no such volume or snapshot, 4 already exists with other properties, 5 access
denied (missing or wrong token), 6 storage server unreachable.
"""

import argparse
import sys
from collections.abc import Callable

import grpc

from storage_server import config
from storage_server import main as server_main
from storage_server.client import ClientSettings
from volctl import admin, csi_command, mount

EXIT_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT: 2,
    grpc.StatusCode.OUT_OF_RANGE: 2,
    grpc.StatusCode.FAILED_PRECONDITION: 2,
    grpc.StatusCode.NOT_FOUND: 3,
    grpc.StatusCode.ALREADY_EXISTS: 4,
    grpc.StatusCode.UNAUTHENTICATED: 5,
    grpc.StatusCode.PERMISSION_DENIED: 5,
    grpc.StatusCode.UNAVAILABLE: 6,
    grpc.StatusCode.DEADLINE_EXCEEDED: 6,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="volctl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", help="TOML file with [client] and [server] tables")
    parser.add_argument("--server", help="storage server address (env NETVOL_SERVER)")
    parser.add_argument(
        "--token-file", help="file holding the access token (env NETVOL_TOKEN_FILE)"
    )
    parser.add_argument("--tls-ca", help="CA bundle to verify a TLS server (env NETVOL_TLS_CA)")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    server = sub.add_parser("server", help="run the storage server in the foreground")
    server_main.add_arguments(server)
    server.set_defaults(run=server_main.run)
    admin.add_commands(sub)
    mount.add_commands(sub)
    csi_command.add_commands(sub)
    return parser


def _client_settings(args: argparse.Namespace) -> ClientSettings:
    return config.load(
        ClientSettings,
        section="client",
        env_prefix="NETVOL_",
        flags={"server": args.server, "token_file": args.token_file, "tls_ca": args.tls_ca},
        config_file=args.config,
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    run: Callable[..., int] = args.run
    if args.command == "server":
        return run(args)
    try:
        settings = _client_settings(args)
        return run(args, settings)
    except ValueError as exc:
        print(f"volctl: {exc}", file=sys.stderr)
        return 2
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        details: str = exc.details() or code.name
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            details = f"cannot reach the storage server at {settings.server}: {details}"
        print(f"volctl: {details}", file=sys.stderr)
        return EXIT_CODES.get(code, 1)


def entry() -> None:
    sys.exit(main())
