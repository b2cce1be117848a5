"""Open a report page in headless Chromium: are all its images drawn, do its links resolve, and
a full-page screenshot.

    python -m tfgan3d.tools.page_check runs/demo/index.html [--screenshot shot.png]
        [--expect TEXT ...] [--chromium PATH]

The page is loaded from the file system as a user would open it. A copy of it with a small
script (next to the page, removed afterwards) reports, after the load event, every <img> the
browser could not decode, the page's height and its text; relative links are checked against
the file system. Prints one JSON line; exits 1 when an image is broken, a link is dangling or an
expected text is missing. Needs Debian's `chromium` (`apt-get install -y chromium`).
"""
from __future__ import annotations

import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from tfgan3d import cli

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
_PROBE = """
<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !i.complete || i.naturalWidth === 0; })
                   .map(function (i) { return i.getAttribute('src'); });
  var pre = document.createElement('pre');
  pre.id = 'page-check-result';
  pre.textContent = JSON.stringify({images: imgs.length, broken: broken,
                                    height: document.documentElement.scrollHeight,
                                    text: document.body.innerText});
  document.body.appendChild(pre);
});
</script>
"""


def find_chromium(path=None) -> str | None:
    """The Chromium executable: `path`, $CHROMIUM, or the first of CANDIDATES on PATH."""
    for name in (path, os.environ.get("CHROMIUM"), *CANDIDATES):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "img" and attrs.get("src"):
            self.links.append(attrs["src"])


def dangling_links(page: Path) -> list[str]:
    """Relative links and image sources of the page whose files do not exist."""
    parser = _Links()
    parser.feed(page.read_text())
    missing = []
    for link in parser.links:
        parts = urlparse(link)
        if parts.scheme or link.startswith("#"):
            continue
        if not (page.parent / unquote(parts.path)).exists():
            missing.append(link)
    return missing


def _chromium(exe, args, timeout):
    base = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--allow-file-access-from-files", "--virtual-time-budget=5000"]
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(base + [f"--user-data-dir={profile}"] + args, capture_output=True,
                              text=True, timeout=timeout)


def check_page(page, *, screenshot=None, expect=(), chromium=None, width=1280,
               timeout=120) -> dict:
    """Loads `page` in headless Chromium; returns {images, broken, dangling, missing_text,
    height, screenshot, ok}.

    Raises:
        FileNotFoundError: the page or Chromium is missing (the message says which).
    """
    page = Path(page).resolve()
    if not page.is_file():
        raise FileNotFoundError(f"{page}: expected an HTML page, found nothing")
    exe = find_chromium(chromium)
    if exe is None:
        raise FileNotFoundError("chromium: expected a Chromium executable on PATH (apt-get "
                                "install -y chromium), found none")
    probe = page.with_name(f".page-check-{os.getpid()}.html")
    text = page.read_text()
    probe.write_text(text.replace("</body>", _PROBE + "</body>") if "</body>" in text
                     else text + _PROBE)
    try:
        done = _chromium(exe, ["--dump-dom", probe.as_uri()], timeout)
    finally:
        probe.unlink(missing_ok=True)
    match = re.search(r'<pre id="page-check-result">(.*?)</pre>', done.stdout, re.S)
    if not match:
        raise RuntimeError(f"chromium did not report on {page} (exit {done.returncode}): "
                           f"{done.stderr.strip()[-300:]}")
    import html as html_lib
    report = json.loads(html_lib.unescape(match.group(1)))
    page_text = report.pop("text")
    result = {"page": str(page), "images": report["images"], "broken": report["broken"],
              "dangling": dangling_links(page),
              "missing_text": [t for t in expect if t not in page_text],
              "height": report["height"]}
    if screenshot:
        screenshot = Path(screenshot).resolve()
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        height = max(600, min(int(report["height"]) + 40, 16000))
        _chromium(exe, [f"--screenshot={screenshot}", f"--window-size={width},{height}",
                        page.as_uri()], timeout)
        result["screenshot"] = str(screenshot) if screenshot.exists() else None
    result["ok"] = not (result["broken"] or result["dangling"] or result["missing_text"])
    return result


def main(argv=None):
    parser = cli.ArgumentParser(prog="tfgan3d-page-check", description=__doc__.split("\n")[0])
    parser.add_argument("page")
    parser.add_argument("--screenshot", help="write a full-page PNG here")
    parser.add_argument("--expect", nargs="*", default=[], help="texts the page must show")
    parser.add_argument("--chromium", help="Chromium executable (default: found on PATH)")
    args = parser.parse_args(argv)
    result = check_page(args.page, screenshot=args.screenshot, expect=args.expect,
                        chromium=args.chromium)
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
