#!/usr/bin/env python3
"""check_report_layout.py REPORT.html OUTDIR [SCREENS_DIR] - lays the HTML report out in Debian's
headless chromium and checks, from the rendered page itself:
  - no label is clipped: every SVG text's box lies inside its SVG's box;
  - no two labels overlap: no two SVG texts of one chart have intersecting boxes;
  - every table fits the viewport (1280 px wide) and the page does not scroll sideways.
The boxes are the browser's own (getBoundingClientRect of a copy of the report with a measuring
script added; the report itself has no script). With SCREENS_DIR, full-page PNG screenshots of
the report go there (for a person to look at; not checked).

check_report_layout.py --self-test OUTDIR: the same checks on a page with one clipped label, two
overlapping labels and a table wider than the viewport must find all three.
Exit 0 pass, 1 fail, 77 skip (chromium not installed)."""
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

WIDTH = 1280
TOL = 0.5  # px: sub-pixel rounding of text boxes

MEASURE = r"""
<script>
(function () {
  var out = {svgs: [], tables: [], viewport: document.documentElement.clientWidth,
             scroll: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight};
  function box(r) { return [r.left, r.top, r.right, r.bottom]; }
  document.querySelectorAll('svg').forEach(function (svg, i) {
    var t = svg.querySelector('title');
    var s = {i: i, title: t ? t.textContent : '', box: box(svg.getBoundingClientRect()), texts: []};
    svg.querySelectorAll('text').forEach(function (e) {
      var c = e.cloneNode(true);
      c.querySelectorAll('title').forEach(function (x) { x.remove(); });
      var r = e.getBoundingClientRect();
      if (r.width > 0 && r.height > 0) s.texts.push({text: c.textContent, box: box(r)});
    });
    out.svgs.push(s);
  });
  document.querySelectorAll('table').forEach(function (t, i) {
    var h = t.previousElementSibling;
    out.tables.push({i: i, after: h ? h.textContent : '', box: box(t.getBoundingClientRect())});
  });
  var pre = document.createElement('pre');
  pre.id = 'hb-layout';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"""

BAD_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>bad</title></head><body>
<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100" viewBox="0 0 200 100"><title>bad chart</title>
<text x="150" y="20" font-size="12">a label cut at the edge of the chart</text>
<text x="10" y="60" font-size="12">B=8</text><text x="14" y="61" font-size="12">B=16</text>
</svg>
<table><tr>""" + "".join(f"<td style='white-space:nowrap'>column {i} of a table that is too wide</td>"
                         for i in range(12)) + """</tr></table>
