"""Hostile input (issue 22): labels from a user's CSV never run code in the report, and stay text.

The end-to-end test runs the whole workflow (one small dataset, one sampler, one
seed, short chains) on a CSV whose group labels are HTML and script, quotes, a
``../`` path and ``NA``, then opens every page of the report in headless Chromium
(tests/browser.py) and checks that no script ran and every label reads as text.
The unit tests check the one escaping step, :mod:`funnel.escape`, on its own.
"""

from __future__ import annotations

import html
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, copy_config, run_snakemake
from funnel import escape

SCRIPT = "<script>document.title=31337</script>"
IMG = "<img src=x onerror=document.title=31338>"
QUOTES = "\"quoted\" & 'single'"
PATH = "../x"
NA = "NA"
LABELS = [SCRIPT, IMG, QUOTES, PATH, NA]
# The script's label is the smallest group, so it is the tracked one (the default track_group):
# the study found it raw in data.html, comparison.html, experiments.html and fit_*.html.
# The image's label is the largest group, which the data page names too.
SIZES = {SCRIPT: 4, IMG: 8, QUOTES: 6, PATH: 6, NA: 6}
PWNED_TITLES = {"31337", "31338"}


def render(markdown_text: str) -> str:
    """Markdown to HTML as nbconvert renders a notebook's Markdown output."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return markdown2html_mistune(markdown_text)


# ---------------------------------------------------------------- the escaping step
@pytest.mark.parametrize("label", LABELS)
def test_a_label_in_markdown_renders_as_text(label):
    for template in ("Tracked group **{}**.", "The column `{}`.", "- {}\n- next", "{}"):
        out = render(escape.markdown(template.format(label)))
        assert "<script" not in out and "<img" not in out, out
        assert html.escape(label, quote=False) in out.replace("&quot;", '"').replace("&#x27;", "'"), out


def test_unsafe_links_show_as_text_and_safe_ones_stay_links():
    out = render(escape.markdown("[a](javascript:alert(1)) [b]( JAVASCRIPT:x) [c](https://example.org/?a=1&b=2)"))
    assert 'href="javascript' not in out.lower() and "[a](javascript:alert(1))" in out
    assert out.count("<a ") == 1 and 'href="https://example.org/?a=1&amp;b=2"' in out
    reference = render(escape.markdown("x\n[r]: javascript:alert(1)\n\n[r]"))
    assert "<a " not in reference


def test_code_spans_keep_their_text_exactly():
    out = render(escape.markdown("`a_b*c<d>&e` and ``x`y``"))
    assert "<code>a_b*c&lt;d&gt;&amp;e</code>" in out and "<code>x`y</code>" in out


def test_html_text_escapes_quotes_for_attributes():
    assert escape.html_text("a'b\"c<d>&") == "a&#x27;b&quot;c&lt;d&gt;&amp;"


def test_md_and_show_table_escape_what_they_display(monkeypatch):
    import pandas as pd
    from funnel import notebook

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    notebook.md(f"Tracked group **{SCRIPT}**.")
    notebook.show_table(pd.DataFrame({IMG: [SCRIPT, QUOTES]}))
    markdown_out, table = shown[0].data, shown[1].data
    assert "<script" not in markdown_out and "&lt;script&gt;" in markdown_out
    assert "<script" not in table and "<img" not in table and "&lt;img src=x" in table


# ---------------------------------------------------------------- the whole report in Chromium
def hostile_csv(path: Path) -> Path:
    """y = a[g] + b[g] x + noise for the five hostile groups, written with csv quoting."""
    import csv

    import numpy as np

    rng = np.random.default_rng(22)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["site", "dose", "response"])
        for label, size in SIZES.items():
            a, b = rng.normal(5.0, 1.0), rng.normal(1.0, 0.3)
            for i in range(size):
                x = float(i % 3)
                writer.writerow([label, x, round(a + b * x + rng.normal(0, 0.5), 4)])
    return path


def hostile_config(workdir: Path) -> Path:
    hostile_csv(workdir / "data" / "hostile.csv")
    config = yaml.safe_load(copy_config(workdir).read_text())
    config["datasets"] = {
        "hostile": {
            "source": "csv",
            "path": "data/hostile.csv",
            "columns": {"group": "site", "x": "dose", "y": "response"},
            "priors": "auto",
        }
    }
    config["fit"].update(
        samplers=["nutpie"],
        seeds=[1],
        batch_size=1,
        chains=2,
        tune=150,
        draws=150,
    )
    config["report"]["draw_seeds"] = 1
    target = workdir / "config.yaml"
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target


# After load: what a script or handler would have changed, and the text a reader sees.
PAGE_JS = """
return {
  title: document.title,
  text: document.body ? document.body.innerText : "",
  onerror: document.querySelectorAll("[onerror]").length,
  scripts: Array.from(document.scripts).map((s) => s.text).filter((t) => t.includes("31337")).length,
};
"""


def check_pages(workdir: Path) -> dict[str, set[str]]:
    """Open every HTML page of a finished run in Chromium: no label's script ran or became markup.

    Returns, per page (relative to results/), the hostile labels a reader sees on it as text.
    """
    from browser import chromium

    results = workdir / "results"
    pages = sorted(p for p in results.rglob("*.html") if "logs" not in p.parts)
    seen: dict[str, set[str]] = {}
    with chromium() as driver:
        for page in pages:
            driver.get(page.as_uri())
            state = driver.execute_script(PAGE_JS)
            name = str(page.relative_to(results))
            assert state["title"] not in PWNED_TITLES, f"{name}: a label's script ran (title {state['title']!r})"
            assert state["onerror"] == 0 and state["scripts"] == 0, f"{name}: a label became markup: {state}"
            seen[name] = {label for label in LABELS if label in state["text"]}
    return seen


@pytest.mark.slow
def test_hostile_labels_never_run_in_the_report_and_show_as_text(tmp_path):
    from browser import chromium_unavailable

    reason = chromium_unavailable()
    if reason:
        pytest.skip(reason)
    workdir = tmp_path / "run"
    workdir.mkdir()
    hostile_config(workdir)
    run_snakemake(workdir, timeout=900)
    provenance = yaml.safe_load((workdir / "results/hostile/data/provenance.json").read_text())
    assert provenance["track_group"] == SCRIPT and provenance["groups"] == len(LABELS)  # NA is a label
    seen = check_pages(workdir)
    assert "report/index.html" in seen and len(seen) >= 6, sorted(seen)
    # The pages the study found unescaped show the tracked label as text, the data page the largest group's.
    for page in ("report/index.html", "hostile/report/data.html", "hostile/report/comparison.html"):
        assert SCRIPT in seen[page], (page, seen[page])
    assert any(SCRIPT in labels for name, labels in seen.items() if "/fit_" in name), seen
    assert IMG in seen["hostile/report/data.html"], seen["hostile/report/data.html"]


# ---------------------------------------------------------------- bounds that keep a run inside the machine
def test_the_schema_caps_every_count_that_sizes_a_job():
    from conftest import ROOT as root
    from funnel.config import ConfigError, load_schema, validate_config

    schema = load_schema(root / "workflow/schemas/config.schema.yaml")
    shipped = yaml.safe_load((root / "config.yaml").read_text())
    validate_config(shipped, schema)
    too_big = [
        ("fit", "chains", 100_000_000, "64"),
        ("fit", "draws", 10**9, "100000"),
        ("fit", "tune", 10**9, "100000"),
        ("fit", "batch_size", 10**6, "10000"),
        ("fit", "seeds", list(range(10_001)), "10000"),
        ("sbc", "chains", 65, "64"),
        ("sbc", "simulations", 10**7, "100000"),
        ("sbc", "batch_size", 10**6, "10000"),
    ]
    for section, key, value, cap in too_big:
        config = yaml.safe_load((root / "config.yaml").read_text())
        config[section][key] = value
        with pytest.raises(ConfigError, match=rf"{section}\.{key}.*{cap}"):
            validate_config(config, schema)


def test_chains_100000000_is_refused_at_start_up(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    copy_config(workdir, fit={"chains": 100_000_000})
    proc = run_snakemake(workdir, "--dry-run", check=False, timeout=120)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "fit.chains" in out and "64" in out, out[-3000:]
    assert "Traceback" not in out


def test_a_memory_estimate_counts_draws_chains_values_and_bytes():
    from funnel import limits

    small = limits.estimate(chains=4, tune=1000, draws=1000, n_groups=85)  # radon's shipped fit
    assert small.values_per_draw == 5 + 4 * 85 + limits.STAT_VALUES
    assert small.total == limits.BASE_BYTES + 3 * 4 * 2000 * small.values_per_draw * 8
    assert small.total < 2**30  # well under a GiB
    huge = limits.estimate(chains=64, tune=100_000, draws=100_000, n_groups=85)
    assert huge.total > 100 * 2**30  # inside the schema's caps, yet beyond most machines


def test_a_job_that_cannot_fit_is_refused_naming_the_figure_and_the_settings(tmp_path):
    from funnel import limits

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       25165824 kB\nMemFree:  100 kB\nMemAvailable:   8388608 kB\n")
    info = limits.read_meminfo(meminfo)
    assert info["MemTotal"] == 24 * 2**30 and info["MemAvailable"] == 8 * 2**30
    limits.check(limits.estimate(4, 1000, 1000, 85), info)  # fits: no error
    need = limits.estimate(64, 100_000, 100_000, 85)
    with pytest.raises(limits.MemoryLimitError) as error:
        limits.check(need, info, section="sbc")
    message = str(error.value)
    assert f"about {limits.gib(need.total)}" in message and "8.0 GiB available now of 24.0 GiB in all" in message
    assert "64 chains x 200000 iterations" in message and "Lower sbc.chains, sbc.draws or sbc.tune" in message
    # A container's limit counts when it is the lower figure.
    with pytest.raises(limits.MemoryLimitError, match=r"0.5 GiB available now .*this container's limit"):
        limits.check(limits.estimate(4, 1000, 1000, 85), info, cgroup=2**29)
    limits.check(need, {})  # nothing known: no refusal on a guess


@pytest.mark.slow
def test_the_fit_script_refuses_a_too_big_job_before_sampling(tmp_path):
    """A real fit job inside the schema's caps but beyond this machine: refused, its log says why."""
    from funnel import limits

    need = limits.estimate(64, 100_000, 100_000, 85)
    if (limits.available(limits.read_meminfo(), limits.cgroup_limit()) or 0) >= need.total:
        pytest.skip("this machine has the memory for the largest job the schema allows")
    workdir = tmp_path / "run"
    workdir.mkdir()
    config = yaml.safe_load(copy_config(workdir).read_text())
    config["datasets"] = {"radon": {"source": "embedded"}}
    config["fit"].update(
        samplers=["nutpie"], models=["centered"], seeds=[1], batch_size=1, chains=64, tune=100_000, draws=100_000
    )
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    proc = run_snakemake(workdir, "results/radon/fits/nutpie/centered/seed1.json", check=False, timeout=300)
    assert proc.returncode != 0
    logs = "".join(p.read_text() for p in (workdir / "results/logs").rglob("*.log"))
    assert "refused before sampling" in logs and "Lower fit.chains, fit.draws or fit.tune" in logs, logs[-3000:]
    assert not list((workdir / "results/radon/fits").rglob("seed1.nc"))


