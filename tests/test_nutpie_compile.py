"""The lean nutpie callbacks (funnel.nutpie_compile) against nutpie's own: values, codes, draws."""

from __future__ import annotations

import ctypes
import re

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from funnel import nutpie_compile
from funnel.datasets import model_data
from funnel.models import build_model

DOUBLE_P = ctypes.POINTER(ctypes.c_double)


def _toy_model():
    """Five groups of 3 to 11 rows, y held in a pm.Data container (a shared variable the callbacks
    read through nutpie's user data), non-centered: the expansion computes a and b."""
    rng = np.random.default_rng(7)
    group = np.repeat(list("abcde"), [3, 5, 7, 9, 11])
    x = rng.normal(size=group.size)
    y = 1.0 + 0.5 * x + rng.normal(0.0, 0.3, group.size)
    table = pd.DataFrame({"g": group, "x": x, "y": y})
    record = {"dataset": "toy", "track_group": "a", "bias_groups": [], "sigma_b_small": 0.1}
    data = model_data(table, {"group": "g", "x": "x", "y": "y"}, record)
    return build_model(data, "noncentered", "auto", mutable_y=True)


@pytest.fixture(scope="module")
def compiled():
    """The same model compiled by nutpie with its own callbacks, then with the lean ones."""
    import nutpie

    own = nutpie.compile_pymc_model(_toy_model())
    lean = nutpie_compile.compile_model(_toy_model())
    return own, lean


def test_the_locked_nutpie_is_the_checked_one_and_gets_the_lean_callbacks(compiled):
    import nutpie

    locked = re.search(r"^nutpie==(\S+)", (ROOT / "requirements.lock").read_text(), re.MULTILINE)
    assert locked and locked.group(1) == nutpie.__version__ == nutpie_compile.CHECKED_VERSION
    own, lean = compiled
    assert own.compiled_logp_func.__wrapped__.__name__ == "logp_numba"
    assert lean.compiled_logp_func.__wrapped__.__name__ == "logp_callback"
    assert lean.compiled_expand_func.__wrapped__.__name__ == "expand_callback"
    assert nutpie_compile.lean_callbacks_apply(nutpie_compile.CHECKED_VERSION)
    assert not nutpie_compile.lean_callbacks_apply("0.16.9")


def _logp(compiled, x: np.ndarray, dim: int | None = None) -> tuple[int, float, np.ndarray]:
    out, logp = np.full(x.size, -7.0), np.full(1, -7.0)
    code = compiled.compiled_logp_func.ctypes(
        x.size if dim is None else dim,
        x.ctypes.data_as(DOUBLE_P),
        out.ctypes.data_as(DOUBLE_P),
        logp.ctypes.data_as(DOUBLE_P),
        compiled.user_data.ctypes.data,
    )
    return code, float(logp[0]), out


def _expand(compiled, x: np.ndarray, dim: int | None = None, expanded: int | None = None):
    out = np.full(compiled.n_expanded, -7.0)
    code = compiled.compiled_expand_func.ctypes(
        x.size if dim is None else dim,
        compiled.n_expanded if expanded is None else expanded,
        x.ctypes.data_as(DOUBLE_P),
        out.ctypes.data_as(DOUBLE_P),
        compiled.user_data.ctypes.data,
    )
    return code, out


def test_the_lean_callbacks_return_nutpies_values_and_codes(compiled):
    own, lean = compiled
    n = own.n_dim
    assert lean.n_dim == n and lean.n_expanded == own.n_expanded
    rng = np.random.default_rng(3)
    for x in (rng.normal(size=n), rng.normal(size=n) * 3, np.zeros(n)):
        code, logp, grad = _logp(lean, x)
        assert (code, logp) == _logp(own, x)[:2] and code == 0 and np.isfinite(logp)
        np.testing.assert_array_equal(grad, _logp(own, x)[2])
        code, values = _expand(lean, x)
        assert code == 0 == _expand(own, x)[0]
        np.testing.assert_array_equal(values, _expand(own, x)[1])
        assert values.size > n  # the deterministics a and b are in it
    # A non-finite point: the gradient is written, then code 3, as nutpie's.
    nan = np.full(n, np.nan)
    assert _logp(lean, nan)[0] == _logp(own, nan)[0] == 3
    np.testing.assert_array_equal(_logp(lean, nan)[2], _logp(own, nan)[2])
    # A wrong dimension: -1, nothing read.
    x = np.zeros(n)
    assert _logp(lean, x, dim=n + 1)[0] == _logp(own, x, dim=n + 1)[0] == -1
    assert _expand(lean, x, dim=n - 1)[0] == _expand(own, x, dim=n - 1)[0] == -1
    assert _expand(lean, x, expanded=1)[0] == _expand(own, x, expanded=1)[0] == -1


def test_the_lean_callbacks_give_nutpies_draws_bit_for_bit(compiled):
    import nutpie

    own, lean = compiled
    runs = [nutpie.sample(c, chains=2, tune=150, draws=100, seed=11, progress_bar=False) for c in (own, lean)]
    assert set(runs[0].posterior.data_vars) == set(runs[1].posterior.data_vars) >= {"a", "b", "sigma_b"}
    for name in runs[0].posterior.data_vars:
        np.testing.assert_array_equal(runs[0].posterior[name].values, runs[1].posterior[name].values, name)
    for name in ("diverging", "step_size", "n_steps", "energy"):
        np.testing.assert_array_equal(runs[0].sample_stats[name].values, runs[1].sample_stats[name].values, name)


def test_nutpies_own_callbacks_are_back_after_the_block_even_when_it_raises():
    from nutpie import compile_pymc

    own = compile_pymc._make_c_logp_func, compile_pymc._make_c_expand_func
    with pytest.raises(RuntimeError, match="inside"), nutpie_compile.lean_callbacks():
        assert compile_pymc._make_c_logp_func is nutpie_compile.make_logp_callback
        assert compile_pymc._make_c_expand_func is nutpie_compile.make_expand_callback
        raise RuntimeError("inside")
    assert (compile_pymc._make_c_logp_func, compile_pymc._make_c_expand_func) == own
