"""Rule `sbc_table`: a campaign's records, the uniformity of its ranks and its conclusion."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from funnel.io import script_log

smk = snakemake  # noqa: F821
with script_log(smk.log[0]):
    from funnel.io import atomic_path, read_json, write_json
    from funnel.sbc import calibration, calibration_markdown, conclusion, records_table

    records = records_table([read_json(path) for path in smk.input])
    table = calibration(records, bins=int(smk.params.bins))
    outcome = conclusion(records, table)
    print(outcome["line"])
    for key, frame in (("records", records), ("calibration", table)):
        with atomic_path(smk.output[key]) as tmp:
            frame.to_csv(tmp, index=False)
    write_json(smk.output.conclusion, outcome, undefined_as_null=True)
    with atomic_path(smk.output.markdown) as tmp:
        tmp.write_text(calibration_markdown(table, outcome), encoding="utf-8")
