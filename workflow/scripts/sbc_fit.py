"""Rules `sbc_batch<N>_<dataset>_<sampler>_<model>`: simulate, fit and rank a batch of SBC simulations.

The model is compiled once per job with y as data; every simulation draws its
parameters and y from the prior predictive on the dataset's design, is fitted,
and its ranks are recorded (funnel.sbc). Finished simulations are kept in a
store, so a rerun after Ctrl-C or a kill fits only the rest; a fit that raises
is recorded as failed.
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
    from funnel.batch import Faults
    from funnel.datasets import load
    from funnel.fitting import BatchSampler, settings_from
    from funnel.io import sha256_file, warn_user
    from funnel.limits import check_job_memory
    from funnel.sbc import FAIL_SIMULATIONS_ENV, SBCSettings, Simulator, prior_warning, run_sbc_batch, simulation_of
    from funnel.store import library_versions

    p = smk.params
    settings = SBCSettings(
        dataset=p.dataset,
        fit=settings_from(p, p.sampler, p.model, threads=1),
        rank_draws=int(p.rank_draws),
        thin=p.thin if p.thin == "ess" else int(p.thin),
    )
    # The simulations come from the output names, so batching never enters the params.
    indices = [simulation_of(path) for path in smk.output.records]
    print(f"{settings}; simulations {indices[0]}..{indices[-1]} ({len(indices)})", flush=True)
    warning = prior_warning(settings.fit.priors)
    if warning:
        warn_user(warning)
    data = load(smk.input.table, smk.input.provenance)
    check_job_memory(settings.fit, data, section="sbc")  # refuse before sampling a job that cannot fit
    run_sbc_batch(
        indices=indices,
        records=smk.output.records,
        traces=list(smk.output.traces),
        key_parts={
            "table_sha256": sha256_file(smk.input.table),
            "track_group": str(data.track_group),
            "versions": library_versions(),
        },
        settings=settings,
        make_fitter=lambda: (
            BatchSampler(data, settings.fit, mutable_y=True),
            Simulator.for_data(data, settings.fit.priors),
        ),
        data=data,
        cache_dir=p.compile_cache,
        fail_simulations=Faults.from_env(variable=FAIL_SIMULATIONS_ENV).fail_seeds,
        log=lambda line: print(line, flush=True),
    )
