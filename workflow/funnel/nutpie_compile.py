"""nutpie's compile of a PyMC model, with C callbacks that numba compiles faster.

nutpie hands its Rust sampler two numba ``cfunc`` callbacks: the log density with its gradient,
and the expansion of a draw into the model's variables. numba cannot cache them (they close over
the model's data), so every fit job compiles them anew. nutpie 0.16.8 writes their results with
``out[...] = grad`` and checks them with ``np.all(np.isfinite(out))``: numba then compiles its
generic fancy-indexing and ufunc code for those lines: radon's centered form compiles in 7.5 s with
nutpie's callbacks and in 4.6 s with these (docs/benchmarks.md, "nutpie's compile").

:func:`compile_model` builds the same two callbacks with element-by-element loops: the same values
written, the same return codes, the same draws (tests/test_nutpie_compile.py compares them with
nutpie's own, bit for bit). It does so only with the nutpie version they were checked against
(:data:`CHECKED_VERSION`); with any other version it compiles with nutpie's own callbacks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

# The nutpie release whose callbacks the lean ones reproduce (requirements.lock pins it).
CHECKED_VERSION = "0.16.8"


def lean_callbacks_apply(version: str) -> bool:
    """Whether :func:`compile_model` uses the lean callbacks with this nutpie ``version``."""
    return version == CHECKED_VERSION


def compile_model(model: Any) -> Any:
    """``nutpie.compile_pymc_model(model)``, with the lean callbacks where they were checked."""
    import nutpie

    if not lean_callbacks_apply(nutpie.__version__):
        return nutpie.compile_pymc_model(model)
    with lean_callbacks():
        return nutpie.compile_pymc_model(model)


@contextlib.contextmanager
def lean_callbacks() -> Iterator[None]:
    """nutpie builds its callbacks with :func:`make_logp_callback` and :func:`make_expand_callback`
    inside this block, and with its own again after it (also when the block raises)."""
    from nutpie import compile_pymc

    own = compile_pymc._make_c_logp_func, compile_pymc._make_c_expand_func
    compile_pymc._make_c_logp_func, compile_pymc._make_c_expand_func = make_logp_callback, make_expand_callback
    try:
        yield
    finally:
        compile_pymc._make_c_logp_func, compile_pymc._make_c_expand_func = own


def make_logp_callback(
    n_dim: int, logp_fn: Any, user_data: Any, shared_logp: Any, shared_data: Any
) -> tuple[Callable[..., int], Any]:
    """The log-density callback and its C signature, as nutpie 0.16.8's ``_make_c_logp_func``.

    Return codes as nutpie's: 0 fine, -1 wrong dimension, 1 an exception, 3 a non-finite gradient
    (the gradient is written first), 4 a non-finite log density.
    """
    import numba
    import numpy as np
    from nutpie.compile_pymc import make_extraction_fn

    extract = make_extraction_fn(logp_fn, shared_data, shared_logp, user_data.dtype)
    double_p = numba.types.CPointer(numba.types.double)
    signature = numba.types.int64(numba.types.uint64, double_p, double_p, double_p, numba.types.voidptr)

    def logp_callback(dim, x_, out_, logp_, user_data_):  # noqa: ANN001, ANN202 (numba types them)
        if dim != n_dim:
            return -1
        try:
            x = numba.carray(x_, (n_dim,))
            logp_val, grad = extract(x, user_data_)
            logp_[0] = logp_val
            if grad.shape[0] != n_dim:
                return 1
            finite = True
            for i in range(n_dim):
                out_[i] = grad[i]
                if not np.isfinite(grad[i]):
                    finite = False
            if not finite:
                return 3
            if not np.isfinite(logp_val):
                return 4
        except Exception:  # noqa: BLE001 (as nutpie's: any error is return code 1)
            return 1
        return 0

    return logp_callback, signature


def make_expand_callback(
    n_dim: int, n_expanded: int, expand_fn: Any, user_data: Any, shared_vars: Any, shared_data: Any
) -> tuple[Callable[..., int], Any]:
    """The draw-expansion callback and its C signature, as nutpie 0.16.8's ``_make_c_expand_func``.

    Return codes as nutpie's: 0 fine, -1 a wrong dimension, -2 an exception.
    """
    import numba
    from nutpie.compile_pymc import make_extraction_fn

    extract = make_extraction_fn(expand_fn, shared_data, shared_vars, user_data.dtype)
    double_p = numba.types.CPointer(numba.types.double)
    signature = numba.types.int64(numba.types.uint64, numba.types.uint64, double_p, double_p, numba.types.voidptr)

    def expand_callback(dim, expanded, x_, out_, user_data_):  # noqa: ANN001, ANN202 (numba types them)
        if dim != n_dim:
            return -1
        if expanded != n_expanded:
            return -1
        try:
            x = numba.carray(x_, (n_dim,))
            (values,) = extract(x, user_data_)
            if values.shape[0] != n_expanded:
                return -2
            for i in range(n_expanded):
                out_[i] = values[i]
        except Exception:  # noqa: BLE001 (as nutpie's: any error is return code -2)
            return -2
        return 0

    return expand_callback, signature
