"""Failures end on their message: the last lines of Snakemake's output say what to fix, with no
traceback (the job's log keeps the details), and a refused dataset leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, SNAKEMAKE, copy_config, radon, write_user_csv
from funnel.batch import BatchFailed, CompileCacheError
from funnel.config import ConfigError
from funnel.datasets import DataError
from funnel.errors import MARKER, end_on_failures, is_expected, marked_messages, removed_on_refusal
from funnel.radon import ChecksumError

LAST = 5


def terminal(workdir: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """Snakemake's exit status and its output as a terminal shows it (stdout and stderr interleaved)."""
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), "--cores", "2", *args]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a timeout ends Snakemake's jobs too
        env={**os.environ, "PYTHONHASHSEED": "0", **(env or {})},
    )
    try:
        out, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f"snakemake did not finish within 300 s:\n{out[-3000:]}") from None
    return proc.returncode, out.rstrip().splitlines()


def assert_ends_on(lines: list[str], *fragments: str) -> None:
    """The last LAST lines hold every fragment, and no traceback."""
    last = "\n".join(lines[-LAST:])
    for fragment in fragments:
        assert fragment in last, f"{fragment!r} not in the last {LAST} lines:\n{last}"
    assert "Traceback" not in last and 'File "' not in last, last


def user_config(workdir: Path, **columns: str) -> None:
    """config.yaml with the user's CSV as a dataset, fitted alone (run_datasets)."""
    write_user_csv(workdir)
    copy_config(workdir, datasets=user_dataset(**columns), run_datasets=["user"])


def user_dataset(**columns: str) -> dict:
    return {
        "user": {
            "source": "csv",
            "path": "data/user/plots.csv",
            "columns": {"group": "plot", "x": "dose", "y": "yield", **columns},
        }
    }


def test_a_missing_column_stops_before_any_job_on_its_message(workdir):
    user_config(workdir, y="maths")
    status, lines = terminal(workdir)
    assert status != 0
    assert_ends_on(
        lines,
        "column 'maths' (datasets.user.columns.y) is not in the table data/user/plots.csv; "
        "its columns are: plot, dose, yield, comment. Set columns.y to one of them.",
    )
    # Refused while Snakemake reads the workflow: no job ran, nothing was fetched or written.
    assert "Traceback" not in "\n".join(lines)
    assert not (workdir / "results").exists() and not (workdir / "data/user/source").exists()


def test_a_bad_config_key_ends_on_its_message(workdir):
    copy_config(workdir)
    status, lines = terminal(workdir, "-n", "--config", "fits=3")
    assert status != 0
    assert_ends_on(lines, "unknown config key 'fits'", "See config.yaml for what each key means.")
    assert lines[-1] == "See config.yaml for what each key means."
    assert not (workdir / "results").exists()


def test_a_table_refused_by_the_clean_rule_ends_on_its_message_and_leaves_only_its_logs(workdir):
    # The column exists (the parse-time check passes) but is not numeric: the clean rule refuses it.
    user_config(workdir, y="comment")
    status, lines = terminal(workdir)
    assert status != 0
    message = "dataset 'user': column 'comment' (columns.y) must be numeric"
    assert_ends_on(lines, message, "results/logs/user/clean.log")
    assert lines[-1].startswith(f"Error: {message}")
    # The job's log keeps the details: the traceback, then the marked message.
    log = (workdir / "results/logs/user/clean.log").read_text()
    assert "Traceback" in log and f"{MARKER}{message}" in log
    # Nothing of the dataset is left but its logs (and the user's own CSV).
    assert not (workdir / "results/user").exists()
    assert sorted(p.name for p in (workdir / "data/user").iterdir()) == ["plots.csv"]


