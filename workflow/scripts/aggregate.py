"""Rule `aggregate`: one row per fit, a summary per (sampler, model), MAP vs mean."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from funnel.io import script_log

smk = snakemake  # noqa: F821
with script_log(smk.log[0]):
    from funnel.diagnostics import thresholds_from, write_tables
    from funnel.io import read_json

    write_tables(
        [read_json(p) for p in smk.input.diagnostics],
        [read_json(p) for p in smk.input.maps],
        dict(smk.output.items()),
        read_json(smk.input.reference[0])["estimands"] if smk.input.reference else None,
        thresholds_from(smk.params),
    )
