"""Rule `verdict`: which form to use on a dataset, computed from its fits (funnel.verdict), and
written once in every shape it is read in: JSON, Markdown, its own page, the index's section."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from funnel.io import script_log

smk = snakemake  # noqa: F821
with script_log(smk.log[0]):
    import dataclasses

    import pandas as pd
    from funnel.advice import advise, x_facts
    from funnel.datasets import formula_scales, read_table
    from funnel.index_page import verdict_section
    from funnel.io import atomic_path, write_json
    from funnel.notebook import read_provenance
    from funnel.records import SIGMA_B
    from funnel.verdict import compute_verdict, read_reference
    from funnel.verdict_text import experiment_lines, headline_sentence, verdict_markdown, verdict_page

    fits = pd.read_csv(smk.input.fits)
    record = read_provenance(smk.input.provenance)
    formula = "formula" in record  # a formula model: every group-level scale, no reference or x to center yet
    scales = formula_scales(record) if formula else (SIGMA_B,)
    reference = read_reference(smk.input.reference[0] if smk.input.reference else None)
    verdict = compute_verdict(fits, reference, dataset=smk.wildcards.dataset, scales=scales)
    lines = experiment_lines(
        fits,
        target_accept_summary=pd.read_csv(smk.input.target_accept[0]) if smk.input.target_accept else None,
        rows_summary=pd.read_csv(smk.input.rows_per_group[0]) if smk.input.rows_per_group else None,
    )
    target_accept = pd.read_csv(smk.input.target_accept[0]) if smk.input.target_accept else None
    x = None if formula else x_facts(read_table(smk.input.table, record), record["columns"]["x"])
    advice = advise(verdict, x=x, fits=fits, target_accept_summary=target_accept, partial=not formula)
    verdict = dataclasses.replace(verdict, experiments=lines, advice=advice)
    write_json(smk.output.json, verdict.to_dict())
    with atomic_path(smk.output.md) as tmp:
        tmp.write_text(verdict_markdown(verdict), encoding="utf-8")
    with atomic_path(smk.output.html) as tmp:
        tmp.write_text(verdict_page(verdict), encoding="utf-8")
    layout = smk.params.index
    section = verdict_section(
        verdict,
        layout["index"],
        verdict_page=smk.output.html,
        others=[smk.output.md, smk.output.json],
        figures=layout["figures"],
        comparison=layout["comparison"],
        sampler=layout["sampler"],
    )
    with atomic_path(smk.output.index_section) as tmp:
        tmp.write_text(section, encoding="utf-8")
    print(f"{smk.wildcards.dataset}: {headline_sentence(verdict)} {verdict.reason}")
