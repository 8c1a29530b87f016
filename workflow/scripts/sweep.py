"""Rule `sweep`: one (sampler, model) across the levels and seeds of an experiment.

The main fits that a level repeats exactly (same sampler, model, seed and
settings) are inputs of the rule: their diagnostics are read, not refitted.
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
    from funnel.datasets import load
    from funnel.diagnostics import thresholds_from
    from funnel.experiments import rows_sweep, target_accept_sweep
    from funnel.fitting import settings_from
    from funnel.io import atomic_path, read_json, seed_of

    settings = settings_from(smk.params, smk.wildcards.sampler, smk.wildcards.model, smk.threads)
    target_accept = smk.wildcards.experiment == "target_accept"
    cast = float if target_accept else int
    # A main fit recorded as failed (fit.on_error: record) is not reused: the sweep fits that seed itself.
    records = {seed_of(path): read_json(path) for path in smk.input.fits}
    known = {
        (cast(smk.params.reused_level), seed): record
        for seed, record in records.items()
        if record.get("status", "ok") == "ok"
    }
    common = dict(
        data=load(smk.input.table, smk.input.provenance),
        settings=settings,
        seeds=[int(s) for s in smk.params.seeds],
        thresholds=thresholds_from(smk.params),
        known=known,
        cache_dir=smk.params.compile_cache,
    )
    # funnel.batch's loop: Ctrl-C stops it at once, a failed fit fails the job after the others.
    if target_accept:
        reference = read_json(smk.input.reference[0])["estimands"] if smk.input.reference else None
        rows = target_accept_sweep(levels=[float(v) for v in smk.params.levels], reference=reference, **common)
    else:
        rows = rows_sweep(factors=[int(v) for v in smk.params.levels], **common)
    with atomic_path(smk.output[0]) as tmp:
        rows.to_csv(tmp, index=False)
