#!/bin/sh
# Prints the project version, read from the top-level CMakeLists.txt's project() line:
# the one place it is set. For what runs without CMake (kmod/build.sh, debian/rules).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
v=$(sed -nE 's/^project\(mdevmig VERSION ([0-9]+\.[0-9]+\.[0-9]+)[ )].*/\1/p' "$top/CMakeLists.txt")
[ -n "$v" ] || { echo "version.sh: no 'project(mdevmig VERSION x.y.z' line in $top/CMakeLists.txt" >&2; exit 1; }
echo "$v"
