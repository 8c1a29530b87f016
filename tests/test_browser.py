"""The HTML report read in real headless Chromium (tests/browser.py): images load, links resolve, no errors."""

from __future__ import annotations

import struct
import zlib
from fnmatch import fnmatch
from pathlib import Path

import pytest
from browser import check_report, chromium_unavailable

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def chromium_ready() -> None:
    """Skip unless Chromium, chromedriver and selenium are there (installed with apt-get if need be)."""
    reason = chromium_unavailable()
    if reason:
        pytest.skip(reason)


def png(width: int = 4, height: int = 3) -> bytes:
    """A valid RGB PNG of one colour, written by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x20\x80\xc0" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def page(title: str, body: str) -> str:
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head><body>{body}</body></html>\n"


def write_report(root: Path, extra_index: str = "", extra_page: str = "") -> Path:
    """A tiny report: index.html links pages/one.html, which shows figures/dot.png and links back.

    ``extra_index`` and ``extra_page`` are HTML appended to the two pages' bodies.
    """
    (root / "figures").mkdir(parents=True)
    (root / "pages").mkdir()
    (root / "figures" / "dot.png").write_bytes(png())
    (root / "data.csv").write_text("a,b\n1,2\n")
    index = root / "index.html"
    index.write_text(
        page(
            "Report",
            "<h1 id='top'>Report</h1><ul>"
            "<li><a href='pages/one.html'>One page</a> (<a href='pages/one.html#figure'>its figure</a>)</li>"
            "<li><a href='data.csv'>the data</a></li>"
            "<li><a href='#top'>top</a>, <a href='https://example.org/x.html'>elsewhere</a>, "
            "<a href='mailto:someone@example.org'>mail</a></li></ul>"
            # Like nbconvert's CDN scripts: blocked by the checker, and not counted.
            "<script src='https://cdn.example.org/lib.js'></script>" + extra_index,
        )
    )
    (root / "pages" / "one.html").write_text(
        page(
            "One",
            "<h1>One page</h1><img id='figure' src='../figures/dot.png' alt='a dot'>"
            "<p><a href='../index.html'>back to the index</a></p>" + extra_page,
        )
    )
    return index


def test_a_sound_report_has_no_problems_and_gets_a_screenshot(chromium_ready, tmp_path):
    index = write_report(tmp_path / "report")
    screenshot = tmp_path / "report" / "index.png"
    assert check_report(index, screenshot) == []
    assert screenshot.read_bytes().startswith(PNG_SIGNATURE)


def test_a_missing_index_is_a_problem(chromium_ready, tmp_path):
    problems = check_report(tmp_path / "index.html")
    assert len(problems) == 1 and "no such file" in problems[0]


@pytest.mark.parametrize(
    ("where", "html", "expected"),
    [
        ("page", "<img src='../figures/missing.png'>", "pages/one.html: image does not load: ../figures/missing.png"),
        ("page", "<img src='../data.csv'>", "pages/one.html: image does not load: ../data.csv"),  # there, not a PNG
        ("index", "<img src='data:image/png;base64,AAAA'>", "index.html: image does not load: data:image/png"),
        ("index", "<a href='pages/two.html'>two</a>", "index.html: link to a missing file: pages/two.html"),
        (
            "page",
            "<a href='nowhere/table.csv#row'>table</a>",
            "pages/one.html: link to a missing file: nowhere/table.csv",
        ),
        ("page", "<script>console.error('boom')</script>", "pages/one.html: console error: *boom"),
        ("index", "<script>throw new Error('kaboom')</script>", "index.html: console error: *kaboom"),
        ("index", "<script src='missing.js'></script>", "index.html: console error: *missing.js"),
    ],
    ids=[
        "missing-image",
        "not-an-image",
        "corrupt-inline-image",
        "dangling-page-link",
        "dangling-file-link",
        "console-error",
        "uncaught-error",
        "missing-script",
    ],
)
def test_each_kind_of_problem_is_reported(chromium_ready, tmp_path, where, html, expected):
    index = write_report(tmp_path, **{f"extra_{where}": html})
    problems = check_report(index)
    assert any(fnmatch(problem, expected + "*") for problem in problems), problems


@pytest.mark.slow
def test_the_real_report_reads_cleanly(chromium_ready, small_run):
    report = small_run / "results" / "report"
    screenshot = report / "index.png"
    assert check_report(report / "index.html", screenshot) == []
    assert screenshot.read_bytes().startswith(PNG_SIGNATURE)
