"""Rule `clean`: the verified cleaning recipe, validated, written atomically."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from funnel.data import clean_source, write_clean
from funnel.io import script_log

smk = snakemake  # noqa: F821
with script_log(smk.log[0]):
    table, provenance = clean_source(smk.input[0], smk.params.transform)
    write_clean(table, provenance, smk.params.transform, smk.output.table, smk.output.provenance)
    print(
        f"{len(table)} homes, {table['county'].nunique()} counties, "
        f"transform {smk.params.transform}, source {provenance['source']}"
    )
