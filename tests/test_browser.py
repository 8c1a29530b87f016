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


# ---------------------------------------------------------------- the index's first screen
FIRST_SCREEN_JS = """
const box = (selector) => { const r = document.querySelector(selector).getBoundingClientRect();
  return {top: r.top, bottom: r.bottom, width: r.width}; };
return {first: box(".first"), headline: box(".first .for-you"), verdict: box(".verdict .recommend"),
        figure: box(".verdict .figures img"), height: window.innerHeight, width: window.innerWidth,
        evidence_open: document.querySelector("details.evidence").open};
"""


def newcomer_index(root: Path) -> Path:
    """An index as the report writes it, for a dataset whose samplers disagree (MathAchieve-like records):
    the first screen, then the dataset's section opening on its verdict with the two funnel figures."""
    from funnel import index_page as I
    from funnel import verdict_text as T
    from test_advice import MATH_X, math_achieve_like, with_advice

    verdict = with_advice(math_achieve_like(), MATH_X)
    tables, pages = root / "trial" / "tables", root / "trial" / "report"
    (pages / "figures").mkdir(parents=True)
    tables.mkdir(parents=True)
    for name in I.FUNNEL_FIGURES:
        (pages / "figures" / f"{name}.png").write_bytes(png(1500, 900))
    (pages / "comparison.html").write_text(page("Comparison", "<h1>Centered vs non-centered</h1>"))
    (tables / "verdict.html").write_text(T.verdict_page(verdict))
    (tables / "verdict.md").write_text(T.verdict_markdown(verdict))
    (tables / "verdict.json").write_text("{}")
    index = root / "report" / "index.html"
    index.parent.mkdir()
    lead = I.verdict_section(
        verdict,
        str(index),
        verdict_page=str(tables / "verdict.html"),
        others=[str(tables / "verdict.md"), str(tables / "verdict.json")],
        figures={name: str(pages / "figures" / f"{name}.png") for name in I.FUNNEL_FIGURES},
        comparison=str(pages / "comparison.html"),
        sampler="pymc",
    )
    entries = [("Centered vs non-centered", I.relative_href(pages / "comparison.html", index), "the comparison")]
    index.write_text(
        I.index_page(
            "Funnel workflow: report",
            "Centered vs non-centered varying-intercept, varying-slope models, fitted and checked.",
            [I.IndexSection("Dataset trial: 586 rows, 160 groups", entries, lead, I.dataset_anchor("trial"))],
            first=I.first_screen(str(index), {"trial": (verdict, str(pages / "comparison.html"))}),
        )
    )
    return index


def test_the_first_screen_holds_the_plain_explanation_and_the_headline(chromium_ready, tmp_path):
    from browser import chromium

    index = newcomer_index(tmp_path)
    assert check_report(index) == []  # images load, links resolve, no console error
    shot = tmp_path / "first_screen.png"
    with chromium() as driver:
        driver.get(index.as_uri())
        # A 1280×900 viewport: the window's size includes the browser's own bars.
        inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
        size = driver.get_window_size()
        driver.set_window_size(size["width"] + 1280 - inner[0], size["height"] + 900 - inner[1])
        boxes = driver.execute_script(FIRST_SCREEN_JS)
        assert driver.save_screenshot(str(shot))
    assert (boxes["width"], boxes["height"]) == (1280, 900)
    # The plain explanation and what the verdict means for the model, within the first 900 pixels.
    assert 0 <= boxes["first"]["top"] and boxes["first"]["bottom"] <= 900, boxes
    assert boxes["headline"]["bottom"] <= 900, boxes
    # The dataset's own verdict headline follows the first screen; the evidence is folded.
    assert boxes["verdict"]["top"] >= boxes["first"]["bottom"] and boxes["evidence_open"] is False
    # The funnel figures are legible: far wider than the 400-pixel thumbnails they were.
    assert boxes["figure"]["width"] >= 900, boxes
    assert shot.read_bytes().startswith(PNG_SIGNATURE)
    text = index.read_text()
    assert "shaped like a <strong>funnel</strong>" in text and "<em>non-centered</em>" in text
    assert "For your model on <a href='#dataset-trial'>trial</a>: Use the non-centered form: it passes 8 of 8" in text
    assert "raise target_accept from 0.8 to 0.95 or more" in text
    assert "href='../trial/report/comparison.html'>See the two forms side by side</a>" in text
