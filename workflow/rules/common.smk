import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from funnel.config import ConfigError, load_schema, validate_config

try:
    validate_config(
        config,
        load_schema(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"),
    )
except ConfigError as error:
    raise WorkflowError(str(error)) from None


LOGS = "results/logs"
# Wall time, memory and CPU time of every job (Snakemake's benchmark files).
BENCH = "results/benchmarks"
REPORT = "results/report"

FIT = config["fit"]
SAMPLERS = FIT["samplers"]
MODELS = FIT["models"]
SEEDS = FIT["seeds"]


def seed_batches():
    """Split the seeds into consecutive batches of fit.batch_size (one job each)."""
    size = FIT["batch_size"]
    return [SEEDS[i : i + size] for i in range(0, len(SEEDS), size)]


def backend(wildcards):
    """fit.backend for PyMC's NUTS; nutpie always compiles with numba."""
    return FIT["backend"] if wildcards.sampler == "pymc" else "numba"


# Scheduling on few cores: the longest jobs start first (PyMC's fits, then the
# reference run, then nutpie's fits and the sweeps), and the short ones fill in
# beside them. Priorities order jobs; they never change an output.
PRIORITY = {"pymc_fit": 3, "reference": 2, "fit": 1}


def fit_priority(wildcards):
    return PRIORITY["pymc_fit"] if wildcards.sampler == "pymc" else PRIORITY["fit"]


def fit_outputs(kind, samplers=SAMPLERS, models=MODELS, seeds=SEEDS):
    """Per-seed fit files: kind 'nc' (trace) or 'json' (diagnostics)."""
    return expand(
        f"results/fits/{{sampler}}/{{model}}/seed{{seed}}.{kind}",
        sampler=samplers,
        model=models,
        seed=seeds,
    )


EXP = config["experiments"]
REFERENCE = "results/reference/reference.json"


def reference_input(wildcards=None):
    return [REFERENCE] if EXP["reference"]["enabled"] else []


def sweep_outputs(name):
    """The per-(sampler, model) CSVs of sweep `name` if it is enabled."""
    exp = EXP[name]
    if not exp["enabled"]:
        return []
    return expand(
        f"results/experiments/{name}/{{sampler}}/{{model}}.csv",
        sampler=exp["samplers"],
        model=MODELS,
    )


def sweep_levels(experiment):
    """The levels a sweep visits: target_accept values or home replication factors."""
    return EXP[experiment].get("values") or EXP[experiment].get("factors")


def reused_level(experiment):
    """The sweep level that repeats the main fits exactly (their target_accept; 1 home copy)."""
    return FIT["target_accept"] if experiment == "target_accept" else 1


def reused_fits(wildcards):
    """Main fits' diagnostics that sweep `experiment` reads instead of refitting:
    its seeds that are also fit seeds, at the level that repeats the main fit, for
    a sampler the main fits run anyway."""
    exp = EXP[wildcards.experiment]
    if wildcards.sampler not in SAMPLERS or reused_level(
        wildcards.experiment
    ) not in sweep_levels(wildcards.experiment):
        return []
    return expand(
        "results/fits/{sampler}/{model}/seed{seed}.json",
        sampler=wildcards.sampler,
        model=wildcards.model,
        seed=[seed for seed in exp["seeds"] if seed in SEEDS],
    )


def experiment_outputs():
    """Everything the enabled experiments add to `snakemake all`."""
    outputs = reference_input()
    for name in ("target_accept", "homes_per_county"):
        if EXP[name]["enabled"]:
            outputs.append(f"results/tables/{name}.csv")
    return outputs


# Samplers of the main fits and of the enabled sweeps (they may differ).
ALL_SAMPLERS = sorted(
    set(SAMPLERS).union(
        *(
            EXP[name]["samplers"]
            for name in ("target_accept", "homes_per_county")
            if EXP[name]["enabled"]
        )
    )
)


wildcard_constraints:
    sampler="|".join(ALL_SAMPLERS),
    model="|".join(MODELS),
    seed=r"\d+",


def experiment_figures():
    """The experiments notebook's figures of the experiments that are switched on."""
    switches = {
        "bias": "reference",
        "target_accept": "target_accept",
        "homes_crossover": "homes_per_county",
    }
    return {
        name: report(
            f"{REPORT}/figures/{name}.png",
            caption=f"../report/{name}.rst",
            category="Figures",
            subcategory="Experiments",
        )
        for name, experiment in switches.items()
        if EXP[experiment]["enabled"]
    }
