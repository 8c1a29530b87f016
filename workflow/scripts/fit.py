"""Rules `fit_batch<N>_<dataset>_<sampler>_<model>`: compile one model once, sample and diagnose a batch of seeds.

Finished seeds are kept in a store beside the outputs (funnel.batch), so a
rerun after Ctrl-C, a kill or a crash samples only the seeds that never finished.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from funnel.fitting import limit_blas_threads, use_compile_cache

limit_blas_threads()
use_compile_cache(snakemake.params.compile_cache)  # noqa: F821

from funnel.io import script_log

smk = snakemake  # noqa: F821
with script_log(smk.log[0]):
    from funnel.batch import Faults, run_batch, settings_key
    from funnel.datasets import load
    from funnel.diagnostics import fit_diagnostics, thresholds_from
    from funnel.fitting import BatchSampler, settings_from
    from funnel.io import seed_of, sha256_file

    # The seeds come from the output names, so batching never enters the params.
    seeds = [seed_of(p) for p in smk.output.traces]
    settings = settings_from(smk.params, smk.params.sampler, smk.params.model, smk.threads)
    print(f"dataset {smk.params.dataset}: {settings}; seeds {seeds}", flush=True)
    data = load(smk.input.table, smk.input.provenance)
    thresholds = thresholds_from(smk.params)
    run_batch(
        seeds=seeds,
        traces=smk.output.traces,
        records=smk.output.diagnostics,
        key_parts=settings_key(settings, smk.params.dataset, sha256_file(smk.input.table)),
        make_sampler=lambda: BatchSampler(data, settings),
        diagnose=lambda idata: fit_diagnostics(
            idata, data.track_group, thresholds, data.bias_groups, data.sigma_b_small
        ),
        chains=settings.chains,
        draws=settings.draws,
        on_error=smk.params.on_error,
        cache_dir=smk.params.compile_cache,
        faults=Faults.from_env(),
        trace_dtype=smk.params.trace_dtype,
        store_deterministics=bool(smk.params.store_deterministics),
        log=lambda line: print(line, flush=True),
    )
