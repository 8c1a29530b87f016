import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from radon_pipeline.config import ConfigError, load_schema, validate_config

try:
    validate_config(
        config,
        load_schema(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"),
    )
except ConfigError as error:
    raise WorkflowError(str(error)) from None


LOGS = "results/logs"

FIT = config["fit"]
SAMPLERS = FIT["samplers"]
MODELS = FIT["models"]
SEEDS = FIT["seeds"]


def seed_batches():
    """Split the seeds into consecutive batches of fit.batch_size (one job each)."""
    size = FIT["batch_size"]
    return [SEEDS[i : i + size] for i in range(0, len(SEEDS), size)]


def fit_outputs(kind, samplers=SAMPLERS, models=MODELS, seeds=SEEDS):
    """Per-seed fit files: kind 'nc' (trace) or 'json' (diagnostics)."""
    return expand(
        f"results/fits/{{sampler}}/{{model}}/seed{{seed}}.{kind}",
        sampler=samplers,
        model=models,
        seed=seeds,
    )


wildcard_constraints:
    sampler="|".join(SAMPLERS),
    model="|".join(MODELS),
    seed=r"\d+",
