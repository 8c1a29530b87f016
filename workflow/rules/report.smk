# The report: notebook templates (workflow/notebooks) executed by papermill and
# rendered to HTML, then an index page. The notebooks only read tables and traces;
# they never fit. `snakemake report` builds it all. A template is an input of its
# own rule only, so editing one reruns that notebook and the index, nothing else.
from funnel.plots import pick_sampler

TEMPLATES = Path(workflow.basedir) / "workflow/notebooks"
# The comparison's trace figures use PyMC's NUTS (the blog's sampler) when fitted.
REPORT_SAMPLER = pick_sampler(SAMPLERS)
FIT_GROUPS = [(s, m) for s in SAMPLERS for m in MODELS]
COMPARE = {"centered", "noncentered"} <= set(MODELS)


report: "../report/workflow.rst"


localrules:
    report,


rule report_data:
    input:
        template=str(TEMPLATES / "data.ipynb"),
        table=rules.clean.output.table,
        provenance=rules.clean.output.provenance,
    output:
        ipynb=f"{REPORT}/notebooks/data.ipynb",
        html=report(
            f"{REPORT}/data.html",
            caption="../report/data.rst",
            category="Notebooks",
        ),
        homes_per_county=report(
            f"{REPORT}/figures/homes_per_county.png",
            caption="../report/homes_per_county.rst",
            category="Figures",
            subcategory="Data",
        ),
    log:
        f"{LOGS}/report/data.log",
    benchmark:
        f"{BENCH}/report/data.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        kernel=config["report"]["kernel"],
        timeout=config["report"]["timeout"],
        title="The radon data",
        parameters=lambda wildcards, input: {
            "table_path": input.table,
            "provenance_path": input.provenance,
            "small_county": config["diagnostics"]["small_county"],
        },
    script:
        "../scripts/report_notebook.py"


rule report_fit:
    input:
        template=str(TEMPLATES / "fit_group.ipynb"),
        traces=lambda wildcards: fit_outputs(
            "nc", [wildcards.sampler], [wildcards.model]
        ),
        diagnostics=lambda wildcards: fit_outputs(
            "json", [wildcards.sampler], [wildcards.model]
        ),
    output:
        ipynb=f"{REPORT}/notebooks/fit_{{sampler}}_{{model}}.ipynb",
        html=report(
            f"{REPORT}/fit_{{sampler}}_{{model}}.html",
            caption="../report/fit_group.rst",
            category="Notebooks",
        ),
        funnel=report(
            f"{REPORT}/figures/funnel_{{sampler}}_{{model}}.png",
            caption="../report/funnel.rst",
            category="Figures",
            subcategory="Fit groups",
        ),
    log:
        f"{LOGS}/report/fit_{{sampler}}_{{model}}.log",
    benchmark:
        f"{BENCH}/report/fit_{{sampler}}_{{model}}.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        kernel=config["report"]["kernel"],
        timeout=config["report"]["timeout"],
        title=lambda wildcards: f"Fit group {wildcards.sampler} / {wildcards.model}",
        parameters=lambda wildcards, input: {
            "sampler": wildcards.sampler,
            "model": wildcards.model,
            "traces": list(input.traces),
            "diagnostics": list(input.diagnostics),
            "small_county": config["diagnostics"]["small_county"],
            "rhat_max": config["diagnostics"]["thresholds"]["rhat_max"],
            "ess_min": config["diagnostics"]["thresholds"]["ess_min"],
            "bfmi_min": config["diagnostics"]["thresholds"]["bfmi_min"],
        },
    script:
        "../scripts/report_notebook.py"


