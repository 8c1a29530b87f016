"""Rule `download`: fetch the radon data into one verified directory."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from funnel.data import SourceSpec, acquire
from funnel.io import script_log

smk = snakemake  # noqa: F821
with script_log(smk.log[0]):
    spec = SourceSpec(
        source=smk.params.source,
        mirrors=tuple(smk.params.mirrors),
        local_dir=smk.params.local_dir,
        timeout=float(smk.params.timeout),
        retries=int(smk.params.retries),
    )
    record = acquire(spec, smk.output[0])
    print(f"data source used: {record['source']} (requested {record['requested_source']})")