# ---------------------------------------------------------------- Ctrl-C and orphans
def _python(code: str, *args: str, argv0: str | None = None, **popen) -> subprocess.Popen[str]:
    """A Python process running ``code`` with this worktree's library (``argv0``: its name in ps)."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(ROOT / "workflow")}
    cmd = [sys.executable, "-c", code, *args]
    if argv0:  # bash's exec -a gives the process another argv[0], as Snakemake's own is "snakemake"
        cmd = ["bash", "-c", f'exec -a {argv0} "$0" "$@"', *cmd]
    # SIGINT at its default in the child, as a shell's foreground job has it: a pytest-xdist worker
    # ignores SIGINT, and a process started with it ignored keeps ignoring it (POSIX).
    popen.setdefault("preexec_fn", lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return subprocess.Popen(cmd, env=env, text=True, **popen)


def _wait_for(predicate, timeout: float, step: float = 0.1) -> bool:

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# A job that swallows Ctrl-C the way PyMC's sampler does (it returns the draws so far and goes on).
SWALLOWING_JOB = """
import sys, time
from funnel import io
io.HARD_STOP = 3.0
with io.script_log(sys.argv[1]):
    print("started", flush=True)
    while True:
        try:
            sum(i * i for i in range(10**5))
        except KeyboardInterrupt:
            print("swallowed", flush=True)
