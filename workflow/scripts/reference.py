"""Rule `reference`: a long, careful non-centered run, the yardstick for bias."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from funnel.fitting import limit_blas_threads, use_compile_cache

limit_blas_threads()
use_compile_cache(snakemake.params.compile_cache)  # noqa: F821

from funnel.io import script_log

smk = snakemake  # noqa: F821
with script_log(smk.log[0]):
    from funnel.batch import compile_cache_guard, stop_on_signals
    from funnel.datasets import load
    from funnel.experiments import reference_run
    from funnel.fitting import settings_from, write_trace
    from funnel.io import write_json

    settings = settings_from(smk.params, "nutpie", "noncentered", smk.threads)
    print(f"reference run of {smk.wildcards.dataset}: {settings}, seed {smk.params.seed}", flush=True)
    data = load(smk.input.table, smk.input.provenance)
    with compile_cache_guard(smk.params.compile_cache), stop_on_signals():
        idata, summary = reference_run(data, settings, int(smk.params.seed))
    write_trace(idata, smk.output.trace)
    write_json(smk.output.summary, summary)
    d = summary["diagnostics"]
    print(
        f"reference: {d['divergences']} divergences, R-hat max {d['rhat_max']:.4f}, "
        f"ESS bulk sigma_b {d['ess_bulk_sigma_b']:.0f}, "
        f"E[sigma_b] {d['mean_sigma_b']:.4f} +- {d['mcse_mean_sigma_b']:.4f} (MCSE)"
    )
