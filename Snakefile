# The radon funnel workflow: centered vs non-centered hierarchical models.
# Rules live in workflow/rules, the science in the workflow/funnel library.


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/experiments.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        "results/data/radon.csv",
        rules.aggregate.output,
        experiment_outputs(),
        rules.report.output,