rule report_comparison:
    input:
        template=str(TEMPLATES / "comparison.ipynb"),
        fits=rules.aggregate.output.fits,
        summary=rules.aggregate.output.summary,
        map_table=rules.aggregate.output.map_table,
        provenance=rules.clean.output.provenance,
        centered=fit_outputs("nc", [REPORT_SAMPLER], ["centered"]),
        noncentered=fit_outputs("nc", [REPORT_SAMPLER], ["noncentered"]),
    output:
        ipynb=f"{REPORT}/notebooks/comparison.ipynb",
        html=report(
            f"{REPORT}/comparison.html",
            caption="../report/comparison.rst",
            category="Notebooks",
        ),
        centered_funnel=report(
            f"{REPORT}/figures/centered_funnel.png",
            caption="../report/centered_funnel.rst",
            category="Figures",
            subcategory="Comparison",
        ),
        noncentered_offsets=report(
            f"{REPORT}/figures/noncentered_offsets.png",
            caption="../report/noncentered_offsets.rst",
            category="Figures",
            subcategory="Comparison",
        ),
        sigma_b_posteriors=report(
            f"{REPORT}/figures/sigma_b_posteriors.png",
            caption="../report/sigma_b_posteriors.rst",
            category="Figures",
            subcategory="Comparison",
        ),
        diagnostics_across_seeds=report(
            f"{REPORT}/figures/diagnostics_across_seeds.png",
            caption="../report/diagnostics_across_seeds.rst",
            category="Figures",
            subcategory="Comparison",
        ),
        map_vs_mean=report(
            f"{REPORT}/figures/map_vs_mean.png",
            caption="../report/map_vs_mean.rst",
            category="Figures",
            subcategory="Comparison",
        ),
        summary_table=report(
            f"{REPORT}/tables/summary_table.html",
            caption="../report/summary_table.rst",
            category="Tables",
        ),
        blog_vs_run=report(
            f"{REPORT}/tables/blog_vs_run.html",
            caption="../report/blog_vs_run.rst",
            category="Tables",
        ),
    log:
        f"{LOGS}/report/comparison.log",
    benchmark:
        f"{BENCH}/report/comparison.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        kernel=config["report"]["kernel"],
        timeout=config["report"]["timeout"],
        title="Centered vs non-centered",
        parameters=lambda wildcards, input: {
            "fits_path": input.fits,
            "summary_path": input.summary,
            "map_path": input.map_table,
            "provenance_path": input.provenance,
            "sampler": REPORT_SAMPLER,
            "traces": {
                "centered": list(input.centered),
                "noncentered": list(input.noncentered),
            },
            "small_county": config["diagnostics"]["small_county"],
            "rhat_max": config["diagnostics"]["thresholds"]["rhat_max"],
            "ess_min": config["diagnostics"]["thresholds"]["ess_min"],
        },
    script:
        "../scripts/report_notebook.py"


# Beyond the blog: reference/bias, target_accept, homes per county, samplers.
rule report_experiments:
    input:
        template=str(TEMPLATES / "experiments.ipynb"),
        fits=rules.aggregate.output.fits,
        reference=reference_input,
        target_accept=(
            [
                "results/tables/target_accept.csv",
                "results/tables/target_accept_summary.csv",
            ]
            if EXP["target_accept"]["enabled"]
            else []
        ),
        homes=(
            ["results/tables/homes_per_county_summary.csv"]
            if EXP["homes_per_county"]["enabled"]
            else []
        ),
    output:
        **experiment_figures(),
        ipynb=f"{REPORT}/notebooks/experiments.ipynb",
        html=report(
            f"{REPORT}/experiments.html",
            caption="../report/experiments.rst",
            category="Notebooks",
        ),
        samplers=report(
            f"{REPORT}/figures/samplers.png",
            caption="../report/samplers.rst",
            category="Figures",
            subcategory="Experiments",
        ),
    log:
        f"{LOGS}/report/experiments.log",
    benchmark:
        f"{BENCH}/report/experiments.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        kernel=config["report"]["kernel"],
        timeout=config["report"]["timeout"],
        title="Beyond the blog",
        parameters=lambda wildcards, input: {
            "fits_path": input.fits,
            "reference_path": input.reference[0] if input.reference else "",
            "target_accept_path": (
                input.target_accept[0] if input.target_accept else ""
            ),
            "target_accept_summary_path": (
                input.target_accept[1] if input.target_accept else ""
            ),
            "homes_summary_path": input.homes[0] if input.homes else "",
            "small_county": config["diagnostics"]["small_county"],
        },
    script:
        "../scripts/report_notebook.py"


# The index page; `snakemake report` builds every notebook through it.
rule report:
    input:
        data=rules.report_data.output.html,
        groups=[f"{REPORT}/fit_{s}_{m}.html" for s, m in FIT_GROUPS],
        comparison=[rules.report_comparison.output.html] if COMPARE else [],
        experiments=rules.report_experiments.output.html,
        summary_html=rules.aggregate.output.summary_html,
        summary_md=rules.aggregate.output.summary_md,
        summary=rules.aggregate.output.summary,
        fits=rules.aggregate.output.fits,
        map_table=rules.aggregate.output.map_table,
        table=rules.clean.output.table,
        provenance=rules.clean.output.provenance,
    output:
        report(
            f"{REPORT}/index.html",
            caption="../report/index.rst",
            category="Notebooks",
        ),
    log:
        f"{LOGS}/report/index.log",
    benchmark:
        f"{BENCH}/report/index.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        groups=[f"{s}/{m}" for s, m in FIT_GROUPS],
        small_county=config["diagnostics"]["small_county"],
        sampler=REPORT_SAMPLER,
    script:
        "../scripts/report_index.py"
