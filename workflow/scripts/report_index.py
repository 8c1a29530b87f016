"""Rule `report`: the index page, opening on every dataset's verdict (as the verdict rule rendered it),
linking its notebooks and tables, then the cross-dataset table."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from funnel.io import script_log

smk = snakemake  # noqa: F821
with script_log(smk.log[0]):
    from funnel.index_page import (
        IndexSection,
        dataset_anchor,
        dataset_section,
        datasets_section,
        first_screen,
        formula_section,
        index_intro,
        index_page,
        read_verdict,
        sbc_section,
        verdicts_at_a_glance,
    )
    from funnel.io import atomic_path

    index = smk.output[0]
    layouts = smk.params.layout
    sections = []
    for dataset, layout in layouts.items():
        groups = {tuple(key.split("/")): path for key, path in layout["groups"].items()}
        heading, entries = dataset_section(
            index,
            dataset,
            pages=layout["pages"],
            group_pages=groups,
            tables=layout["tables"],
            table=layout["table"],
            provenance=layout["provenance"],
            sampler=smk.params.sampler,
        )
        lead = Path(layout["verdict"]["index_section"]).read_text(encoding="utf-8")
        if "sbc" in layout:  # only datasets with an SBC campaign (sbc.enabled) have one
            sbc = layout["sbc"]
            lead += "\n" + sbc_section(index, sbc["conclusion"], sbc["page"], markdown=sbc.get("markdown"))
        sections.append(IndexSection(heading, entries, lead, dataset_anchor(dataset)))
    # Formula datasets: their verdict, then their tables (funnel.index_page.formula_section).
    formulas = smk.params.formula_layout
    for dataset, layout in formulas.items():
        heading, entries = formula_section(
            index, dataset, page=layout["page"], tables=layout["tables"], provenance=layout["provenance"]
        )
        lead = Path(layout["verdict"]["index_section"]).read_text(encoding="utf-8")
        sections.append(IndexSection(heading, entries, lead, dataset_anchor(dataset)))
    if smk.input.datasets:  # the table across the varying-intercept, varying-slope datasets, when the run has some
        sections.append(datasets_section(index, smk.input.datasets[0]))
    verdicts = {d: read_verdict(layout["verdict"]["json"]) for d, layout in layouts.items()}  # each read once
    by_formula = {d: read_verdict(layout["verdict"]["json"]) for d, layout in formulas.items()}
    everyone = {**verdicts, **by_formula}
    page = index_page(
        "Funnel workflow: report",
        index_intro(list(verdicts.values()), list(by_formula.values())),
        sections,
        preface=verdicts_at_a_glance(index, everyone) if len(everyone) > 1 else "",
        # Before any table: what a funnel is, the forms, what each verdict means for the user's model.
        first=first_screen(
            index,
            {d: (verdicts[d], layout["pages"].get("comparison")) for d, layout in layouts.items()},
            by_formula,
        ),
    )
    with atomic_path(index) as tmp:
        tmp.write_text(page, encoding="utf-8")
    print(f"wrote {index}")
