"""Rule `aggregate_formula`: a formula dataset's fits table and its summary per sampler and form."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from funnel.io import script_log

smk = snakemake  # noqa: F821
with script_log(smk.log[0]):
    from funnel.datasets import formula_scales
    from funnel.diagnostics import thresholds_from, write_glm_tables
    from funnel.io import read_json

    write_glm_tables(
        [read_json(p) for p in smk.input.diagnostics],
        formula_scales(read_json(smk.input.provenance)),
        dict(smk.output.items()),
        thresholds_from(smk.params),
    )
