# The report: notebook templates (workflow/notebooks) executed by papermill and
# rendered to HTML, per dataset under results/<dataset>/report/, then one index
# page. The notebooks only read tables and traces; they never fit. `snakemake
# report` builds it all. A template is an input of its own rule only, so editing
# one reruns that notebook and the index, nothing else.
from funnel.datasets import is_radon
from funnel.facts import form_order
from funnel.prose import forms_title
from funnel.radon import BLOG

TEMPLATES = Path(workflow.basedir) / "workflow/notebooks"
PAGES = f"{DS}/report"
# The comparison's trace figures use the fits of the MAP job's sampler (common.smk).
REPORT_SAMPLER = MAIN_SAMPLER
FIT_GROUPS = [(s, m) for s in SAMPLERS for m in MODELS]
# The comparison tells the funnel's story with the two whole forms, and shows every
# other form fitted (funnel.forms) beside them, in the registry's order.
COMPARE = {"centered", "noncentered"} <= set(MODELS)
COMPARED = form_order(MODELS)

# Radon datasets get the blog's numbers beside the run's (one more table), so
# their comparison has a rule of its own; "(?!)" matches no name at all.
RADON = "|".join(d for d in DATASET_NAMES if is_radon(DATASETS[d])) or "(?!)"
OTHERS = "|".join(d for d in DATASET_NAMES if not is_radon(DATASETS[d])) or "(?!)"
# The params every notebook rule shares (besides its title and parameters);
# `code` (show or hide the code cells) is one, so changing it re-renders the pages.
NOTEBOOK = {
    "kernel": config["report"]["kernel"],
    "timeout": config["report"]["timeout"],
    "code": config["report"]["code"],
}
# Figures that need draws read the traces of these seeds only (report.draw_seeds);
# the tables cover every seed, so the report's cost stays flat as seeds grow.
DRAW_SEEDS = SEEDS[: config["report"]["draw_seeds"]]
COMPARISON_FIGURES = (
    "centered_funnel",
    "noncentered_offsets",
    "sigma_b_posteriors",
    "diagnostics_across_seeds",
    "map_vs_mean",
)
# The comparison notebook's outputs on every dataset.
COMPARISON_OUTPUTS = {
    "ipynb": f"{PAGES}/notebooks/comparison.ipynb",
    "html": report(
        f"{PAGES}/comparison.html",
        caption="../report/comparison.rst",
        category="{dataset}",
        subcategory="Notebooks",
    ),
    **{
        name: report(
            f"{PAGES}/figures/{name}.png",
            caption=f"../report/{name}.rst",
            category="{dataset}",
            subcategory="Comparison",
        )
        for name in COMPARISON_FIGURES
    },
    "summary_table": report(
        f"{PAGES}/tables/summary_table.html",
        caption="../report/summary_table.rst",
        category="{dataset}",
        subcategory="Tables",
    ),
}


report: "../report/workflow.rst"


localrules:
    report,


rule report_data:
    input:
        **cleaned(),
        template=str(TEMPLATES / "data.ipynb"),
    output:
        ipynb=f"{PAGES}/notebooks/data.ipynb",
        html=report(
            f"{PAGES}/data.html",
            caption="../report/data.rst",
            category="{dataset}",
            subcategory="Notebooks",
        ),
        rows_per_group=report(
            f"{PAGES}/figures/rows_per_group.png",
            caption="../report/rows_per_group.rst",
            category="{dataset}",
            subcategory="Data",
        ),
        x_distribution=report(
            f"{PAGES}/figures/x_distribution.png",
            caption="../report/x_distribution.rst",
            category="{dataset}",
            subcategory="Data",
        ),
    log:
        f"{LOGS}/{{dataset}}/report/data.log",
    benchmark:
        f"{BENCH}/{{dataset}}/report/data.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        **NOTEBOOK,
        title=lambda wildcards: f"{wildcards.dataset}: the data",
        parameters=lambda wildcards, input: {
            "dataset": wildcards.dataset,
            "table_path": input.table,
            "provenance_path": input.provenance,
            "radon": is_radon(DATASETS[wildcards.dataset]),
        },
    script:
        "../scripts/report_notebook.py"


