# The verdict per dataset: which form to use, computed from the per-seed table
# (and the reference run, when it ran) by the rule stated in
# workflow/funnel/verdict_rule.py; the index page opens on it (index_section, with
# the comparison's funnel figures beside it). The sweeps' summaries, when they ran,
# add their one-line conclusions.


rule verdict:
    input:
        # The data, for the advice: is x far from zero (center it)?
        **cleaned(),
        fits=rules.aggregate.output.fits,
        reference=reference_input,
        target_accept=lambda wildcards: experiment_table(
            "target_accept", wildcards.dataset
        ),
        rows_per_group=lambda wildcards: experiment_table(
            "rows_per_group", wildcards.dataset
        ),
    output:
        json=f"{DS}/tables/verdict.json",
        md=f"{DS}/tables/verdict.md",
        html=report(
            f"{DS}/tables/verdict.html",
            caption="../report/verdict.rst",
            category="{dataset}",
            subcategory="Verdict",
        ),
        index_section=f"{DS}/tables/verdict_index.html",
    log:
        f"{LOGS}/{{dataset}}/verdict.log",
    benchmark:
        f"{BENCH}/{{dataset}}/verdict.tsv"
    conda:
        "../../envs/fit.yaml"
    params:
        # Where the verdict sits in the index (report.smk): the index page, the funnel
        # figures and the comparison page they link to, the sampler they show.
        index=lambda wildcards: {
            "index": f"{REPORT}/index.html",
            # (a formula dataset has no pages or figures in the report yet)
            "figures": INDEX.get(wildcards.dataset, {}).get("figures", {}),
            "comparison": INDEX.get(wildcards.dataset, {})
            .get("pages", {})
            .get("comparison"),
            "sampler": REPORT_SAMPLER,
        },
    script:
        "../scripts/verdict.py"
