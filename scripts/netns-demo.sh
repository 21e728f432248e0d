#!/usr/bin/env bash
# Three machines on this one, as the multi-node tests make them: host `storage`
# runs the storage server and the CSI controller, node-a and node-b a CSI node
# plugin each, joined by veths to a bridge (10.231.0.0/24, routed nowhere else).
# A volume is published on both nodes; the script prints how to open a shell on
# each. Ctrl-c (or SIGTERM) removes every mount, process and namespace it made.
# Needs root. Usage: scripts/netns-demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m tests.harness.netns