rule report_fit:
    input:
        template=str(TEMPLATES / "fit_group.ipynb"),
        provenance=cleaned()["provenance"],
        traces=lambda wildcards: fit_outputs(
            "nc", wildcards.dataset, [wildcards.sampler], [wildcards.model], DRAW_SEEDS
        ),
        diagnostics=lambda wildcards: fit_outputs(
            "json", wildcards.dataset, [wildcards.sampler], [wildcards.model]
        ),
    output:
        ipynb=f"{PAGES}/notebooks/fit_{{sampler}}_{{model}}.ipynb",
        html=report(
            f"{PAGES}/fit_{{sampler}}_{{model}}.html",
            caption="../report/fit_group.rst",
            category="{dataset}",
            subcategory="Notebooks",
        ),
        funnel=report(
            f"{PAGES}/figures/funnel_{{sampler}}_{{model}}.png",
            caption="../report/funnel.rst",
            category="{dataset}",
            subcategory="Fit groups",
        ),
    log:
        f"{LOGS}/{{dataset}}/report/fit_{{sampler}}_{{model}}.log",
    benchmark:
        f"{BENCH}/{{dataset}}/report/fit_{{sampler}}_{{model}}.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        **NOTEBOOK,
        title=lambda wildcards: (
            f"{wildcards.dataset}: fit group {wildcards.sampler} / {wildcards.model}"
        ),
        parameters=lambda wildcards, input: {
            "dataset": wildcards.dataset,
            "sampler": wildcards.sampler,
            "model": wildcards.model,
            "traces": list(input.traces),
            "diagnostics": list(input.diagnostics),
            "provenance_path": input.provenance,
            **thresholds(),
        },
    script:
        "../scripts/report_notebook.py"


# Datasets other than radon; report_comparison_radon below adds the blog's table.
rule report_comparison:
    input:
        # The traces of every form fitted (an input named after each), and, with more than
        # the two whole forms, the verdict: the page names its pick and its lead over the
        # runner-up (the default comparison does not wait for the verdict).
        unpack(
            lambda wildcards: {
                m: fit_outputs(
                    "nc", wildcards.dataset, [REPORT_SAMPLER], [m], DRAW_SEEDS
                )
                for m in COMPARED
            }
        ),
        template=str(TEMPLATES / "comparison.ipynb"),
        fits=rules.aggregate.output.fits,
        summary=rules.aggregate.output.summary,
        map_table=rules.aggregate.output.map_table,
        provenance=cleaned()["provenance"],
        verdict=lambda wildcards: (
            [rules.verdict.output.json.format(dataset=wildcards.dataset)]
            if len(COMPARED) > 2
            else []
        ),
    output:
        **COMPARISON_OUTPUTS,
    log:
        f"{LOGS}/{{dataset}}/report/comparison.log",
    benchmark:
        f"{BENCH}/{{dataset}}/report/comparison.tsv"
    wildcard_constraints:
        dataset=OTHERS,
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        **NOTEBOOK,
        title=lambda wildcards: f"{wildcards.dataset}: {forms_title(COMPARED)}",
        parameters=lambda wildcards, input: {
            "dataset": wildcards.dataset,
            "fits_path": input.fits,
            "summary_path": input.summary,
            "map_path": input.map_table,
            "provenance_path": input.provenance,
            "sampler": REPORT_SAMPLER,
            "traces": {m: list(getattr(input, m)) for m in COMPARED},
            **({"verdict_path": input.verdict[0]} if input.verdict else {}),
            # Wiecki (2017)'s numbers, quoted for radon datasets only.
            "blog": BLOG if is_radon(DATASETS[wildcards.dataset]) else {},
            **thresholds(),
        },
    script:
        "../scripts/report_notebook.py"


# The same notebook on a radon dataset, with the blog's numbers beside the run's.
use rule report_comparison as report_comparison_radon with:
    output:
        **COMPARISON_OUTPUTS,
        blog_vs_run=report(
            f"{PAGES}/tables/blog_vs_run.html",
            caption="../report/blog_vs_run.rst",
            category="{dataset}",
            subcategory="Tables",
        ),
    wildcard_constraints:
        dataset=RADON,


