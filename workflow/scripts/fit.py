"""Rules `fit_batch<N>_<dataset>_<sampler>_<model>`: compile one model once, sample and diagnose a batch of seeds.

Finished seeds are kept in a store beside the outputs (funnel.batch, funnel.store),
verified before reuse, so a rerun after Ctrl-C, a kill or a crash samples only the
seeds that never finished.

One job per dataset (fit.smk: `maps` outputs) then writes the dataset's MAP
points too, in the process that has already imported PyMC, instead of a job of
their own that would import it again; they are stored as well, so a rerun of
the job does not compute them again.
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
    from funnel.batch import Faults, map_key_parts, run_batch, write_maps
    from funnel.diagnostics import fit_diagnostics, glm_diagnostics, thresholds_from
    from funnel.fitting import MAP_SEED, BatchSampler, map_estimate, settings_from, settings_key
    from funnel.io import seed_of, sha256_file
    from funnel.limits import check_job_memory
    from funnel.spec import load_spec

    # The seeds come from the output names, so batching never enters the params.
    seeds = [seed_of(p) for p in smk.output.traces]
    settings = settings_from(smk.params, smk.params.sampler, smk.params.model, smk.threads)
    print(f"dataset {smk.params.dataset}: {settings}; seeds {seeds}", flush=True)
    # The dataset's model: the columns shorthand's (radon's) or a formula's (funnel.spec).
    spec = load_spec(smk.input.table, smk.input.provenance, smk.params.priors)
    check_job_memory(settings, spec, section="fit")  # refuse before sampling a job that cannot fit
    thresholds = thresholds_from(smk.params)
    data = spec.data  # None for a formula model: its record is glm_diagnostics', and it has no MAP job yet
    table_sha256 = sha256_file(smk.input.table)
    run_batch(
        seeds=seeds,
        traces=smk.output.traces,
        records=smk.output.diagnostics,
        key_parts=settings_key(settings, smk.params.dataset, table_sha256),
        make_sampler=lambda: BatchSampler(spec if data is None else data, settings),
        diagnose=lambda idata: (
            glm_diagnostics(idata, spec, thresholds)
            if data is None
            else fit_diagnostics(idata, data.track_group, thresholds, data.bias_groups, data.sigma_b_small)
        ),
        chains=settings.chains,
        draws=settings.draws,
        on_error=smk.params.on_error,
        cache_dir=smk.params.compile_cache,
        faults=Faults.from_env(),
        trace_dtype=smk.params.trace_dtype,
        store_deterministics=bool(smk.params.store_deterministics),
        trace_compression=smk.params.trace_compression,
        log=lambda line: print(line, flush=True),
    )
    # The dataset's MAP points (results/<dataset>/map/<model>.json), if this job has them:
    # after the seeds, so that a failing MAP never costs a sampled seed.
    maps = smk.output.get("maps", [])
    if maps:
        write_maps(
            outputs={Path(path).stem: path for path in maps},
            key_parts=map_key_parts(smk.params.dataset, table_sha256, smk.params.priors, MAP_SEED),
            compute=lambda model: map_estimate(data, model, smk.params.priors, seed=MAP_SEED),
            cache_dir=smk.params.compile_cache,
            log=lambda line: print(line, flush=True),
        )
