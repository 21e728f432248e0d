#!/usr/bin/env bash
# Installs what the benchmark's sshfs target needs (the runner itself installs nothing).
# Safe to run again: it only installs what is missing. Run as root on Debian.
set -euo pipefail

packages=(openssh-server openssh-client sshfs fuse3)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
((${#missing[@]})) || exit 0
if [[ $EUID -ne 0 ]]; then
    echo "bench/setup.sh: missing packages (${missing[*]}); run as root" >&2
    exit 1
fi
echo "bench/setup.sh: installing ${missing[*]}"
apt-get update -qq
# The runner starts its own sshd on a private port; policy-rc.d (where present)
# keeps the package from starting a system-wide one.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
