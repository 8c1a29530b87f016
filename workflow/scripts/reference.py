"""Rule `reference`: the collapsed-model reference run (funnel.collapsed), the yardstick for bias."""

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
    from funnel.experiments import ReferenceBatch
    from funnel.fitting import settings_from, settings_key
    from funnel.io import sha256_file

    settings = settings_from(smk.params, "nutpie", "noncentered", smk.threads)
    seed = int(smk.params.seed)
    print(f"reference run of {smk.wildcards.dataset}: {settings}, seed {seed}", flush=True)
    # funnel.batch's loop with a store beside the outputs (reference/.store): a rerun after a
    # deleted output takes the run from there.
    ReferenceBatch(
        data=load(smk.input.table, smk.input.provenance),
        settings=settings,
        trace=smk.output.trace,
        summary=smk.output.summary,
        key_parts=settings_key(settings, smk.wildcards.dataset, sha256_file(smk.input.table)),
        cache_dir=smk.params.compile_cache,
        log=lambda line: print(line, flush=True),
    ).run([seed])
