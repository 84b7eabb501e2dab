#!/usr/bin/env bash
# The main job: set up, build mdevmig.ko, boot the lab VM with the Debian kernel and run
# the demo inside it (tools/lab/demo-guest.sh).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/setup.sh
cmake --preset dev >/dev/null
cmake --build --preset dev --target kmod >/dev/null
exec tools/lab/lab.sh --name demo --timeout 300 --kmod-dir build/dev/kmod -- tools/lab/demo-guest.sh
