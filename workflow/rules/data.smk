localrules:
    download,


# Each dataset's source, fetched (or copied) and verified: data/<dataset>/source.
rule download:
    input:
        source_file,
    output:
        directory("data/{dataset}/source"),
    log:
        f"{LOGS}/{{dataset}}/download.log",
    benchmark:
        f"{BENCH}/{{dataset}}/download.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        spec=source_spec,
    script:
        "../scripts/download.py"


# The checked table the models read, and its provenance: the columns' parts,
# the tracked group, the rows and groups. Bad data stop here, before any fit.
rule clean:
    input:
        rules.download.output,
    output:
        table=f"{DS}/data/table.csv",
        provenance=f"{DS}/data/provenance.json",
    log:
        f"{LOGS}/{{dataset}}/clean.log",
    benchmark:
        f"{BENCH}/{{dataset}}/clean.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        spec=clean_spec,
    script:
        "../scripts/clean.py"
