#!/bin/sh
# Writes the bash completion from the built binary's own help: mkcompletion.sh MDEVMIG OUT
#
# The commands come from `mdevmig --help`, each command's options (and their value
# choices, "--channel auto|v2|v1") from `mdevmig help CMD`; the completion function
# itself is completion.bash.in. Values: a choice list, else files; arguments: instance
# UUIDs from /sys/bus/mdev/devices, then files.
set -eu
bin=${1:?usage: mkcompletion.sh MDEVMIG OUT}
out=${2:?usage: mkcompletion.sh MDEVMIG OUT}
here=$(cd "$(dirname "$0")" && pwd)

top=$("$bin" --help)
cmds=$(printf '%s\n' "$top" | awk '/^commands:$/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
[ -n "$cmds" ] || { echo "mkcompletion: '$bin --help' lists no commands" >&2; exit 1; }

tables=$(
  for c in $cmds; do
    "$bin" help "$c" | awk -v c="$c" '
      /^options:$/ { on = 1; next }
      /^[^ ]/ { on = 0 }
      on && /^  -/ {
        n = split($0, w, " ")
        for (i = 1; i <= n && w[i] ~ /^-/; i++) {
          o = w[i]; sub(/,$/, "", o); opts = opts " " o
          if (w[i] ~ /,$/) continue
          # An option with a METAVAR takes a value: a|b|c lists the choices, a DEVICE or
          # UUID is an instance (@device), anything else a file ("").
          m = w[i + 1]
          if (i < n && ((m ~ /^[][A-Z0-9_\/:.]+$/ && m ~ /[A-Z]/) || m ~ /[|]/)) {
            v = ""
            if (m ~ /[|]/ && m !~ /[A-Z]/) { v = m; gsub(/[|]/, " ", v) }
            else if (m ~ /(^|[^A-Z])(DEVICE|UUID)($|[^A-Z])/) v = "@device"
            vals = vals sprintf("\n  [\"%s %s\"]=\"%s\"", c, o, v)
          }
          break
        }
      }
      END { printf "  [%s]=\"%s\"%s\n", c, substr(opts, 2), vals }'
  done
)
{
  sed -n '1,/^# @TABLES@$/p' "$here/completion.bash.in" | sed '$d'
  printf '_mdevmig_commands="%s"\n' "$(echo $cmds)"
  # -g: bash-completion sources this file inside a function.
  printf 'declare -gA _mdevmig_options=(\n%s\n)\n' "$(printf '%s\n' "$tables" | grep -v '^  \["' )"
  printf 'declare -gA _mdevmig_values=(\n%s\n)\n' "$(printf '%s\n' "$tables" | grep '^  \["' || true)"
  sed -n '/^# @TABLES@$/,$p' "$here/completion.bash.in" | sed '1d'
} > "$out"
