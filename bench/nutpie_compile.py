"""nutpie's compile of radon's model with the lean callbacks or with nutpie's own.

    .venv/bin/python bench/nutpie_compile.py --callbacks lean|own [--model centered|noncentered]

One fresh process compiles one form of radon's model (the embedded table, the blog's priors) for
nutpie, as a fit job does, with funnel.nutpie_compile's callbacks (``lean``) or with nutpie's own
(``own``), and prints the compile's wall seconds. Pair the two with farm-bench to time the whole
process too, e.g.

    farm-bench -n 5 --timeout 600 --vs ".venv/bin/python bench/nutpie_compile.py --callbacks own" \\
        -- .venv/bin/python bench/nutpie_compile.py --callbacks lean

The compile cache is the repository's .cache/compile (warm after a first run): the callbacks are
compiled anew in every process whatever the cache holds. This script prints figures; it asserts
nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callbacks", choices=("lean", "own"), required=True)
    parser.add_argument("--model", choices=("centered", "noncentered"), default="centered")
    args = parser.parse_args()

    from funnel import radon
    from funnel.datasets import model_data
    from funnel.fitting import limit_blas_threads, use_compile_cache

    limit_blas_threads()
    use_compile_cache(ROOT / ".cache" / "compile")
    import nutpie
    from funnel.models import build_model
    from funnel.nutpie_compile import compile_model

    with tempfile.TemporaryDirectory() as tmp:
        radon.acquire(radon.SourceSpec(source="embedded"), Path(tmp) / "src", log=lambda line: None)
        table = radon.clean_source(Path(tmp) / "src", "arm")[0]
    record = {"dataset": "radon", "track_group": "TRAVERSE", "bias_groups": [], "sigma_b_small": 0.1}
    model = build_model(model_data(table, radon.COLUMNS, record), args.model, "blog")
    start = time.perf_counter()
    compiled = compile_model(model) if args.callbacks == "lean" else nutpie.compile_pymc_model(model)
    seconds = time.perf_counter() - start
    callback = compiled.compiled_logp_func.__wrapped__.__name__
    print(f"{args.model}, callbacks {args.callbacks} ({callback}): compiled in {seconds:.2f} s")


if __name__ == "__main__":
    main()
