"""Rule `report`: the index page linking every dataset's notebooks and tables, then the cross-dataset table."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from funnel.io import script_log

smk = snakemake  # noqa: F821
with script_log(smk.log[0]):
    from funnel.io import atomic_path
    from funnel.report import dataset_section, datasets_section, index_page

    index = smk.output[0]
    sections = []
    for dataset, layout in smk.params.layout.items():
        groups = {tuple(key.split("/")): path for key, path in layout["groups"].items()}
        sections.append(
            dataset_section(
                index,
                dataset,
                pages=layout["pages"],
                group_pages=groups,
                tables=layout["tables"],
                table=layout["table"],
                provenance=layout["provenance"],
                sampler=smk.params.sampler,
            )
        )
    sections.append(datasets_section(index, smk.input.datasets))
    page = index_page(
        "Funnel workflow: report",
        "Centered vs non-centered varying-intercept, varying-slope models, one section per dataset, then the "
        "table across datasets. Every notebook reads this run's tables and traces (none fits a model); every "
        "number below comes from them.",
        sections,
    )
    with atomic_path(index) as tmp:
        tmp.write_text(page, encoding="utf-8")
    print(f"wrote {index}")
