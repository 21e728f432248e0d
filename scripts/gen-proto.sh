#!/usr/bin/env bash
# Regenerates the Python stubs next to every .proto under proto/.
# Usage: scripts/gen-proto.sh [OUTPUT_DIR]   (default: the repository itself)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.}
bin=${VENV:-.venv}/bin
mapfile -t protos < <(find proto -name '*.proto' | sort)
# mypy-protobuf writes the typed .pyi files for both messages and services.
"$bin/python" -m grpc_tools.protoc -I . \
    --plugin=protoc-gen-mypy="$bin/protoc-gen-mypy" \
    --plugin=protoc-gen-mypy_grpc="$bin/protoc-gen-mypy_grpc" \
    --python_out="$out" --grpc_python_out="$out" \
    --mypy_out="$out" --mypy_grpc_out="$out" "${protos[@]}"
