#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine for webstack lab: system packages, a virtualenv, `lab`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "error: setup needs root; run: sudo $0" >&2; exit 2; }

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
    lxc lxc-templates debootstrap debian-archive-keyring distro-info rsync \
    nftables iproute2 openssh-client ca-certificates \
    vagrant vagrant-lxc \
    python3 python3-venv python3-pip >/dev/null

# The distribution's own Python (the one apt just installed python3-venv for), not whichever
# python3 comes first on PATH: the lab is tested on it. PYTHON=python3.12 chooses another.
PYTHON=${PYTHON:-/usr/bin/python3}
if [ ! -x .venv/bin/python ] || [ "$(readlink -f .venv/bin/python)" != "$(readlink -f "$(command -v "$PYTHON")")" ]; then
    rm -rf .venv
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
ln -sf "$PWD/.venv/bin/lab" /usr/local/bin/lab
echo "webstack lab is set up: $(lab --version) at /usr/local/bin/lab"
