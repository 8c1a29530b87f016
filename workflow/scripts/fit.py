"""Rules `fit_batch*`: compile one model once, sample and diagnose a batch of seeds."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from funnel.fitting import limit_blas_threads, use_compile_cache

limit_blas_threads()
use_compile_cache(snakemake.params.compile_cache)  # noqa: F821

from funnel.io import script_log

smk = snakemake  # noqa: F821
with script_log(smk.log[0]):
    from funnel.datasets import load
    from funnel.diagnostics import fit_diagnostics, thresholds_from
    from funnel.fitting import BatchSampler, settings_from, write_trace
    from funnel.io import seed_of, write_json

    # The seeds come from the output names, so batching never enters the params.
    seeds = [seed_of(p) for p in smk.output.traces]
    settings = settings_from(smk.params, smk.wildcards.sampler, smk.wildcards.model, smk.threads)
    print(f"dataset {smk.wildcards.dataset}: {settings}; seeds {seeds}", flush=True)
    data = load(smk.input.table, smk.input.provenance)
    batch = BatchSampler(data, settings)
    thresholds = thresholds_from(smk.params)
    for seed, trace_path, diag_path in zip(seeds, smk.output.traces, smk.output.diagnostics):
        print(f"seed {seed}: sampling...", flush=True)
        idata = batch.sample(seed)
        record = fit_diagnostics(idata, data.track_group, thresholds, data.bias_groups, data.sigma_b_small)
        write_trace(idata, trace_path)
        write_json(diag_path, record)
        print(
            f"seed {seed}: {record['sampling_seconds']:.1f} s, "
            f"{record['divergences']} divergences, R-hat max {record['rhat_max']:.3f}, "
            f"ESS bulk sigma_b {record['ess_bulk_sigma_b']:.0f}",
            flush=True,
        )
