#!/usr/bin/env bash
# The reports as a browser shows them: render_check.sh REPORT_SAMPLE
# report_sample writes a migration and a stress report as HTML and as SVG (the CLI's
# renderer and writer); headless Chromium takes a screenshot of the migration's page
# and of the stress run's bare SVG (a browser start each: the other two are the same
# markup, checked as XML by report_unit), and png_ink.py checks that they show the
# charts (enough ink, colours, and the bars' own colours). A blank page goes through
# the same check first and must be found blank, so the check can fail. Runs as root (CI does): hence --no-sandbox. Exit 77 (skipped) without
# chromium (scripts/setup.sh installs it).
set -uo pipefail
sample=${1:?usage: render_check.sh REPORT_SAMPLE}
here=$(cd "$(dirname "$0")" && pwd)
browser=$(command -v chromium || true)
[ -n "$browser" ] || { echo "SKIP: chromium is not installed (scripts/setup.sh installs it)"; exit 77; }
dir=$(mktemp -d /tmp/mdevmig-render-XXXXXX)
trap 'rm -rf "$dir"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

"$sample" "$dir" || { echo "FAIL: $sample $dir"; exit 1; }

# shot PAGE PNG: the screenshot, or the browser's log on failure.
shot() {
  rm -f "$2"
  if ! timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
      --user-data-dir="$dir/profile" --screenshot="$2" --window-size=1200,900 "file://$1" \
      >"$dir/browser.log" 2>&1 || [ ! -s "$2" ]; then
    fail "chromium made no screenshot of $1:"
    tail -n 20 "$dir/browser.log"
    return 1
  fi
}

# The control: a blank page must not pass.
if shot "$dir/blank.html" "$dir/blank.png"; then
  out=$(python3 "$here/png_ink.py" "$dir/blank.png"); rc=$?
  [ "$rc" = 1 ] || fail "a blank page passed the ink check (exit $rc): $out"
fi

# The bars' colours in the first screen: device state and dirty pages; passed and
# failed rounds.
for case in "migration.html 3366cc 8e44ad" "stress.svg 2ca02c d62728"; do
  set -- $case
  page=$1; shift
  png=$dir/${page//./-}.png
  shot "$dir/$page" "$png" || continue
  expect=()
  for c in "$@"; do expect+=(--expect "$c"); done
  out=$(python3 "$here/png_ink.py" "$png" "${expect[@]}") || fail "$page: $out"
  echo "$out"
done
[ "$fails" = 0 ] || { echo "$fails failed"; exit 1; }
echo "all pages render"
