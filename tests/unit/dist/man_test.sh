#!/usr/bin/env bash
# The generated manual pages (tools/dist/mkman.sh): man_test.sh MANDIR MDEVMIG
# A page per command of `mdevmig --help`; each renders without a warning, its NAME line
# is what mandb indexes (lexgrog), and it shows every option of `mdevmig help CMD`.
set -uo pipefail
dir=${1:?usage: man_test.sh MANDIR MDEVMIG}
bin=${2:?usage: man_test.sh MANDIR MDEVMIG}
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

cmds=$("$bin" --help | awk '/^commands:$/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
[ -n "$cmds" ] || { echo "FAIL: $bin --help lists no commands"; exit 1; }
pages=mdevmig
for c in $cmds; do pages="$pages mdevmig-$c"; done
# No page for a command that is gone.
have=$(cd "$dir" && ls *.1 | sed 's/\.1$//' | sort | tr '\n' ' ')
want=$(printf '%s\n' $pages | sort | tr '\n' ' ')
[ "$have" = "$want" ] || fail "pages: have '$have', want '$want'"

for p in $pages; do
  f=$dir/$p.1
  [ -s "$f" ] || { fail "$f missing"; continue; }
  w=$(groff -man -Tutf8 -ww -z "$f" 2>&1)
  [ -z "$w" ] || fail "$p: groff warns: $w"
  case $p in mdevmig) c= summary="" ;; *) c=${p#mdevmig-} ;; esac
  # lexgrog prints "FILE: "NAME - SUMMARY"" for a NAME section mandb understands.
  name=$(lexgrog "$f" 2>&1)
  [[ $name == *"\"$p - "* ]] || fail "$p: NAME section not indexable: $name"
  text=$(MANWIDTH=200 man -l "$f" 2>/dev/null | col -b)
  if [ -n "$c" ]; then
    help=$("$bin" help "$c")
    summary=$("$bin" --help | awk -v c="$c" '/^commands:$/ { on = 1; next } on && $1 == c { $1 = ""; sub(/^ +/, ""); print; exit }')
    [[ $name == *"$p - $summary"* ]] || fail "$p: NAME is not the summary '$summary': $name"
    usage=$(printf '%s\n' "$help" | sed -n 's/^usage: //p')
    [[ $text == *"$usage"* ]] || fail "$p: synopsis '$usage' missing"
    for o in $(printf '%s\n' "$help" | awk '/^options:$/ { on = 1; next } /^[^ ]/ { on = 0 } on && /^  --[a-z]/ { print $1 }'); do
      grep -qE -- "^ +$o( |$)" <<< "$text" || fail "$p: option $o not shown"
    done
    if grep -q '^Exit status:' <<< "$help"; then
      grep -q '^EXIT STATUS' <<< "$text" || fail "$p: no EXIT STATUS section"
    fi
  else
    for c in $cmds; do grep -qE "^ +mdevmig-$c\(1\)" <<< "$text" || fail "mdevmig.1: command $c not listed"; done
  fi
done
if [ "$fails" -ne 0 ]; then echo "man: $fails failed"; exit 1; fi
echo "man: all checks passed"
