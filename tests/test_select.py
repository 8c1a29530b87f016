"""Which datasets a run fits (config `run_datasets`), end to end through Snakemake's dry run."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, copy_config, run_snakemake
from funnel.config import ConfigError
from funnel.prechecks import select_datasets

RECIPE_SECTION = "## Your own data"


def planned(proc: subprocess.CompletedProcess[str]) -> set[str]:
    """The datasets of a dry run's jobs: their {dataset} wildcards and fit rules' names."""
    text = proc.stdout + proc.stderr
    datasets = set(re.findall(r"wildcards: .*?\bdataset=(\w+)", text))
    datasets |= set(re.findall(r"^fit_batch\d+_(\w+?)_(?:pymc|nutpie)_", text, re.M))
    return datasets


def job_text(proc: subprocess.CompletedProcess[str]) -> str:
    """A dry run's output without the lines that echo the command line and the config files."""
    lines = (proc.stdout + proc.stderr).splitlines()
    return "\n".join(x for x in lines if not x.lstrip().startswith(("Command:", "Config file")))


def write_csv(workdir: Path, path: str, columns: dict[str, str]) -> None:
    target = workdir / path
    target.parent.mkdir(parents=True, exist_ok=True)
    rows = [f"g{i % 4},{i % 3},{1.5 * i}" for i in range(24)]
    target.write_text(",".join([columns["group"], columns["x"], columns["y"]]) + "\n" + "\n".join(rows) + "\n")


