"""Rule `download`: fetch one dataset's source into one verified directory."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from funnel.datasets import acquire
from funnel.io import script_log

smk = snakemake  # noqa: F821
with script_log(smk.log[0]):
    record = acquire(smk.wildcards.dataset, dict(smk.params.spec), smk.output[0])
    print(f"data source used: {record['source']} (requested {record['requested_source']})")