# Beyond the blog: reference/bias, target_accept, rows per group, samplers.
rule report_experiments:
    input:
        template=str(TEMPLATES / "experiments.ipynb"),
        fits=rules.aggregate.output.fits,
        provenance=cleaned()["provenance"],
        reference=reference_input,
        target_accept=(
            [
                f"{DS}/tables/target_accept.csv",
                f"{DS}/tables/target_accept_summary.csv",
            ]
            if EXP["target_accept"]["enabled"]
            else []
        ),
        rows=(
            [f"{DS}/tables/rows_per_group_summary.csv"]
            if EXP["rows_per_group"]["enabled"]
            else []
        ),
    output:
        **experiment_figures(),
        ipynb=f"{PAGES}/notebooks/experiments.ipynb",
        html=report(
            f"{PAGES}/experiments.html",
            caption="../report/experiments.rst",
            category="{dataset}",
            subcategory="Notebooks",
        ),
        samplers=report(
            f"{PAGES}/figures/samplers.png",
            caption="../report/samplers.rst",
            category="{dataset}",
            subcategory="Experiments",
        ),
    log:
        f"{LOGS}/{{dataset}}/report/experiments.log",
    benchmark:
        f"{BENCH}/{{dataset}}/report/experiments.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        **NOTEBOOK,
        title=lambda wildcards: f"{wildcards.dataset}: experiments",
        parameters=lambda wildcards, input: {
            "dataset": wildcards.dataset,
            "fits_path": input.fits,
            "provenance_path": input.provenance,
            "reference_path": input.reference[0] if input.reference else "",
            "target_accept_path": (
                input.target_accept[0] if input.target_accept else ""
            ),
            "target_accept_summary_path": (
                input.target_accept[1] if input.target_accept else ""
            ),
            "rows_summary_path": input.rows[0] if input.rows else "",
            **thresholds(),
        },
    script:
        "../scripts/report_notebook.py"


# The SBC campaign's notebook, on datasets with a campaign (sbc.enabled, sbc.datasets):
# it reads the campaign's records and tables (workflow/rules/sbc.smk), it fits nothing.
rule report_sbc:
    input:
        unpack(lambda wildcards: sbc_tables(wildcards.dataset)),
        template=str(TEMPLATES / "sbc.ipynb"),
    output:
        ipynb=f"{PAGES}/notebooks/sbc.ipynb",
        html=report(
            f"{PAGES}/sbc.html",
            caption="../report/sbc.rst",
            category="{dataset}",
            subcategory="Notebooks",
        ),
        sbc_ecdf=report(
            f"{PAGES}/figures/sbc_ecdf.png",
            caption="../report/sbc_ecdf.rst",
            category="{dataset}",
            subcategory="Calibration",
        ),
        sbc_divergences=report(
            f"{PAGES}/figures/sbc_divergences.png",
            caption="../report/sbc_divergences.rst",
            category="{dataset}",
            subcategory="Calibration",
        ),
    log:
        f"{LOGS}/{{dataset}}/report/sbc.log",
    benchmark:
        f"{BENCH}/{{dataset}}/report/sbc.tsv"
    wildcard_constraints:
        dataset="|".join(SBC_DATASETS) or "(?!)",
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        **NOTEBOOK,
        title=lambda wildcards: f"{wildcards.dataset}: simulation-based calibration",
        parameters=lambda wildcards, input: {
            "dataset": wildcards.dataset,
            "records_path": input.records,
            "calibration_path": input.calibration,
            "conclusion_path": input.conclusion,
        },
    script:
        "../scripts/report_notebook.py"


# A formula dataset's page: its terms, its verdict, the funnel of each group-level scale
# in each whole form fitted (the traces of REPORT_SAMPLER's first draw seeds), every
# seed's diagnostics per scale. It reads tables and traces only.
FORMULA_FORMS = [m for m in ("centered", "noncentered") if m in MODELS]


