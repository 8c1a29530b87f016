"""Open the HTML report in real headless Chromium and check it as a reader would.

:func:`check_report` loads ``index.html`` and every local HTML page it links,
recursively, and lists what a reader would trip over: images that do not load
(``naturalWidth`` 0), links to local files that do not exist, and console
errors (level SEVERE). Links to ``#anchors``, http(s), mailto and other
non-file URLs are not followed.

External hosts are made unresolvable (``--host-resolver-rules``), so the check
never waits on, or depends on, the network: a page's http(s) scripts and
styles (nbconvert's template asks a CDN for require.js and MathJax) fail at
once, and the console lines of those failures are not counted as problems.
An error that their absence causes in the page's own scripts still is, and so
is an http(s) <img>: the report is meant to read offline.

Chromium and chromedriver come from Debian (packages ``chromium`` and
``chromium-driver``); :func:`chromium_unavailable` installs them when missing
and possible, as tests/slurm/minicluster.py does for SLURM. Used by
tests/test_browser.py; also runnable by hand:

    python tests/browser.py results/report/index.html [SCREENSHOT.png]
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urlsplit
from urllib.request import url2pathname

from apt import apt_install

PACKAGES = ["chromium", "chromium-driver"]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without the background-networking flags Chromium floods the log with refused connections.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--window-size=1280,900",
]
PAGE_TIMEOUT = 60  # seconds for one page (and its images) to load
SCREENSHOT_MAX_HEIGHT = 8000  # pixels: the index's screenshot is full-page up to this
HTML_SUFFIXES = {".html", ".htm"}
# "https://cdn.example/x.js - Failed to load resource: net::ERR_NAME_NOT_RESOLVED"
EXTERNAL_LOAD_FAILURE = re.compile(r"^https?://\S+ - Failed to load resource: net::ERR_")

# Waits for every <img> to finish (load or error); returns what the reader got.
IMAGES_JS = """
const done = arguments[arguments.length - 1];
const images = Array.from(document.images);
images.forEach((img) => { if (img.loading === "lazy") img.loading = "eager"; });
const settled = (img) => img.complete ? Promise.resolve() : new Promise((resolve) => {
  img.addEventListener("load", resolve, { once: true });
  img.addEventListener("error", resolve, { once: true });
});
Promise.all(images.map(settled)).then(() => done(images.map((img) => ({
  src: img.getAttribute("src") || "", url: img.currentSrc || img.src, width: img.naturalWidth,
}))));
"""
LINKS_JS = """
return Array.from(document.querySelectorAll("a[href]")).map((a) => ({href: a.getAttribute("href"), url: a.href}));
"""


@functools.cache
def chromium_unavailable(timeout: float = 900) -> str | None:
    """Install Debian's chromium and chromium-driver if needed. None when usable, else why not."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the Python package selenium is not installed (pip install -e '.[test]')"
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if not missing:
        return None
    reason = apt_install(PACKAGES, f"{' and '.join(missing)} missing", timeout)
    if reason:
        return reason
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        return f"installed {' '.join(PACKAGES)} but {' and '.join(missing)} still missing"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium WebDriver with a fresh profile and console logging; quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in [*FLAGS, f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        try:
            driver.set_page_load_timeout(PAGE_TIMEOUT)
            driver.set_script_timeout(PAGE_TIMEOUT)
            yield driver
        finally:
            driver.quit()


def local_path(url: str) -> Path | None:
    """The file a file:// URL points to (fragment and query dropped); None for other schemes."""
    parts = urlsplit(urldefrag(url).url)
    if parts.scheme != "file":
        return None
    return Path(url2pathname(parts.path))


def _is_checked_link(href: str) -> bool:
    """Whether an href (as written) is to be checked: neither empty, an #anchor, nor an http(s)/mailto URL."""
    href = href.strip()
    return bool(href) and not href.startswith("#") and urlsplit(href).scheme.lower() not in {"http", "https", "mailto"}


def _short(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_page(driver: Any, page: Path) -> tuple[list[str], list[Path]]:
    """Open one page: its problems and the local HTML pages it links (existing ones only)."""
    driver.get_log("browser")  # drop whatever an earlier page left
    driver.get(page.as_uri())
    problems = []
    for img in driver.execute_async_script(IMAGES_JS):
        if not img["width"]:
            problems.append(f"image does not load: {_short(img['src'] or img['url'])}")
    pages = []
    for link in driver.execute_script(LINKS_JS):
        if not _is_checked_link(link["href"]):
            continue
        target = local_path(link["url"])
        if target is None:  # javascript:, data:, ftp: ... nothing on disk to check
            continue
        if not target.exists():
            problems.append(f"link to a missing file: {link['href']} ({target})")
        elif target.is_file() and target.suffix.lower() in HTML_SUFFIXES:
            pages.append(target.resolve())
    for entry in driver.get_log("browser"):
        if entry.get("level") == "SEVERE" and not EXTERNAL_LOAD_FAILURE.match(entry.get("message", "")):
            problems.append(f"console error: {entry['message']}")
    return problems, pages


def screenshot_page(driver: Any, path: Path) -> None:
    """Save the current page as a PNG, full height up to SCREENSHOT_MAX_HEIGHT pixels."""
    size = driver.get_window_size()
    # The window's height includes the browser's own bars: add them to the page's.
    page, viewport = driver.execute_script("return [document.documentElement.scrollHeight, window.innerHeight]")
    height = size["height"] - int(viewport) + min(int(page), SCREENSHOT_MAX_HEIGHT)
    driver.set_window_size(size["width"], max(height, size["height"]))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not driver.save_screenshot(str(path)):
            raise RuntimeError(f"Chromium could not save a screenshot to {path}")
    finally:
        driver.set_window_size(size["width"], size["height"])


def check_report(index: Path, screenshot: Path | None = None) -> list[str]:
    """Problems a reader of ``index`` and every local page it links would meet ([] if none).

    Each problem is one line prefixed by the page's path relative to the index's
    folder. With ``screenshot``, the index is also saved there as a PNG.
    """
    index = Path(index).resolve()
    if not index.is_file():
        return [f"{index}: no such file"]
    root = index.parent

    def name(page: Path) -> str:
        return str(page.relative_to(root)) if page.is_relative_to(root) else str(page)

    problems: list[str] = []
    queue, seen = [index], {index}
    with chromium() as driver:
        while queue:
            page = queue.pop(0)
            found, linked = check_page(driver, page)
            problems += [f"{name(page)}: {problem}" for problem in found]
            if page == index and screenshot is not None:
                screenshot_page(driver, Path(screenshot))
            for target in linked:
                if target not in seen:
                    seen.add(target)
                    queue.append(target)
    return problems


if __name__ == "__main__":
    import sys

    if len(sys.argv) not in (2, 3):
        sys.exit(f"usage: {sys.argv[0]} INDEX.html [SCREENSHOT.png]")
    reason = chromium_unavailable()
    if reason:
        sys.exit(reason)
    found = check_report(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) == 3 else None)
    print("\n".join(found) or "no problems")
    sys.exit(1 if found else 0)
