"""Rules `report_*`: execute a notebook template with papermill, render it to HTML.

The notebook's parameters come from the rule's params; named outputs other
than `ipynb` and `html` are the notebook's exports (cells tagged export:<name>).
`code` (report.code) shows or hides the code cells on the HTML page.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from funnel.io import script_log

smk = snakemake  # noqa: F821
with script_log(smk.log[0]):
    from funnel.report import run_notebook

    outputs = dict(smk.output.items())
    run_notebook(
        smk.input.template,
        outputs.pop("ipynb"),
        outputs.pop("html"),
        smk.params.parameters,
        kernel=smk.params.kernel,
        timeout=smk.params.timeout,
        exports=outputs,
        title=smk.params.title,
        code=smk.params.code,
    )
