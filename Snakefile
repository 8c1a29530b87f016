# The funnel workflow: centered vs non-centered varying-intercept, varying-slope
# models on one or more datasets (radon by default). Rules live in workflow/rules,
# the science in the workflow/funnel library.


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/experiments.smk"
include: "workflow/rules/verdict.smk"
include: "workflow/rules/sbc.smk"
include: "workflow/rules/report.smk"


# A job that failed on a problem the user can fix (bad data, a failed fit) wrote its
# message to its log (funnel.errors): print those messages as the output's last lines.
onerror:
    end_on_failures(LOGS, RUN_STARTED, log)


rule all:
    default_target: True
    input:
        # Every fit's files are targets too, so a plain run rebuilds a missing one.
        [fit_outputs(kind, dataset) for dataset in FITTED for kind in ("nc", "json")],
        expand(f"{DS}/map/{{model}}.json", dataset=DATASET_NAMES, model=MODELS),
        expand(rules.aggregate.output, dataset=DATASET_NAMES),
        expand(rules.aggregate_formula.output, dataset=FORMULA_DATASETS),
        expand(rules.verdict.output, dataset=FITTED),
        # A formula dataset's page (its funnels per scale): the index links it.
        expand(rules.report_formula.output.html, dataset=FORMULA_DATASETS),
        # The table across the shorthand's datasets, when one is fitted.
        rules.datasets_table.output if DATASET_NAMES else [],
        [experiment_outputs(dataset) for dataset in DATASET_NAMES],
        # The SBC campaign, when sbc.enabled: every record and the tables.
        [sbc_outputs("json", dataset) for dataset in SBC_DATASETS],
        [list(sbc_tables(dataset).values()) for dataset in SBC_DATASETS],
        # The report's index, when any dataset is fitted (formula datasets alone too).
        rules.report.output if FITTED else [],


# `snakemake sbc`: the campaign alone, without the main fits: its records, tables
# and report page (rule report_sbc). Every record is a target too, so a run
# rebuilds a deleted one (e.g. a failed fit's, to refit it).
rule sbc:
    input:
        sbc_targets,
