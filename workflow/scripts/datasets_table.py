"""Rule `datasets_table`: every dataset's summary, one row per dataset x sampler x form."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from funnel.io import script_log

smk = snakemake  # noqa: F821
with script_log(smk.log[0]):
    import pandas as pd
    from funnel.diagnostics import datasets_table
    from funnel.io import atomic_path

    table = datasets_table([pd.read_csv(p) for p in smk.input])
    with atomic_path(smk.output[0]) as tmp:
        table.to_csv(tmp, index=False)
    print(table.to_string(index=False))
