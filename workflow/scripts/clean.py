"""Rule `clean`: one dataset's table, checked, with its provenance, written atomically."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from funnel.datasets import clean, clean_summary, write_clean
from funnel.errors import removed_on_refusal
from funnel.io import script_log

smk = snakemake  # noqa: F821
# A refused table leaves nothing of its dataset behind but the logs: not even its fetched copy.
with script_log(smk.log[0]), removed_on_refusal(smk.input[0]):
    table, record = clean(smk.wildcards.dataset, dict(smk.params.spec), smk.input[0])
    write_clean(table, record, smk.output.table, smk.output.provenance)
    print(clean_summary(record))
