"""Rule `map`: the maximum a posteriori point of one parameterization."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from funnel.fitting import limit_blas_threads, use_compile_cache

limit_blas_threads()
use_compile_cache(snakemake.params.compile_cache)  # noqa: F821

from funnel.io import script_log

smk = snakemake  # noqa: F821
with script_log(smk.log[0]):
    from funnel.batch import compile_cache_guard
    from funnel.datasets import load
    from funnel.fitting import map_estimate
    from funnel.io import write_json

    data = load(smk.input.table, smk.input.provenance)
    with compile_cache_guard(smk.params.compile_cache):
        record = map_estimate(data, smk.wildcards.model, smk.params.priors)
    write_json(smk.output[0], record)
    print(record)
