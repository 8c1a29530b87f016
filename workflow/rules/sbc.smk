# Simulation-based calibration (config `sbc:`): one job per (dataset, sampler,
# model, batch of simulations) compiles the model once, then simulates, fits and
# ranks each simulation of its batch; rule sbc_table tests the ranks. Like the
# fit rules, the batch rules are generated with constant paths (planning stays
# linear in the simulations), and finished simulations are kept in a store that
# a rerun resumes from. A simulation's record depends on (dataset, number) and
# the settings, never on the batching.
for _dataset, _sampler, _model, (_batch, _sims) in (
    (d, s, m, b)
    for d in SBC_DATASETS
    for s in SBC["samplers"]
    for m in SBC["models"]
    for b in enumerate(sbc_batches())
):

    rule:
        name:
            f"sbc_batch{_batch}_{_dataset}_{_sampler}_{_model}"
        input:
            **cleaned(dataset=_dataset),
        output:
            records=sbc_outputs("json", _dataset, [_sampler], [_model], _sims),
            traces=(
                sbc_outputs("nc", _dataset, [_sampler], [_model], _sims)
                if SBC["keep_traces"]
                else []
            ),
        log:
            f"{LOGS}/{_dataset}/sbc/{_sampler}/{_model}/batch{_batch}.log",
        benchmark:
            f"{BENCH}/{_dataset}/sbc/{_sampler}/{_model}/batch{_batch}.tsv"
        priority: sampler_priority(_sampler)
        conda:
            "../../envs/fit.yaml"
        threads: 1
        resources:
            mem_mb=lambda wildcards, attempt: 2000 * attempt,
            runtime=lambda wildcards, attempt: 30 * attempt,
        params:
            dataset=_dataset,
            sampler=_sampler,
            model=_model,
            priors=SBC["priors"],
            chains=SBC["chains"],
            tune=SBC["tune"],
            draws=SBC["draws"],
            target_accept=SBC["target_accept"],
            rank_draws=SBC["rank_draws"],
            thin=SBC["thin"],
            backend=sampler_backend(_sampler),
            compile_cache=FIT["compile_cache"],
        script:
            "../scripts/sbc_fit.py"


# The campaign's records, the uniformity of every quantity's ranks (all fits, and
# split by whether the fit diverged), and its one-line conclusion.
rule sbc_table:
    input:
        lambda wildcards: sbc_outputs("json", wildcards.dataset),
    output:
        **sbc_tables(),
    log:
        f"{LOGS}/{{dataset}}/sbc/table.log",
    benchmark:
        f"{BENCH}/{{dataset}}/sbc/table.tsv"
    conda:
        "../../envs/fit.yaml"
    params:
        bins=SBC["bins"],
    script:
        "../scripts/sbc_table.py"
