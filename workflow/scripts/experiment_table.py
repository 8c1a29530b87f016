"""Rule `experiment_table`: all rows of a sweep, and its summary per level."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from funnel.io import script_log

smk = snakemake  # noqa: F821
with script_log(smk.log[0]):
    import pandas as pd
    from funnel.experiments import summarize_sweep
    from funnel.io import atomic_path

    rows = pd.concat([pd.read_csv(p) for p in smk.input], ignore_index=True)
    with atomic_path(smk.output.rows) as tmp:
        rows.to_csv(tmp, index=False)
    with atomic_path(smk.output.summary) as tmp:
        summarize_sweep(rows, smk.wildcards.experiment).to_csv(tmp, index=False)
    print(f"{len(rows)} fits")