</body></html>
"""


def find_chrome():
    for c in ("chromium", "chromium-browser"):
        p = shutil.which(c)
        if p:
            return p
    return None


def chrome_flags(profile):
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", f"--user-data-dir={profile}"]


def measure(chrome, path, outdir):
    with open(path, encoding="utf-8") as f:
        doc = f.read()
    inst = os.path.join(outdir, "measured.html")
    with open(inst, "w", encoding="utf-8") as f:
        f.write(doc.replace("</body>", MEASURE + "</body>", 1))
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run([chrome] + chrome_flags(profile) + [f"--window-size={WIDTH},1000", "--dump-dom",
                            "file://" + os.path.realpath(inst)],
                           capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="hb-layout">(.*?)</pre>', r.stdout, re.S)
    if not m:
        raise RuntimeError(f"chromium exited {r.returncode} without the measurements: {r.stderr[-400:]}")
    return json.loads(html.unescape(m.group(1)))


def inside(inner, outer):
    return (inner[0] >= outer[0] - TOL and inner[1] >= outer[1] - TOL and
            inner[2] <= outer[2] + TOL and inner[3] <= outer[3] + TOL)


def overlap(a, b):
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w > TOL and h > TOL


def check(m):
    problems = {"clipped": [], "overlap": [], "table": []}
    for s in m["svgs"]:
        texts = s["texts"]
        for t in texts:
            if not inside(t["box"], s["box"]):
                problems["clipped"].append(f"chart {s['i']} ({s['title'][:60]}): {t['text'][:80]!r} at "
                                           f"{[round(v) for v in t['box']]} outside {[round(v) for v in s['box']]}")
        for i in range(len(texts)):
            for j in range(i + 1, len(texts)):
                if overlap(texts[i]["box"], texts[j]["box"]):
                    problems["overlap"].append(f"chart {s['i']} ({s['title'][:60]}): {texts[i]['text'][:50]!r} "
                                               f"overlaps {texts[j]['text'][:50]!r}")
    vw = m["viewport"]
    for t in m["tables"]:
        if t["box"][2] > vw + TOL:
            problems["table"].append(f"table {t['i']} (after {t['after'][:40]!r}) is {round(t['box'][2])} px "
                                     f"wide > viewport {vw}")
    if m["scroll"] > vw + TOL:
        problems["table"].append(f"the page scrolls sideways: {m['scroll']} > {vw} px")
    return problems


def screenshots(chrome, path, height, screens):
    """The whole page, then pages of 1400 px (the page shifted up) that are readable at full size."""
    os.makedirs(screens, exist_ok=True)
    name = os.path.splitext(os.path.basename(path))[0]
    with open(path, encoding="utf-8") as f:
        doc = f.read()
    page = 1400
    shots = [("full", doc, int(height) + 20)]
    for k in range(int(height) // page + 1):
        shots.append((f"page{k + 1}", doc.replace("</head>", f"<style>body{{margin-top:-{k * page}px}}</style></head>", 1), page))
    with tempfile.TemporaryDirectory() as profile:
        for tag, text, h in shots:
            src = os.path.join(profile, f"{tag}.html")
            with open(src, "w", encoding="utf-8") as f:
                f.write(text)
            subprocess.run([chrome] + chrome_flags(os.path.join(profile, "p")) + [f"--window-size={WIDTH},{h}",
                            f"--screenshot={os.path.join(screens, f'{name}-{tag}.png')}", "file://" + src],
                           capture_output=True, timeout=120)


def main(argv):
    chrome = find_chrome()
    if not chrome:
        print("SKIP: chromium is not installed (apt-get install chromium)")
        return 77
    if len(argv) >= 3 and argv[1] == "--self-test":
        outdir = argv[2]
        os.makedirs(outdir, exist_ok=True)
        bad = os.path.join(outdir, "bad.html")
        with open(bad, "w", encoding="utf-8") as f:
            f.write(BAD_PAGE)
        p = check(measure(chrome, bad, outdir))
        missed = [k for k, v in p.items() if not v]
        for k, v in p.items():
            print(f"self-test {k}: {len(v)} found" + (f" (first: {v[0]})" if v else ""))
        if missed:
            print("FAIL: the checks missed:", ", ".join(missed))
            return 1
        print("PASS: every planted problem found")
        return 0
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 1
    path, outdir = argv[1], argv[2]
    os.makedirs(outdir, exist_ok=True)
    m = measure(chrome, path, outdir)
    n_text = sum(len(s["texts"]) for s in m["svgs"])
    if len(m["svgs"]) < 5 or n_text < 50:
        print(f"FAIL: only {len(m['svgs'])} charts with {n_text} labels measured")
        return 1
    p = check(m)
    for k, v in p.items():
        for line in v:
            print(f"FAIL {k}: {line}")
    if len(argv) > 3:
        screenshots(chrome, path, m["height"], argv[3])
    n = sum(len(v) for v in p.values())
    print(f"{path}: {len(m['svgs'])} charts, {n_text} labels, {len(m['tables'])} tables, viewport {m['viewport']} px: "
          f"{len(p['clipped'])} clipped, {len(p['overlap'])} overlapping, {len(p['table'])} too wide")
    return 1 if n else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
