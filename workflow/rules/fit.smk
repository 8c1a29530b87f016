# One job per (dataset, sampler, model, batch of seeds): PyMC is imported and the
# model compiled once per job, then every seed of the batch is sampled and
# diagnosed. A seed's draws depend on the seed only, so the batch size never
# changes them.
for _batch, _seeds in enumerate(seed_batches()):

    rule:
        name:
            f"fit_batch{_batch}"
        input:
            **cleaned(),
        output:
            traces=expand(
                "results/{{dataset}}/fits/{{sampler}}/{{model}}/seed{seed}.nc",
                seed=_seeds,
            ),
            diagnostics=expand(
                "results/{{dataset}}/fits/{{sampler}}/{{model}}/seed{seed}.json",
                seed=_seeds,
            ),
        log:
            f"{LOGS}/{{dataset}}/fit/{{sampler}}/{{model}}/batch{_batch}.log",
        benchmark:
            f"{BENCH}/{{dataset}}/fit/{{sampler}}/{{model}}/batch{_batch}.tsv"
        priority: fit_priority
        conda:
            "../../envs/fit.yaml"
        threads: FIT["threads"]
        resources:
            mem_mb=lambda wildcards, attempt: 2000 * attempt,
            runtime=lambda wildcards, attempt: 20 * attempt,
        params:
            **thresholds(),
            chains=FIT["chains"],
            tune=FIT["tune"],
            draws=FIT["draws"],
            target_accept=FIT["target_accept"],
            priors=dataset_priors,
            backend=backend,
            compile_cache=FIT["compile_cache"],
        script:
            "../scripts/fit.py"


rule map:
    input:
        **cleaned(),
    output:
        f"{DS}/map/{{model}}.json",
    log:
        f"{LOGS}/{{dataset}}/map/{{model}}.log",
    benchmark:
        f"{BENCH}/{{dataset}}/map/{{model}}.tsv"
    conda:
        "../../envs/fit.yaml"
    params:
        priors=dataset_priors,
        compile_cache=FIT["compile_cache"],
    script:
        "../scripts/map.py"


rule aggregate:
    input:
        diagnostics=lambda wildcards: fit_outputs("json", wildcards.dataset),
        maps=expand(f"{DS}/map/{{model}}.json", model=MODELS, allow_missing=True),
        reference=reference_input,
    output:
        fits=f"{DS}/tables/fits.csv",
        summary=f"{DS}/tables/summary.csv",
        summary_md=f"{DS}/tables/summary.md",
        summary_html=f"{DS}/tables/summary.html",
        map_table=f"{DS}/tables/map_vs_mean.csv",
    log:
        f"{LOGS}/{{dataset}}/aggregate.log",
    benchmark:
        f"{BENCH}/{{dataset}}/aggregate.tsv"
    conda:
        "../../envs/fit.yaml"
    params:
        **thresholds(),
    script:
        "../scripts/aggregate.py"


# One row per dataset x sampler x form with the headline diagnostics.
rule datasets_table:
    input:
        expand(f"{DS}/tables/summary.csv", dataset=DATASET_NAMES),
    output:
        "results/tables/datasets.csv",
    log:
        f"{LOGS}/datasets_table.log",
    benchmark:
        f"{BENCH}/datasets_table.tsv"
    conda:
        "../../envs/fit.yaml"
    script:
        "../scripts/datasets_table.py"