@pytest.mark.slow
def test_a_failing_seed_ends_on_its_message(workdir):
    fit = {
        "seeds": [1],
        "batch_size": 1,
        "chains": 1,
        "tune": 20,
        "draws": 20,
        "samplers": ["nutpie"],
        "models": ["noncentered"],
    }
    copy_config(workdir, datasets=radon(source="embedded"), fit=fit)
    target = "results/radon/fits/nutpie/noncentered/seed1.json"
    status, lines = terminal(workdir, target, env={"FUNNEL_TEST_FAIL_SEEDS": "1"})
    assert status != 0
    assert_ends_on(
        lines,
        "results/logs/radon/fit/nutpie/noncentered/batch0.log",
        "1 seed(s) failed (seed 1: RuntimeError: injected fault for seed 1",
        "set fit.on_error: record",
    )


# ------------------------------------------------------------------ the library's side


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (DataError("x"), True),
        (ChecksumError("x"), True),
        (ConfigError("x"), True),
        (BatchFailed("x"), True),
        (CompileCacheError("x"), True),
        (RuntimeError("x"), False),
        (KeyError("x"), False),
        (KeyboardInterrupt(), False),
        (None, False),
    ],
)
def test_which_errors_are_expected(error, expected):
    assert is_expected(error) is expected


SCRIPT = """
import sys
sys.path.insert(0, {workflow!r})
from funnel.io import script_log
from funnel.{module} import {cls}
with script_log({log!r}):
    print("working")
    raise {cls}("line one\\nline two")
"""


# IncompleteFit: a RuntimeError that is not an expected error (a seed's, handled by the batch).
@pytest.mark.parametrize(
    ("module", "cls", "expected"), [("datasets", "DataError", True), ("batch", "IncompleteFit", False)]
)
def test_script_log_exits_on_an_expected_errors_message_without_a_traceback(tmp_path, module, cls, expected):
    log = tmp_path / "job.log"
    code = SCRIPT.format(workflow=str(ROOT / "workflow"), module=module, cls=cls, log=str(log))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    text = log.read_text()
    assert text.startswith("working\n") and "Traceback" in text  # the log keeps the details
    if expected:
        assert text.endswith(f"{MARKER}line one\n{MARKER}line two\n")
        assert "Traceback" not in proc.stderr
    else:
        assert MARKER not in text and "Traceback" in proc.stderr  # a bug keeps Python's report


def test_end_on_failures_prints_this_runs_messages_last(tmp_path, capsys):
    logs = tmp_path / "logs"
    (logs / "a").mkdir(parents=True)
    old = logs / "a" / "old.log"
    old.write_text(f"{MARKER}an earlier run's problem\n")
    past = time.time() - 60
    os.utime(old, (past, past))
    since = time.time() - 1
    (logs / "a" / "ok.log").write_text("all fine\n")
    (logs / "a" / "clean.log").write_text(f"details\n{MARKER}first line\n{MARKER}second line\n")
    assert marked_messages(logs, since) == [(logs / "a" / "clean.log", "first line\nsecond line")]
    # Snakemake's log of the run: two failed jobs, one of them without a message (a bug).
    snakemake_log = tmp_path / "run.snakemake.log"
    snakemake_log.write_text("Building DAG\n[date]\nError in rule clean:\n...\n[date]\nError in rule fit:\n")
    with pytest.raises(SystemExit) as stopped:
        end_on_failures(logs, since, [str(snakemake_log)])  # Snakemake passes a list
    assert stopped.value.code == 1
    err = capsys.readouterr().err.rstrip().splitlines()
    assert err[-3:] == [f"{logs / 'a' / 'clean.log'}:", "Error: first line", "second line"]
    assert "1 other job(s) failed: see their errors above." in err
    assert "an earlier run's problem" not in "\n".join(err)
    # No marked log (a bug, or nothing failed this way): Snakemake ends with its own report.
    assert end_on_failures(tmp_path / "empty", since) is None


def test_removed_on_refusal_removes_only_for_an_expected_error(tmp_path):
    folder = tmp_path / "source"
    folder.mkdir()
    (folder / "table.csv").write_text("a\n")
    with pytest.raises(RuntimeError), removed_on_refusal(folder):
        raise RuntimeError("a bug")
    assert folder.is_dir()
    with pytest.raises(DataError), removed_on_refusal(folder):
        raise DataError("refused")
    assert not folder.exists()
