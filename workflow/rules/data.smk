localrules:
    download,


rule download:
    output:
        directory("data/radon/source"),
    log:
        f"{LOGS}/download.log",
    benchmark:
        f"{BENCH}/download.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        source=config["data"]["source"],
        mirrors=config["data"]["mirrors"],
        local_dir=config["data"]["local_dir"],
        timeout=config["data"]["timeout"],
        retries=config["data"]["retries"],
    script:
        "../scripts/download.py"


rule clean:
    input:
        rules.download.output,
    output:
        table="results/data/radon.csv",
        provenance="results/data/provenance.json",
    log:
        f"{LOGS}/clean.log",
    benchmark:
        f"{BENCH}/clean.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        transform=config["data"]["transform"],
    script:
        "../scripts/clean.py"
