import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from funnel.config import (
    ConfigError,
    check_config_files,
    load_schema,
    main_sampler,
    validate_config,
)
from funnel.datasets import is_formula, resolve_datasets
from funnel.errors import DataError, end_on_failures, stop
from funnel.prechecks import (
    check_formula_forms,
    check_sources,
    merged_datasets_note,
    select_datasets,
)

# When this run started: the onerror hook (Snakefile) reports the logs written since.
RUN_STARTED = time.time()

# The checks that need no job run here, before Snakemake plans any: a problem ends
# the output on its message (funnel.errors.stop), without a traceback.
try:
    check_config_files(workflow.configfiles)
    validate_config(
        config,
        load_schema(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"),
    )
    # Every dataset's spec with its defaults (datasets.<name> in config.yaml), of the
    # datasets this run fits (run_datasets: all of them when empty).
    DATASETS = select_datasets(
        resolve_datasets(config["datasets"]), config.get("run_datasets")
    )
    if workflow.is_main_process:  # a cluster job's node may not see the user's files
        check_sources(DATASETS)
except (ConfigError, DataError) as error:
    stop(str(error))
if workflow.is_main_process:
    _note = merged_datasets_note(
        list(DATASETS), workflow.overwrite_configfiles or [], config.get("run_datasets")
    )
    if _note:
        print(_note, file=sys.stderr)


LOGS = "results/logs"
# Wall time, memory and CPU time of every job (Snakemake's benchmark files).
BENCH = "results/benchmarks"
REPORT = "results/report"

# Every dataset is fitted, aggregated and given a verdict. A formula dataset
# (datasets.<name>.formula) has its own page (report_formula) but no MAP table,
# experiments or SBC campaign yet (docs/development.md, "Formula models"): those, the
# cross-dataset table and the notebooks are the columns shorthand's datasets'
# (DATASET_NAMES).
FORMULA_DATASETS = [name for name, spec in DATASETS.items() if is_formula(spec)]
DATASET_NAMES = [name for name in DATASETS if name not in FORMULA_DATASETS]
FITTED = list(DATASETS)
# The two kinds as wildcard constraints of their own rules; "(?!)" matches no name.
SHORTHAND_NAMES = "|".join(DATASET_NAMES) or "(?!)"
FORMULA_NAMES = "|".join(FORMULA_DATASETS) or "(?!)"
if FORMULA_DATASETS and workflow.is_main_process:
    print(
        f"dataset(s) {', '.join(FORMULA_DATASETS)}: a formula model is fitted and gets its "
        "fits table and verdict (results/<dataset>/tables/) and its page "
        "(results/<dataset>/report/model.html); its MAP table, experiments and SBC are "
        "not built by this version yet (docs/development.md)",
        file=sys.stderr,
    )
FIT = config["fit"]
try:
    check_formula_forms(FORMULA_DATASETS, FIT["models"])
except DataError as error:
    stop(str(error))
SAMPLERS = FIT["samplers"]
# The sampler whose fits stand for the run where one must: the MAP job, the comparison's traces.
MAIN_SAMPLER = main_sampler(SAMPLERS)
MODELS = FIT["models"]
SEEDS = FIT["seeds"]
THRESHOLDS = config["diagnostics"]["thresholds"]
# Per-dataset outputs live under results/<dataset>/.
DS = "results/{dataset}"


def thresholds():
    """The pass marks as scalar params (a dict's key order must not look like a change)."""
    return {name: THRESHOLDS[name] for name in ("rhat_max", "ess_min", "bfmi_min")}


# The keys that decide what `download` fetches; `clean` reads every key but the priors,
# so that changing a dataset's priors refits without fetching or cleaning again.
SOURCE_KEYS = (
    "source",
    "mirrors",
    "local_dir",
    "timeout",
    "retries",
    "path",
    "sha256",
    "package",
    "item",
)


def canonical(value):
    """Dicts with sorted keys, all the way down: key order must not look like a change of params."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    return value


def source_spec(wildcards):
    spec = DATASETS[wildcards.dataset]
    return canonical({key: spec[key] for key in SOURCE_KEYS if key in spec})


def source_file(wildcards):
    """A csv dataset's file, an input of its download: editing it reruns `download`, `clean`
    and everything downstream. A missing file (or a FIFO, a device) has already stopped the
    run with its message: check_sources, above, before any job is planned."""
    spec = DATASETS[wildcards.dataset]
    return [spec["path"]] if spec["source"] == "csv" else []


def clean_spec(wildcards):
    return canonical(
        {
            k: v
            for k, v in DATASETS[wildcards.dataset].items()
            # a formula's priors are checked against its table; the shorthand's need no check there
            if k != "priors" or is_formula(DATASETS[wildcards.dataset])
        }
    )


def dataset_priors(wildcards):
    return DATASETS[wildcards.dataset]["priors"]


def cleaned(wildcards=None, dataset="{dataset}"):
    """The cleaned table and its provenance (columns, tracked group, ...) of a dataset
    (by default with the {dataset} wildcard; a name gives constant paths)."""
    folder = DS.format(dataset=dataset)
    return {
        "table": f"{folder}/data/table.csv",
        "provenance": f"{folder}/data/provenance.json",
    }


def in_batches(items, size):
    """Consecutive batches of ``size`` items (the last may be shorter), one job each."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def seed_batches():
    """The seeds in batches of fit.batch_size."""
    return in_batches(SEEDS, FIT["batch_size"])


def sampler_backend(sampler):
    """fit.backend for PyMC's NUTS; nutpie always compiles with numba."""
    return FIT["backend"] if sampler == "pymc" else "numba"


def backend(wildcards):
    return sampler_backend(wildcards.sampler)


# Scheduling on few cores: the longest jobs start first (PyMC's fits, then the
# reference run, then nutpie's fits and the sweeps), and the short ones fill in
# beside them. Priorities order jobs; they never change an output.
PRIORITY = {"pymc_fit": 3, "reference": 2, "fit": 1}


def sampler_priority(sampler):
    return PRIORITY["pymc_fit"] if sampler == "pymc" else PRIORITY["fit"]


def fit_priority(wildcards):
    return sampler_priority(wildcards.sampler)


def fit_outputs(kind, dataset, samplers=SAMPLERS, models=MODELS, seeds=SEEDS):
    """Per-seed fit files of a dataset: kind 'nc' (trace) or 'json' (diagnostics)."""
    return expand(
        f"results/{dataset}/fits/{{sampler}}/{{model}}/seed{{seed}}.{kind}",
        sampler=samplers,
        model=models,
        seed=seeds,
    )


EXP = config["experiments"]
SWEEPS = ("target_accept", "rows_per_group")
REFERENCE = f"{DS}/reference/reference.json"


def reference_input(wildcards):
    """The reference run's summary, when it runs on the dataset (the shorthand's datasets only, so far)."""
    if not EXP["reference"]["enabled"] or wildcards.dataset not in DATASET_NAMES:
        return []
    return [REFERENCE.format(dataset=wildcards.dataset)]


def sweep_outputs(name, dataset):
    """The per-(sampler, model) CSVs of sweep `name` of a dataset if it is enabled."""
    exp = EXP[name]
    if not exp["enabled"]:
        return []
    return expand(
        f"results/{dataset}/experiments/{name}/{{sampler}}/{{model}}.csv",
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
        "results/{dataset}/fits/{sampler}/{model}/seed{seed}.json",
        dataset=wildcards.dataset,
        sampler=wildcards.sampler,
        model=wildcards.model,
        seed=[seed for seed in exp["seeds"] if seed in SEEDS],
    )


def experiment_table(name, dataset):
    """Sweep ``name``'s summary table of a dataset, when the sweep runs on it ([] else)."""
    if not EXP[name]["enabled"] or dataset not in DATASET_NAMES:
        return []
    return [f"results/{dataset}/tables/{name}_summary.csv"]


def experiment_outputs(dataset):
    """Everything the enabled experiments add to `snakemake all` for a dataset."""
    outputs = []
    if EXP["reference"]["enabled"]:
        outputs.append(REFERENCE.format(dataset=dataset))
    for name in SWEEPS:
        if EXP[name]["enabled"]:
            outputs.append(f"results/{dataset}/tables/{name}.csv")
    return outputs


# Samplers of the main fits and of the enabled sweeps (they may differ).
ALL_SAMPLERS = sorted(
    set(SAMPLERS).union(
        *(EXP[name]["samplers"] for name in SWEEPS if EXP[name]["enabled"])
    )
)


wildcard_constraints:
    dataset="|".join(DATASETS),
    sampler="|".join(ALL_SAMPLERS),
    model="|".join(MODELS),
    seed=r"\d+",


def experiment_figures():
    """The experiments notebook's figures of the experiments that are switched on."""
    switches = {
        "bias": "reference",
        "target_accept": "target_accept",
        "rows_crossover": "rows_per_group",
    }
    return {
        name: report(
            f"{DS}/report/figures/{name}.png",
            caption=f"../report/{name}.rst",
            category="{dataset}",
            subcategory="Experiments",
        )
        for name, experiment in switches.items()
        if EXP[experiment]["enabled"]
    }


# Simulation-based calibration (config `sbc:`): its datasets (none when off).
SBC = config["sbc"]
SBC_DATASETS = (SBC["datasets"] or DATASET_NAMES) if SBC["enabled"] else []
_unknown = [d for d in SBC_DATASETS if d not in DATASET_NAMES]
if _unknown:
    stop(
        f"sbc.datasets names {', '.join(map(repr, _unknown))}, which are not columns-shorthand "
        f"datasets of this run ({', '.join(DATASET_NAMES) or 'none'}; the workflow has no SBC "
        "campaign of a formula dataset yet); add them under `datasets:` (and to run_datasets, "
        "if it is set) or remove them from sbc.datasets"
    )
if SBC_DATASETS:
    from funnel.sbc import prior_warning

    _warning = prior_warning(SBC["priors"])
    if _warning:
        print(f"WARNING: {_warning}", file=sys.stderr)


def sbc_batches():
    """Simulations 1..sbc.simulations in batches of sbc.batch_size."""
    return in_batches(list(range(1, SBC["simulations"] + 1)), SBC["batch_size"])


def sbc_outputs(kind, dataset, samplers=None, models=None, sims=None):
    """Per-simulation files of a campaign: kind 'json' (record) or 'nc' (trace)."""
    return expand(
        f"results/{dataset}/sbc/{{sampler}}/{{model}}/sim{{sim}}.{kind}",
        sampler=SBC["samplers"] if samplers is None else samplers,
        model=SBC["models"] if models is None else models,
        sim=range(1, SBC["simulations"] + 1) if sims is None else sims,
    )


def sbc_tables(dataset="{dataset}"):
    """A campaign's tables (rule sbc_table)."""
    folder = f"results/{dataset}/sbc"
    return {
        "records": f"{folder}/records.csv",
        "calibration": f"{folder}/calibration.csv",
        "conclusion": f"{folder}/conclusion.json",
        "markdown": f"{folder}/calibration.md",
    }


def sbc_targets(wildcards):
    """What `snakemake sbc` builds: every record, the tables and the report page of
    each campaign (an error that says how to switch it on when sbc.enabled is false)."""
    if not SBC["enabled"]:
        stop(
            "`snakemake sbc` asks for the SBC campaign, but sbc.enabled is false: add "
            "--configfile workflow/presets/sbc.yaml (after the target) or set sbc.enabled: true"
        )
    return [
        *(path for dataset in SBC_DATASETS for path in sbc_outputs("json", dataset)),
        *(path for dataset in SBC_DATASETS for path in sbc_tables(dataset).values()),
        *expand("results/{dataset}/report/sbc.html", dataset=SBC_DATASETS),
    ]


def formula_traces(wildcards):
    """The traces a formula dataset's page reads, per whole form fitted (report.smk:
    REPORT_SAMPLER's fits of the first report.draw_seeds seeds)."""
    return {
        m: fit_outputs("nc", wildcards.dataset, [REPORT_SAMPLER], [m], DRAW_SEEDS)
        for m in FORMULA_FORMS
    }
