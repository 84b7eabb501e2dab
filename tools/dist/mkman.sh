#!/bin/sh
# Writes the manual pages from the built binary's own help: mkman.sh MDEVMIG OUTDIR VERSION
#
# mdevmig(1) from `mdevmig --help`, and mdevmig-CMD(1) from `mdevmig help CMD` for every
# command that --help lists, so a page says what --help says. The help layout
# (tools/cli/args.cc): "usage: mdevmig ..." (more forms indented below it), a
# description, then "arguments:", "options:" or "commands:" lists with the name in the
# first 24 columns, then an epilogue ("Exit status: ...").
set -eu
bin=${1:?usage: mkman.sh MDEVMIG OUTDIR VERSION}
out=${2:?usage: mkman.sh MDEVMIG OUTDIR VERSION}
version=${3:?usage: mkman.sh MDEVMIG OUTDIR VERSION}
mkdir -p "$out"
# The pages' date: SOURCE_DATE_EPOCH when set (reproducible builds).
date=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y-%m-%d)

top=$("$bin" --help)
cmds=$(printf '%s\n' "$top" | awk '/^commands:$/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
[ -n "$cmds" ] || { echo "mkman: '$bin --help' lists no commands" >&2; exit 1; }

# page NAME SUMMARY SEEALSO < help > page. awk marks each output line R (a request,
# its arguments are text) or T (text); roff() escapes both for roff afterwards.
page() {
  awk -v name="$1" -v summary="$2" -v see="$3" -v version="$version" -v date="$date" '
    # A paragraph break or a section heading is written only before text it introduces.
    function req(s) { if (s !~ /^\.SH /) flush(); else para = ""; print "R " s }
    function txt(s) { flush(); print "T " s }
    function flush() { if (para != "") { p = para; para = ""; print "R " p } }
    BEGIN {
      req(".TH " toupper(name) " 1 \"" date "\" \"mdevmig " version "\" \"mdevmig manual\"")
      req(".SH NAME"); txt(name " - " summary)
      section = "start"
    }
    /^usage: / { sub(/^usage: /, ""); req(".SH SYNOPSIS"); req(".nf"); txt($0); section = "synopsis"; next }
    section == "synopsis" && /^       / { sub(/^ +/, ""); txt($0); next }
    section == "synopsis" { req(".fi"); section = "pre" }
    /^(arguments|options|commands):$/ { req(".SH " toupper(substr($0, 1, length($0) - 1))); section = "list"; next }
    section == "list" && /^  [^ ]/ {
      # The name, then "--opt METAVAR" or "-h, --help": a METAVAR is upper case ([ADDR:]PORT) or a|b|c
      # (args.cc pads the name to 22 columns, or one space when it is longer).
      n = split(substr($0, 3), w, " ")
      item = w[1]; k = 2
      if (item ~ /,$/ && n >= 2) item = item " " w[k++]
      if (item ~ /^-/ && k <= n && ((w[k] ~ /^[][A-Z0-9_\/:.]+$/ && w[k] ~ /[A-Z]/) || w[k] ~ /[|]/)) item = item " " w[k++]
      text = ""
      for (; k <= n; k++) text = text (text == "" ? "" : " ") w[k]
      if (name == "mdevmig" && item ~ /^[a-z]/) { req(".TP"); req(".BR mdevmig-" item " (1)") }
      else { req(".TP"); req(".B " item) }
      if (text != "") txt(text)
      next
    }
    section == "list" && /^     / { sub(/^ +/, ""); txt($0); next }
    /^$/ {
      if (section == "pre") { section = "desc"; para = ".SH DESCRIPTION"; next }
      if (section == "list") section = "after"
      if (section != "start" && para == "") para = ".PP"
      next
    }
    /^Exit status:/ { para = ""; req(".SH \"EXIT STATUS\""); sub(/^Exit status: */, ""); section = "exit" }
    section == "pre" { section = "desc"; req(".SH DESCRIPTION") }
    section == "list" { section = "after"; para = ".PP" }
    { sub(/^ +/, ""); txt($0) }
    END {
      if (section == "synopsis") req(".fi")
      req(".SH \"SEE ALSO\""); req(".nh")
      n = split(see, s, " ")
      for (i = 1; i <= n; i++) req(".BR " s[i] " (" (s[i] == "mdevctl" ? 8 : 1) ")" (i < n ? "," : ""))
    }
  ' | sed -e '/^T /{ s/^T //; s/\\/\\e/g; s/-/\\-/g; s/^[.'"'"']/\\\&&/; }' \
          -e '/^R /{ s/^R //; s/\\/\\e/g; s/-/\\-/g; }'
}

see=""
for c in $cmds; do see="$see mdevmig-$c"; done
printf '%s\n' "$top" |
  page mdevmig "save, restore, inspect and live-migrate mediated devices" "$see mdevctl" > "$out/mdevmig.1"
for c in $cmds; do
  summary=$(printf '%s\n' "$top" | awk -v c="$c" '/^commands:$/ { on = 1; next } on && $1 == c { $1 = ""; sub(/^ +/, ""); print; exit }')
  "$bin" help "$c" | page "mdevmig-$c" "$summary" "mdevmig mdevctl" > "$out/mdevmig-$c.1"
done
