#!/usr/bin/env bash
# The generated bash completion (tools/dist/mkcompletion.sh), driven as bash drives it:
#   completion_test.sh COMPLETION MDEVMIG
# COMP_WORDS/COMP_CWORD set, _mdevmig called, COMPREPLY checked.
set -uo pipefail
completion=${1:?usage: completion_test.sh COMPLETION MDEVMIG}
bin=${2:?usage: completion_test.sh COMPLETION MDEVMIG}
# bash-completion sources completions inside a function: the tables must survive that.
load() { source "$completion"; }
load
fails=0

# complete WORDS... : COMPREPLY for the last word, sorted, on one line.
complete_words() {
  COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
  _mdevmig
  printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}
expect() {  # expect WANT WORDS...
  local want=$1; shift
  local got; got=$(complete_words "$@")
  if [ "$got" != "$want" ]; then
    echo "FAIL: complete '$*': got '$got', want '$want'"; fails=$((fails + 1))
  fi
}
contains() {  # contains WORD WORDS...: WORD is among the completions
  local want=$1; shift
  local got; got=" $(complete_words "$@") "
  if [[ $got != *" $want "* ]]; then
    echo "FAIL: complete '$*': '$want' not in '$got'"; fails=$((fails + 1))
  fi
}
lacks() {  # lacks WORD WORDS...
  local want=$1; shift
  local got; got=" $(complete_words "$@") "
  if [[ $got == *" $want "* ]]; then
    echo "FAIL: complete '$*': '$want' should not be in '$got'"; fails=$((fails + 1))
  fi
}

[ "$(complete -p mdevmig 2>/dev/null)" = "complete -F _mdevmig mdevmig" ] ||
  { echo "FAIL: no 'complete -F _mdevmig mdevmig'"; fails=$((fails + 1)); }

# Subcommands: exactly the ones --help lists.
cmds=$("$bin" --help | awk '/^commands:$/ { on = 1; next } on && /^  [a-z]/ { print $1 }' | sort | tr '\n' ' ' | sed 's/ $//')
[ -n "$cmds" ] || { echo "FAIL: $bin --help lists no commands"; exit 1; }
expect "save" mdevmig sa
expect "qemu-migrate" mdevmig qe
expect "restore" mdevmig re
expect "$(printf '%s\n' $cmds help --help --version | sort | tr '\n' ' ' | sed 's/ $//')" mdevmig ''
expect "--help --version" mdevmig --
expect "$cmds" mdevmig help ''
expect "stress" mdevmig help st

# Each subcommand's options: every --option of its help, and nothing else.
for c in $cmds; do
  want=$( ("$bin" help "$c" | awk '/^options:$/ { on = 1; next } /^[^ ]/ { on = 0 }
            on && /^  -/ { for (i = 1; i <= NF && $i ~ /^-/; i++) { o = $i; sub(/,$/, "", o); print o; if ($i !~ /,$/) break } }') |
          sort | tr '\n' ' ' | sed 's/ $//')
  [[ " $want " == *" --help "* && " $want " == *" -- "* ]] || { echo "FAIL: help $c lists no options"; fails=$((fails + 1)); }
  expect "$want" mdevmig "$c" -
done
expect "--channel --chunk-size" mdevmig save --ch
# A value with choices (--channel auto|v2|v1), and after it the options again.
expect "auto v1 v2" mdevmig save --channel ''
expect "v1 v2" mdevmig save --channel v
contains --json mdevmig save --channel v2 --j

# Arguments: instance UUIDs from sysfs, and files.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/devices/83b8f4f2-509f-382f-3c1e-e6bfe0fa1001" "$tmp/devices/0c4c6a9e-1111-4a2b-9c3d-0123456789ab" \
         "$tmp/devices/not-an-instance" "$tmp/files" "$tmp/empty"
cd "$tmp/empty"
: > "$tmp/files/vm.sav"
_mdevmig_mdev_devices=$tmp/devices
expect "0c4c6a9e-1111-4a2b-9c3d-0123456789ab 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001" mdevmig save ''
expect "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001" mdevmig restore 83
expect "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001" mdevmig migrate --from 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 --to 8
expect "none" mdevmig migrate --workload n
cd "$tmp/files"
expect "vm.sav" mdevmig save 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 v
expect "vm.sav" mdevmig inspect v
# A value without choices is a file; after `--`, a word with a dash is an argument.
: > "./-odd.sav"
lacks --json mdevmig save -- -
contains -odd.sav mdevmig save -- -
# hold: UUIDs, then after `--` a command, then that command's arguments.
cd "$tmp/empty"
_mdevmig_mdev_devices=$tmp/devices
expect "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001" mdevmig hold 83
contains sh mdevmig hold 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 -- s
lacks --json mdevmig hold 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 -- s
cd "$tmp/files"
contains vm.sav mdevmig hold 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 -- sh v
_mdevmig_mdev_devices=$tmp/none
expect "" mdevmig save 83

# Unknown subcommands complete nothing.
expect "" mdevmig frobnicate ''

if [ "$fails" -ne 0 ]; then echo "completion: $fails failed"; exit 1; fi
echo "completion: all checks passed"