rule report_formula:
    input:
        unpack(formula_traces),
        template=str(TEMPLATES / "formula.ipynb"),
        provenance=cleaned()["provenance"],
        fits=f"{DS}/tables/fits.csv",
        summary=f"{DS}/tables/summary.csv",
        verdict=f"{DS}/tables/verdict.json",
    output:
        ipynb=f"{PAGES}/notebooks/model.ipynb",
        html=report(
            f"{PAGES}/model.html",
            caption="../report/formula.rst",
            category="{dataset}",
            subcategory="Notebooks",
        ),
        funnels=report(
            f"{PAGES}/figures/funnels.png",
            caption="../report/formula_funnels.rst",
            category="{dataset}",
            subcategory="Funnels",
        ),
        across_seeds=report(
            f"{PAGES}/figures/scales_across_seeds.png",
            caption="../report/formula_across_seeds.rst",
            category="{dataset}",
            subcategory="Funnels",
        ),
    log:
        f"{LOGS}/{{dataset}}/report/model.log",
    benchmark:
        f"{BENCH}/{{dataset}}/report/model.tsv"
    wildcard_constraints:
        dataset=FORMULA_NAMES,
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        **NOTEBOOK,
        title=lambda wildcards: f"{wildcards.dataset}: the formula model and its funnels",
        parameters=lambda wildcards, input: {
            "dataset": wildcards.dataset,
            "provenance_path": input.provenance,
            "fits_path": input.fits,
            "summary_path": input.summary,
            "verdict_path": input.verdict,
            "traces": {m: list(input[m]) for m in FORMULA_FORMS},
            "sampler": REPORT_SAMPLER,
            "rhat_max": THRESHOLDS["rhat_max"],
            "ess_min": THRESHOLDS["ess_min"],
        },
    script:
        "../scripts/report_notebook.py"


# What the index links, per dataset: its pages, fit groups, tables and data.
INDEX_PAGES = {
    "data": f"{PAGES}/data.html",
    "experiments": f"{PAGES}/experiments.html",
    **({"comparison": f"{PAGES}/comparison.html"} if COMPARE else {}),
}
INDEX = {
    dataset: {
        "pages": {k: v.format(dataset=dataset) for k, v in INDEX_PAGES.items()},
        "groups": {
            f"{s}/{m}": f"{PAGES}/fit_{s}_{m}.html".format(dataset=dataset)
            for s, m in FIT_GROUPS
        },
        "tables": {
            key: str(path).format(dataset=dataset)
            for key, path in rules.aggregate.output.items()
        },
        **cleaned(dataset=dataset),
        # The verdict opens the dataset's section, with the comparison's funnel figures.
        "verdict": {
            key: str(path).format(dataset=dataset)
            for key, path in rules.verdict.output.items()
        },
        "figures": {
            name: f"{PAGES}/figures/{name}.png".format(dataset=dataset)
            for name in (("centered_funnel", "noncentered_offsets") if COMPARE else ())
        },
        # After the verdict, the SBC campaign's conclusion (datasets with a campaign only).
        **(
            {
                "sbc": {
                    "page": f"{PAGES}/sbc.html".format(dataset=dataset),
                    "conclusion": sbc_tables(dataset)["conclusion"],
                    "markdown": sbc_tables(dataset)["markdown"],
                }
            }
            if dataset in SBC_DATASETS
            else {}
        ),
    }
    for dataset in DATASET_NAMES
}
# A formula dataset's section: its verdict and tables (no notebooks for it yet).
FORMULA_INDEX = {
    dataset: {
        "page": f"{PAGES}/model.html".format(dataset=dataset),
        "tables": {
            key: str(path).format(dataset=dataset)
            for key, path in rules.aggregate_formula.output.items()
        },
        "provenance": cleaned(dataset=dataset)["provenance"],
        "verdict": {
            key: str(path).format(dataset=dataset)
            for key, path in rules.verdict.output.items()
        },
    }
    for dataset in FORMULA_DATASETS
}


# The index page; `snakemake report` builds every notebook through it.
rule report:
    input:
        [
            path
            for entry in INDEX.values()
            for part in ("pages", "groups", "tables", "verdict", "figures", "sbc")
            for path in entry.get(part, {}).values()
        ],
        [entry[key] for entry in INDEX.values() for key in ("table", "provenance")],
        [
            path
            for entry in FORMULA_INDEX.values()
            for path in [
                *entry["tables"].values(),
                *entry["verdict"].values(),
                entry["provenance"],
                entry["page"],
            ]
        ],
        # The table across datasets: the varying-intercept, varying-slope ones' (none: a run of formula datasets).
        datasets=rules.datasets_table.output if DATASET_NAMES else [],
    output:
        report(
            f"{REPORT}/index.html",
            caption="../report/index.rst",
            category="Index",
        ),
    log:
        f"{LOGS}/report/index.log",
    benchmark:
        f"{BENCH}/report/index.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        layout=INDEX,
        formula_layout=FORMULA_INDEX,
        sampler=REPORT_SAMPLER,
    script:
        "../scripts/report_index.py"
