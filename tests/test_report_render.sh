#!/usr/bin/env bash
# test_report_render.sh REPORT.html OUTDIR - renders the HTML report of test_report with Debian's
# headless chromium: a screenshot of plausible size (PNG, 1280x3000, > 20 KB), no console error
# or network request in chromium's log, and no script element in the rendered DOM.
# Exit 0 pass, 1 fail, 77 skip (chromium not installed).
set -u
html=${1:?usage: test_report_render.sh REPORT.html OUTDIR}
out=${2:?usage: test_report_render.sh REPORT.html OUTDIR}
chrome=""
for c in chromium chromium-browser; do
  if command -v "$c" >/dev/null 2>&1; then chrome=$(command -v "$c"); break; fi
done
if [[ -z $chrome ]]; then echo "SKIP: chromium is not installed (apt-get install chromium)"; exit 77; fi
[[ -s $html ]] || { echo "FAIL: $html is missing (test_report writes it)"; exit 1; }
rm -rf "$out" && mkdir -p "$out"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
       --disable-background-networking --disable-component-update --disable-sync
       --user-data-dir="$profile" --enable-logging=stderr --v=0)
url="file://$(realpath "$html")"
fail=0

timeout 90 "$chrome" "${flags[@]}" --screenshot="$out/report.png" --window-size=1280,3000 "$url" \
  >"$out/screenshot.out" 2>"$out/screenshot.log"
rc=$?
if ((rc != 0)); then echo "FAIL: chromium --screenshot exited $rc"; tail -5 "$out/screenshot.log"; fail=1; fi
png=$out/report.png
if [[ ! -s $png ]]; then
  echo "FAIL: no screenshot"; fail=1
else
  size=$(stat -c %s "$png")
  sig=$(od -An -tx1 -N8 "$png" | tr -d ' \n')
  read -r w0 w1 w2 w3 h0 h1 h2 h3 < <(od -An -tu1 -j16 -N8 "$png")
  width=$(( (w0 << 24) | (w1 << 16) | (w2 << 8) | w3 ))
  height=$(( (h0 << 24) | (h1 << 16) | (h2 << 8) | h3 ))
  echo "screenshot: $size bytes, ${width}x${height}"
  [[ $sig == 89504e470d0a1a0a ]] || { echo "FAIL: not a PNG"; fail=1; }
  ((size > 20000)) || { echo "FAIL: screenshot of $size bytes is implausibly small"; fail=1; }
  ((width == 1280 && height == 3000)) || { echo "FAIL: screenshot is ${width}x${height}"; fail=1; }
fi

timeout 90 "$chrome" "${flags[@]}" --dump-dom "$url" >"$out/dom.html" 2>"$out/dom.log"
rc=$?
if ((rc != 0)); then echo "FAIL: chromium --dump-dom exited $rc"; fail=1; fi
if grep -qi '<script' "$out/dom.html"; then echo "FAIL: the rendered DOM has a script element"; fail=1; fi
svgs=$(grep -o '<svg' "$out/dom.html" | wc -l)
((svgs >= 5)) || { echo "FAIL: $svgs svg elements in the rendered DOM"; fail=1; }

# console messages (JavaScript or resource errors) and network attempts
if grep -E 'CONSOLE|Uncaught|Failed to load resource|net::ERR_' "$out/screenshot.log" "$out/dom.log"; then
  echo "FAIL: console errors or network requests (above)"; fail=1
fi
((fail == 0)) && echo "PASS: rendered $html ($svgs svg)"
exit $fail
