# One job per (sampler, model, batch of seeds): PyMC is imported and the model
# compiled once per job, then every seed of the batch is sampled and diagnosed.
# A seed's draws depend on the seed only, so the batch size never changes them.
for _batch, _seeds in enumerate(seed_batches()):

    rule:
        name:
            f"fit_batch{_batch}"
        input:
            table=rules.clean.output.table,
        output:
            traces=expand(
                "results/fits/{{sampler}}/{{model}}/seed{seed}.nc", seed=_seeds
            ),
            diagnostics=expand(
                "results/fits/{{sampler}}/{{model}}/seed{seed}.json", seed=_seeds
            ),
        log:
            f"{LOGS}/fit/{{sampler}}/{{model}}/batch{_batch}.log",
        benchmark:
            f"{BENCH}/fit/{{sampler}}/{{model}}/batch{_batch}.tsv"
        priority: fit_priority
        conda:
            "../../envs/fit.yaml"
        threads: FIT["threads"]
        resources:
            mem_mb=lambda wildcards, attempt: 2000 * attempt,
            runtime=lambda wildcards, attempt: 20 * attempt,
        params:
            chains=FIT["chains"],
            tune=FIT["tune"],
            draws=FIT["draws"],
            target_accept=FIT["target_accept"],
            priors=FIT["priors"],
            backend=backend,
            compile_cache=FIT["compile_cache"],
            small_county=config["diagnostics"]["small_county"],
            counties=config["experiments"]["reference"]["counties"],
            # Scalars, not the dict: key order must not look like a change.
            rhat_max=config["diagnostics"]["thresholds"]["rhat_max"],
            ess_min=config["diagnostics"]["thresholds"]["ess_min"],
            bfmi_min=config["diagnostics"]["thresholds"]["bfmi_min"],
        script:
            "../scripts/fit.py"


rule map:
    input:
        table=rules.clean.output.table,
    output:
        "results/map/{model}.json",
    log:
        f"{LOGS}/map/{{model}}.log",
    benchmark:
        f"{BENCH}/map/{{model}}.tsv"
    conda:
        "../../envs/fit.yaml"
    params:
        priors=FIT["priors"],
        compile_cache=FIT["compile_cache"],
    script:
        "../scripts/map.py"


rule aggregate:
    input:
        diagnostics=fit_outputs("json"),
        maps=expand("results/map/{model}.json", model=MODELS),
        reference=reference_input,
    output:
        fits="results/tables/fits.csv",
        summary="results/tables/summary.csv",
        summary_md="results/tables/summary.md",
        summary_html="results/tables/summary.html",
        map_table="results/tables/map_vs_mean.csv",
    log:
        f"{LOGS}/aggregate.log",
    benchmark:
        f"{BENCH}/aggregate.tsv"
    conda:
        "../../envs/fit.yaml"
    script:
        "../scripts/aggregate.py"
