# The verdict per dataset: which form to use, computed from the per-seed table
# (and the reference run, when it ran) by the rule documented in
# workflow/funnel/verdict.py; the index page opens on it. The sweeps' summaries,
# when they ran, add their one-line conclusions.
rule verdict:
    input:
        fits=rules.aggregate.output.fits,
        reference=reference_input,
        target_accept=(
            [f"{DS}/tables/target_accept_summary.csv"]
            if EXP["target_accept"]["enabled"]
            else []
        ),
        rows_per_group=(
            [f"{DS}/tables/rows_per_group_summary.csv"]
            if EXP["rows_per_group"]["enabled"]
            else []
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
    log:
        f"{LOGS}/{{dataset}}/verdict.log",
    benchmark:
        f"{BENCH}/{{dataset}}/verdict.tsv"
    conda:
        "../../envs/fit.yaml"
    script:
        "../scripts/verdict.py"
