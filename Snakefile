# The funnel workflow: centered vs non-centered varying-intercept, varying-slope
# models on one or more datasets (radon by default). Rules live in workflow/rules,
# the science in the workflow/funnel library.


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/experiments.smk"
include: "workflow/rules/verdict.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        # Every fit's files are targets too, so a plain run rebuilds a missing one.
        [
            fit_outputs(kind, dataset)
            for dataset in DATASET_NAMES
            for kind in ("nc", "json")
        ],
        expand(f"{DS}/map/{{model}}.json", dataset=DATASET_NAMES, model=MODELS),
        expand(rules.aggregate.output, dataset=DATASET_NAMES),
        expand(rules.verdict.output, dataset=DATASET_NAMES),
        rules.datasets_table.output,
        [experiment_outputs(dataset) for dataset in DATASET_NAMES],
        rules.report.output,
