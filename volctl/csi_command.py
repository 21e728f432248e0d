"""volctl csi: run the CSI plugin on a unix socket, as a controller, a node plugin or both.

The storage server's address and token come from the same client settings as
every volctl command (flags, NETVOL_SERVER / NETVOL_TOKEN / NETVOL_TOKEN_FILE,
the config file); a CSI call may override the token with its secret "token".
"""

import argparse
import os
from pathlib import Path

from csi.server import MODES, PluginOptions, serve
from storage_server import logs
from storage_server.client import ClientSettings
from storage_server.config import ConfigError

DEFAULT_STATE_DIR = Path("/var/lib/netvol/csi")


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    csi = sub.add_parser("csi", help="run the CSI plugin")
    csi.add_argument(
        "--endpoint",
        default=os.environ.get("CSI_ENDPOINT"),
        help="unix:///path/to/csi.sock to serve on (env CSI_ENDPOINT)",
    )
    csi.add_argument("--mode", choices=MODES, default="all", help="services to run (default all)")
    csi.add_argument("--node-id", default="", help="this node's name; required unless controller")
    # Also accepted after the subcommand, where the plugin's manifests put it;
    # SUPPRESS keeps it from hiding `volctl --server ADDR csi`.
    csi.add_argument(
        "--server", default=argparse.SUPPRESS, help="storage server address (env NETVOL_SERVER)"
    )
    csi.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"where the node plugin records its mounts (default {DEFAULT_STATE_DIR})",
    )
    csi.add_argument("--log-level", default="info", help="debug also logs requests, sans secrets")
    csi.set_defaults(run=cmd_csi)


def cmd_csi(args: argparse.Namespace, settings: ClientSettings) -> int:
    if not args.endpoint:
        raise ConfigError("--endpoint (or CSI_ENDPOINT) is required")
    logs.setup(args.log_level)
    options = PluginOptions(args.endpoint, args.mode, args.node_id, args.state_dir)
    serve(options, settings)
    return 0
