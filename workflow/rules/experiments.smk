# Experiments beyond the blog, run for every dataset; each is switched on or off
# in config.yaml.
rule reference:
    input:
        **cleaned(),
    output:
        trace=f"{DS}/reference/posterior.nc",
        summary=REFERENCE,
    log:
        f"{LOGS}/{{dataset}}/reference.log",
    benchmark:
        f"{BENCH}/{{dataset}}/reference.tsv"
    priority: PRIORITY["reference"]
    conda:
        "../../envs/fit.yaml"
    threads: FIT["threads"]
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        chains=EXP["reference"]["chains"],
        tune=EXP["reference"]["tune"],
        draws=EXP["reference"]["draws"],
        target_accept=EXP["reference"]["target_accept"],
        seed=EXP["reference"]["seed"],
        priors=dataset_priors,
        compile_cache=FIT["compile_cache"],
    script:
        "../scripts/reference.py"


rule sweep:
    input:
        **cleaned(),
        # Only the target_accept sweep is scored against the reference (same data).
        reference=lambda wc: (
            reference_input(wc) if wc.experiment == "target_accept" else []
        ),
        fits=reused_fits,
    output:
        f"{DS}/experiments/{{experiment}}/{{sampler}}/{{model}}.csv",
    log:
        f"{LOGS}/{{dataset}}/experiments/{{experiment}}/{{sampler}}/{{model}}.log",
    benchmark:
        f"{BENCH}/{{dataset}}/experiments/{{experiment}}/{{sampler}}/{{model}}.tsv"
    wildcard_constraints:
        experiment="|".join(SWEEPS),
    priority: fit_priority
    conda:
        "../../envs/fit.yaml"
    threads: FIT["threads"]
    resources:
        mem_mb=lambda wildcards, attempt: 3000 * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
    params:
        **thresholds(),
        levels=lambda wc: sweep_levels(wc.experiment),
        seeds=lambda wc: EXP[wc.experiment]["seeds"],
        reused_level=lambda wc: reused_level(wc.experiment),
        chains=FIT["chains"],
        tune=FIT["tune"],
        draws=FIT["draws"],
        target_accept=FIT["target_accept"],
        priors=dataset_priors,
        backend=backend,
        compile_cache=FIT["compile_cache"],
    script:
        "../scripts/sweep.py"


rule experiment_table:
    input:
        lambda wc: sweep_outputs(wc.experiment, wc.dataset),
    output:
        rows=f"{DS}/tables/{{experiment}}.csv",
        summary=f"{DS}/tables/{{experiment}}_summary.csv",
    log:
        f"{LOGS}/{{dataset}}/experiments/{{experiment}}_table.log",
    benchmark:
        f"{BENCH}/{{dataset}}/experiments/{{experiment}}_table.tsv"
    wildcard_constraints:
        experiment="|".join(SWEEPS),
    conda:
        "../../envs/fit.yaml"
    script:
        "../scripts/experiment_table.py"