"""


def test_ctrl_c_stops_a_job_within_seconds_even_when_a_library_swallows_it(tmp_path):
    import time

    from funnel import io

    assert io.HARD_STOP <= 20  # the bound for Ctrl-C
    log = tmp_path / "job.log"
    proc = _python(SWALLOWING_JOB, str(log))
    try:
        assert _wait_for(lambda: log.is_file() and "started" in log.read_text(), 60)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        took = time.monotonic() - start
    finally:
        proc.kill()
    text = log.read_text()
    assert "swallowed" in text and "received SIGINT: stopping" in text, text
    assert "Thread" in text  # faulthandler's dump says where the job was stuck
    assert proc.returncode != 0 and took < 10, (proc.returncode, took)


# A fake Snakemake (its argv[0] says so) that starts a job which installs the watchdog, then waits.
FAKE_SNAKEMAKE = """
import subprocess, sys, time
child = subprocess.Popen([sys.argv[2], "-c", sys.argv[1]])  # sys.executable is lost with argv[0]
print(child.pid, flush=True)
time.sleep(600)
"""
WATCHED_JOB = """
import time
from funnel import io
watched = io.die_with_snakemake(poll=0.2, grace=2.0)
assert watched, "no Snakemake ancestor found"
time.sleep(600)
"""


def test_a_job_dies_with_the_snakemake_that_started_it():
    import subprocess

    parent = _python(FAKE_SNAKEMAKE, WATCHED_JOB, sys.executable, argv0="fake-snakemake", stdout=subprocess.PIPE)
    try:
        child = int(parent.stdout.readline())
        assert _wait_for(lambda: _alive(child), 5)

        time.sleep(3)  # the job's imports and its watchdog
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert _wait_for(lambda: not _alive(child), 5), "the job outlived its Snakemake"
    finally:
        parent.kill()


def test_a_job_script_whose_snakemake_is_already_gone_does_not_start(tmp_path):
    script = tmp_path / ".snakemake" / "scripts" / "tmpx.fit.py"
    script.parent.mkdir(parents=True)
    script.write_text("from funnel import io\nwith io.script_log(None):\n    print('ran')\n")
    import sys

    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "workflow"), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert proc.returncode != 0 and "ran" not in proc.stdout
    assert "the Snakemake process that started this job is gone" in proc.stderr


@pytest.mark.slow
def test_killing_snakemake_with_sigkill_stops_its_local_fit_jobs(tmp_path):
    """The issue's case: kill -9 of Snakemake used to leave its fit jobs running (and writing)."""
    import signal

    from conftest import SNAKEMAKE

    workdir = tmp_path / "run"
    workdir.mkdir()
    hostile_config(workdir)
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), "--cores", "2"]
    snakemake = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def fit_jobs() -> list[int]:
        jobs = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    cmdline = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if int(stat[1]) == snakemake.pid and b"fit.py" in cmdline:
                    jobs.append(int(entry.name))
        return jobs

    try:
        logs = workdir / "results/logs/hostile/fit"
        # A fit job has entered script_log (its log exists): its watchdog is on.
        assert _wait_for(lambda: bool(fit_jobs()) and any(logs.rglob("*.log")), 300, step=0.5)
        jobs = fit_jobs()
        os.kill(snakemake.pid, signal.SIGKILL)
        snakemake.wait(timeout=10)
        assert _wait_for(lambda: not any(_alive(pid) for pid in jobs), 15), "fit jobs outlived their Snakemake"
        said = "".join(log.read_text() for log in logs.rglob("*.log"))
        assert "that started this job is gone: stopping" in said, said[-2000:]
    finally:
        try:
            os.killpg(snakemake.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