def readme_recipe() -> tuple[str, list[str]]:
    """The YAML block and the snakemake command of README.md's "Your own data", as written."""
    text = (ROOT / "README.md").read_text()
    assert f"\n{RECIPE_SECTION}\n" in text, f"README.md has no section {RECIPE_SECTION!r}"
    section = text.split(f"\n{RECIPE_SECTION}\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    command = re.search(r"`(?:\.venv/bin/)?snakemake (--configfile [^`]+)`", section)
    assert block and command, "the recipe's YAML block or its `snakemake --configfile ...` command is missing"
    return block.group(1), shlex.split(command.group(1))


def test_the_readme_recipe_fits_only_that_dataset(workdir):
    """README.md's "fit your dataset alone" recipe, run exactly as written (dry run):
    only its dataset is planned, although config.yaml still configures radon."""
    block, args = readme_recipe()
    copy_config(workdir)  # the shipped config.yaml, with radon
    at = args.index("--configfile") + 1
    (workdir / args[at]).write_text(block)
    args[at] = str(workdir / args[at])  # the user runs it where the file is; the tests from the checkout
    recipe = yaml.safe_load(block)
    names = list(recipe["datasets"])
    for name in names:
        spec = recipe["datasets"][name]
        if spec.get("source") == "csv":
            write_csv(workdir, spec["path"], spec["columns"])
    proc = run_snakemake(workdir, "-n", *args)
    assert planned(proc) == set(names), job_text(proc)
    assert "radon" not in job_text(proc)


def test_run_datasets_on_the_command_line_picks_a_subset(workdir):
    copy_config(workdir)
    preset = ["--configfile", str(ROOT / "workflow/presets/datasets.yaml")]
    both = run_snakemake(workdir, "-n", *preset)
    assert planned(both) == {"radon", "sleepstudy"}  # the preset adds sleepstudy beside radon
    # ... and says so, with the way to fit it alone.
    assert "Note: this run fits radon (from config.yaml) beside sleepstudy" in both.stderr
    assert "set `run_datasets: [sleepstudy]` in your file" in both.stderr
    alone = run_snakemake(workdir, "-n", *preset, "--config", "run_datasets=[sleepstudy]")
    assert planned(alone) == {"sleepstudy"} and "radon" not in job_text(alone)
    assert "Note: this run fits" not in alone.stderr
    # A bare name (or a comma-separated list) works too.
    bare = run_snakemake(workdir, "-n", *preset, "--config", "run_datasets=sleepstudy")
    assert planned(bare) == {"sleepstudy"}
    listed = run_snakemake(workdir, "-n", *preset, "--config", "run_datasets=radon,sleepstudy")
    assert planned(listed) == {"radon", "sleepstudy"}


def test_a_dataset_left_out_is_not_checked(workdir):
    """A configured dataset that this run does not fit may be broken: it is not read at all."""
    copy_config(workdir)
    mine = {
        "run_datasets": ["radon"],
        "datasets": {
            "later": {"source": "csv", "path": "data/not_yet.csv", "columns": {"group": "g", "x": "x", "y": "y"}}
        },
    }
    mine_yaml = workdir / "mine.yaml"
    mine_yaml.write_text(yaml.safe_dump(mine))
    proc = run_snakemake(workdir, "-n", "--configfile", str(mine_yaml))
    assert planned(proc) == {"radon"}
    # Selected, the same dataset is refused before any job, naming its missing file.
    proc = run_snakemake(workdir, "-n", "--configfile", str(mine_yaml), "--config", "run_datasets=[later]", check=False)
    assert proc.returncode != 0
    assert "data/not_yet.csv does not exist" in proc.stderr.strip().splitlines()[-1]


def test_an_unknown_name_in_run_datasets_is_refused(workdir):
    copy_config(workdir)
    proc = run_snakemake(workdir, "-n", "--config", "run_datasets=[radom]", check=False)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "run_datasets names 'radom', which is not a dataset of the configuration (datasets: radon)" in last
    assert not (workdir / "results").exists() and not (workdir / "data").exists()


def test_select_datasets_keeps_the_order_asked_and_defaults_to_all():
    datasets = {"radon": {}, "sleepstudy": {}, "plots": {}}
    assert list(select_datasets(datasets, [])) == ["radon", "sleepstudy", "plots"]
    assert list(select_datasets(datasets, None)) == ["radon", "sleepstudy", "plots"]
    assert list(select_datasets(datasets, ["plots", "radon"])) == ["plots", "radon"]
    assert list(select_datasets(datasets, "plots, radon")) == ["plots", "radon"]
    with pytest.raises(ConfigError, match=r"'a', 'b', which are not datasets"):
        select_datasets(datasets, ["a", "b"])


def test_the_parse_time_csv_check_refuses_only_a_column_no_reading_finds(tmp_path, monkeypatch):
    from funnel.datasets import DataError
    from funnel.prechecks import check_csv

    monkeypatch.chdir(tmp_path)
    spec = {"source": "csv", "path": "t.csv", "columns": {"group": "school", "x": "ses", "y": "math"}}
    for header in ("school,ses,math", '\ufeff"school","ses","math"', "school;ses;math", "school\tses\tmath"):
        (tmp_path / "t.csv").write_text(f"{header}\n1,2,3\n", encoding="utf-8")
        check_csv("mine", spec)  # every delimiter the table could be read with: left to the clean rule
    (tmp_path / "t.csv").write_text("school;ses;maths\n1;2;3\n")
    with pytest.raises(
        DataError,
        match=r"column 'math' \(datasets.mine.columns.y\) is not in the table t.csv; "
        r"its columns are: school, ses, maths\. Set columns.y",
    ):
        check_csv("mine", spec)
    with pytest.raises(DataError, match=r"missing.csv does not exist \(datasets.mine.path is relative"):
        check_csv("mine", {**spec, "path": "missing.csv"})


def test_a_full_copy_of_config_yaml_with_its_datasets_replaced(workdir):
    """The trap of issue 24: a copy of config.yaml whose radon entry is replaced, passed with
    --configfile, is merged over config.yaml, so radon is fitted too; the run says so and how
    to fit the copy's dataset alone (run_datasets, or Snakemake's --replace-workflow-config)."""
    copy_config(workdir)
    write_csv(workdir, "data/plots.csv", {"group": "plot", "x": "dose", "y": "yield"})
    copy = yaml.safe_load((ROOT / "config.yaml").read_text())
    copy["datasets"] = {
        "plots": {"source": "csv", "path": "data/plots.csv", "columns": {"group": "plot", "x": "dose", "y": "yield"}}
    }
    mine = workdir / "mine.yaml"
    mine.write_text(yaml.safe_dump(copy, sort_keys=False))
    merged = run_snakemake(workdir, "-n", "--configfile", str(mine))
    assert planned(merged) == {"radon", "plots"}
    assert "Note: this run fits radon (from config.yaml) beside plots" in merged.stderr
    assert "set `run_datasets: [plots]` in your file (or pass --config run_datasets=[plots])" in merged.stderr
    replaced = run_snakemake(workdir, "-n", "--configfile", str(mine), "--replace-workflow-config")
    assert planned(replaced) == {"plots"} and "Note: this run fits" not in replaced.stderr
