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
