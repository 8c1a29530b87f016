# Experiments beyond the blog; each is switched on or off in config.yaml.
rule reference:
    input:
        table=rules.clean.output.table,
    output:
        trace="results/reference/posterior.nc",
        summary=REFERENCE,
    log:
        f"{LOGS}/reference.log",
    benchmark:
        f"{BENCH}/reference.tsv"
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
        counties=EXP["reference"]["counties"],
        priors=FIT["priors"],
        small_county=config["diagnostics"]["small_county"],
        compile_cache=FIT["compile_cache"],
    script:
        "../scripts/reference.py"


rule sweep:
    input:
        table=rules.clean.output.table,
        # Only the target_accept sweep is scored against the reference (same data).
        reference=lambda wc: (
            reference_input() if wc.experiment == "target_accept" else []
        ),
        fits=reused_fits,
    output:
        "results/experiments/{experiment}/{sampler}/{model}.csv",
    log:
        f"{LOGS}/experiments/{{experiment}}/{{sampler}}/{{model}}.log",
    benchmark:
        f"{BENCH}/experiments/{{experiment}}/{{sampler}}/{{model}}.tsv"
    wildcard_constraints:
        experiment="target_accept|homes_per_county",
    priority: fit_priority
    conda:
        "../../envs/fit.yaml"
    threads: FIT["threads"]
    resources:
        mem_mb=lambda wildcards, attempt: 3000 * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
    params:
        levels=lambda wc: sweep_levels(wc.experiment),
        seeds=lambda wc: EXP[wc.experiment]["seeds"],
        reused_level=lambda wc: reused_level(wc.experiment),
        chains=FIT["chains"],
        tune=FIT["tune"],
        draws=FIT["draws"],
        target_accept=FIT["target_accept"],
        priors=FIT["priors"],
        backend=backend,
        small_county=config["diagnostics"]["small_county"],
        counties=EXP["reference"]["counties"],
        rhat_max=config["diagnostics"]["thresholds"]["rhat_max"],
        ess_min=config["diagnostics"]["thresholds"]["ess_min"],
        bfmi_min=config["diagnostics"]["thresholds"]["bfmi_min"],
        compile_cache=FIT["compile_cache"],
    script:
        "../scripts/sweep.py"


rule experiment_table:
    input:
        lambda wc: sweep_outputs(wc.experiment),
    output:
        rows="results/tables/{experiment}.csv",
        summary="results/tables/{experiment}_summary.csv",
    log:
        f"{LOGS}/experiments/{{experiment}}_table.log",
    benchmark:
        f"{BENCH}/experiments/{{experiment}}_table.tsv"
    wildcard_constraints:
        experiment="target_accept|homes_per_county",
    conda:
        "../../envs/fit.yaml"
    script:
        "../scripts/experiment_table.py"
