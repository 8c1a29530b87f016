# One job per (dataset, sampler, model, batch of seeds): PyMC is imported and the
# model compiled once per job, then every seed of the batch is sampled and
# diagnosed. A seed's draws depend on the seed only, so the batch size never
# changes them. Finished seeds are kept in a store a rerun resumes from.
# The rules are generated with constant paths (no wildcards): Snakemake then
# finds the producer of a fit file by its full path, and planning grows linearly
# with the seeds (bench/planning.py; with wildcards before the seed, every lookup
# scanned every batch's outputs: 2,000 seeds took 17 s instead of 7.5 s).
#
# A dataset's MAP points (results/{dataset}/map/{model}.json, for the MAP-vs-mean
# table) are written by one of its fit jobs, which imports PyMC anyway, after its
# seeds: batch 0 of the first model, with PyMC's sampler when it is fitted (with
# fit.backend c its compiled C code is partly find_MAP's), else the first sampler.
# One job computes every model's MAP: on a cold compile cache the two find_MAP
# compiles then run one after the other and share C code (10.7 s + 3.1 s on radon),
# where two jobs at once wait for each other's compile lock (13 s each).
MAP_SAMPLER = MAIN_SAMPLER

for _dataset, _sampler, _model, (_batch, _seeds) in (
    (d, s, m, b)
    for d in FITTED
    for s in SAMPLERS
    for m in MODELS
    for b in enumerate(seed_batches())
):
    # The `maps` output of the job that computes the dataset's MAP points, {} for the others.
    _maps = (
        {"maps": expand(f"results/{_dataset}/map/{{model}}.json", model=MODELS)}
        if (_sampler, _model, _batch) == (MAP_SAMPLER, MODELS[0], 0)
        and _dataset in DATASET_NAMES
        else {}
    )

    rule:
        name:
            f"fit_batch{_batch}_{_dataset}_{_sampler}_{_model}"
        input:
            **cleaned(dataset=_dataset),
        output:
            **_maps,
            traces=fit_outputs("nc", _dataset, [_sampler], [_model], _seeds),
            diagnostics=fit_outputs("json", _dataset, [_sampler], [_model], _seeds),
        log:
            f"{LOGS}/{_dataset}/fit/{_sampler}/{_model}/batch{_batch}.log",
        benchmark:
            f"{BENCH}/{_dataset}/fit/{_sampler}/{_model}/batch{_batch}.tsv"
        priority: sampler_priority(_sampler)
        conda:
            "../../envs/fit.yaml"
        threads: FIT["threads"]
        resources:
            mem_mb=lambda wildcards, attempt: 2000 * attempt,
            runtime=lambda wildcards, attempt: 20 * attempt,
        params:
            **thresholds(),
            dataset=_dataset,
            sampler=_sampler,
            model=_model,
            chains=FIT["chains"],
            tune=FIT["tune"],
            draws=FIT["draws"],
            target_accept=FIT["target_accept"],
            priors=DATASETS[_dataset]["priors"],
            backend=sampler_backend(_sampler),
            compile_cache=FIT["compile_cache"],
            on_error=FIT["on_error"],
            trace_dtype=FIT["trace_dtype"],
            store_deterministics=FIT["store_deterministics"],
            trace_compression=FIT["trace_compression"],
        script:
            "../scripts/fit.py"


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
    wildcard_constraints:
        dataset=SHORTHAND_NAMES,
    conda:
        "../../envs/fit.yaml"
    params:
        **thresholds(),
    script:
        "../scripts/aggregate.py"


# A formula dataset's tables: the same fits table and summary, per group-level scale
# (no MAP table: its MAP points are the shorthand's only, so far).
rule aggregate_formula:
    input:
        provenance=cleaned()["provenance"],
        diagnostics=lambda wildcards: fit_outputs("json", wildcards.dataset),
    output:
        fits=f"{DS}/tables/fits.csv",
        summary=f"{DS}/tables/summary.csv",
        summary_md=f"{DS}/tables/summary.md",
        summary_html=f"{DS}/tables/summary.html",
    log:
        f"{LOGS}/{{dataset}}/aggregate.log",
    benchmark:
        f"{BENCH}/{{dataset}}/aggregate.tsv"
    wildcard_constraints:
        dataset=FORMULA_NAMES,
    conda:
        "../../envs/fit.yaml"
    params:
        **thresholds(),
    script:
        "../scripts/aggregate_formula.py"


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
