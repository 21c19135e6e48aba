#!/usr/bin/env python3
"""check_report_html.py REPORT.html - the HTML report of test_report must be one self-contained,
well-formed document: balanced tags, no script, no external reference (only the SVG namespace
URI), at least five inline SVG charts each with a title, axis labels with units, the sections
the report promises, and the device name that tries HTML injection shown as text.
Exit 0 pass, 1 fail."""
import sys
from html.parser import HTMLParser

VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source"}
FORBIDDEN = {"script", "iframe", "object", "embed", "link", "img", "base", "frame", "applet"}


class Checker(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.count, self.text = [], [], {}, []
        self.svg_titles, self.in_svg_title = 0, False

    def check_attrs(self, tag, attrs):
        for k, v in attrs:
            v = v or ""
            if k.startswith("on"):
                self.errors.append(f"event handler attribute {k} on <{tag}>")
            if k == "xmlns":
                if v != "http://www.w3.org/2000/svg":
                    self.errors.append(f"unexpected namespace {v}")
                continue
            low = v.lower().replace(" ", "")
            if "http:" in low or "https:" in low or low.startswith("//") or "url(" in low or "@import" in low:
                self.errors.append(f"external reference {k}={v!r} on <{tag}>")

    def handle_starttag(self, tag, attrs):
        self.count[tag] = self.count.get(tag, 0) + 1
        if tag in FORBIDDEN:
            self.errors.append(f"<{tag}> element")
        self.check_attrs(tag, attrs)
        if tag == "title" and self.stack and self.stack[-1] == "svg":
            self.svg_titles += 1
        if tag == "title" and "head" in self.stack:
            self.count["head title"] = self.count.get("head title", 0) + 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.count[tag] = self.count.get(tag, 0) + 1
        if tag in FORBIDDEN:
            self.errors.append(f"<{tag}/> element")
        self.check_attrs(tag, attrs)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}> "
                               f"at line {self.getpos()[0]}")
            if tag in self.stack:
                while self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "style" and "@import" in data:
            self.errors.append("@import in <style>")
        self.text.append(data)


def main():
    if len(sys.argv) != 2:
        print("usage: check_report_html.py REPORT.html", file=sys.stderr)
        return 1
    with open(sys.argv[1], encoding="utf-8") as f:
        doc = f.read()
    c = Checker()
    c.feed(doc)
    c.close()
    errors = list(c.errors)
    if c.stack:
        errors.append(f"unclosed elements: {c.stack}")
    if not doc.lstrip().lower().startswith("<!doctype html>"):
        errors.append("no <!DOCTYPE html>")
    for tag in ("html", "head", "body", "head title"):
        if c.count.get(tag, 0) != 1:
            errors.append(f"{c.count.get(tag, 0)} <{tag}> elements, expected 1")
    n_svg = c.count.get("svg", 0)
    if n_svg < 5:
        errors.append(f"{n_svg} svg charts, expected at least 5")
    if c.svg_titles != n_svg:
        errors.append(f"{n_svg - c.svg_titles} svg charts without a title")
    text = " ".join(c.text)
    for needle in ("How to read this", "Tokens per joule", "Cost per million tokens",
                   "Throughput vs interactivity", "Power over time", "roofline", "Provenance",
                   "no power trace", "no price", "interactivity: output tokens/s per user", "power (W)",
                   "arithmetic intensity (FLOP/byte)", "output tokens/s per device",
                   "Decode batch sweep vs the bandwidth-bound ideal", "decode batch size B (sequences)",
                   "Time to first token vs prompt length", "time to first token, p50 (ms)",
                   "Relative to a reference device", "speedup over the reference device (×)",
                   "US$ per million input tokens", "US$ per million output tokens",
                   "US$ per million total tokens", "MISMATCH",
                   'Test CPU <script>alert(1)</script> & "co"'):
        if needle not in text:
            errors.append(f"text lacks {needle!r}")
    for e in errors:
        print("FAIL:", e)
    print(f"{sys.argv[1]}: {len(doc)} bytes, {n_svg} svg, {sum(c.count.values())} elements, "
          f"{len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
