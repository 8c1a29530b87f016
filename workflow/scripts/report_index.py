"""Rule `report`: the index page linking every rendered notebook and the tables."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from funnel.io import script_log

smk = snakemake  # noqa: F821
with script_log(smk.log[0]):
    from funnel.io import atomic_path
    from funnel.report import index_page, index_sections

    index = smk.output[0]
    groups = [(g.split("/")[0], g.split("/")[1]) for g in smk.params.groups]
    sections = index_sections(
        index,
        data_page=smk.input.data,
        group_pages=dict(zip(groups, smk.input.groups)),
        comparison_page=smk.input.comparison[0] if smk.input.comparison else None,
        experiments_page=smk.input.experiments,
        tables={
            "summary_html": smk.input.summary_html,
            "summary_md": smk.input.summary_md,
            "summary": smk.input.summary,
            "fits": smk.input.fits,
            "map_table": smk.input.map_table,
        },
        table=smk.input.table,
        provenance=smk.input.provenance,
        small_county=smk.params.small_county,
        sampler=smk.params.sampler,
    )
    page = index_page(
        "Radon funnel: report",
        "Centered vs non-centered hierarchical models on the Minnesota radon survey. Every notebook "
        "reads this run's tables and traces (none fits a model); every number below comes from them.",
        sections,
    )
    with atomic_path(index) as tmp:
        tmp.write_text(page, encoding="utf-8")
    print(f"wrote {index}")
