"""Build the report: execute notebook templates with papermill, render them with nbconvert.

The notebooks in ``workflow/notebooks`` only *read* the workflow's tables and
traces (they never fit). Each is executed by :func:`run_notebook`:

1. papermill injects the parameters (after the cell tagged ``parameters``) and
   runs every cell in an explicit Jupyter kernel (:func:`kernel_manager`);
2. the volatile metadata (timestamps, durations, the random id of the injected
   cell) is stripped (:func:`strip_volatile`), so the same inputs give the same
   notebook;
3. outputs of cells tagged ``export:<name>`` (a figure or a table) are copied to
   files of their own, for ``snakemake --report``;
4. the executed ``.ipynb``, its HTML (nbconvert) and the exports are written
   atomically: a failing cell raises :class:`NotebookError` with the cell's
   error, and leaves none of them behind.

Nothing here imports PyMC.
"""

from __future__ import annotations

import base64
import contextlib
import html
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .io import atomic_path

LIBRARY_DIR = Path(__file__).resolve().parent.parent  # workflow/: holds funnel
NOTEBOOK_DIR = LIBRARY_DIR / "notebooks"
NATIVE_KERNEL = "python3"
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
EXPORT_PREFIX = "export:"
# Notebook metadata papermill writes that changes on every run.
VOLATILE_PAPERMILL_KEYS = ("start_time", "end_time", "duration", "exception", "output_path")


class NotebookError(RuntimeError):
    """A notebook could not be executed or rendered; the message carries the cell's error."""


# ------------------------------------------------------------------ the kernel
def kernel_manager(name: str = NATIVE_KERNEL) -> Any:
    """A Jupyter ``KernelManager`` for kernel ``name``.

    ``python3`` is ipykernel's own kernel, always run by *this* interpreter
    (``sys.executable``): the rule's Python, be it the project's venv or the
    rule's conda env, whatever other ``python3`` kernelspec a user or the
    system may have installed. Any other name must be an installed kernelspec
    (``jupyter kernelspec list``).
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    from jupyter_client.manager import KernelManager

    class HereFirst(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> Any:
            if kernel_name == NATIVE_KERNEL:
                from ipykernel.kernelspec import RESOURCES, get_kernel_dict

                return self.kernel_spec_class(resource_dir=RESOURCES, **get_kernel_dict())
            return super().get_kernel_spec(kernel_name)

    specs = HereFirst()
    try:
        specs.get_kernel_spec(name)
    except NoSuchKernel:
        available = ", ".join(sorted(set(specs.find_kernel_specs()) | {NATIVE_KERNEL}))
        raise NotebookError(
            f"Jupyter kernel {name!r} is not installed; available: {available}. Use report.kernel "
            f"'{NATIVE_KERNEL}' (the rule's own Python) or register one with "
            "`python -m ipykernel install --user --name NAME`."
        ) from None
    return KernelManager(kernel_name=name, kernel_spec_manager=specs)


def kernel_metadata(manager: Any) -> dict[str, str]:
    spec = manager.kernel_spec
    return {"name": manager.kernel_name, "display_name": spec.display_name, "language": spec.language}


@contextlib.contextmanager
def kernel_output_to(stream: Any) -> Iterator[None]:
    """Let the kernel process inherit ``stream`` (the rule's log) as its stdout and stderr.

    The kernel writes its own messages (start-up warnings, crashes) to file
    descriptors 1 and 2, not to Python's ``sys.stderr``; without this they
    would bypass the log.
    """
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    stream.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for copy in saved:
            os.close(copy)


@contextlib.contextmanager
def library_on_kernel_path() -> Iterator[None]:
    """Let the kernel import ``funnel`` (a conda env does not install it)."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(LIBRARY_DIR), old]))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


# ------------------------------------------------------------------ notebook surgery
def has_parameters_cell(nb: Any) -> bool:
    return any(PARAMETERS_TAG in cell.get("metadata", {}).get("tags", []) for cell in nb.cells)


def strip_volatile(nb: Any, template_name: str | None = None) -> Any:
    """Remove what changes from run to run; keep execution counts and outputs.

    Drops papermill's per-cell and per-notebook timestamps and durations,
    nbclient's per-cell timing, and gives the injected-parameters cell a fixed
    id (papermill makes a random one). Works in place and returns ``nb``.
    """
    meta = nb.metadata.get("papermill")
    if meta is not None:
        for key in VOLATILE_PAPERMILL_KEYS:
            meta.pop(key, None)
        if template_name is not None:
            meta["input_path"] = template_name
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if INJECTED_TAG in cell.metadata.get("tags", []):
            cell["id"] = INJECTED_TAG
    return nb


def cell_errors(nb: Any) -> list[str]:
    """Every error output of the notebook, as 'cell N: Name: message'."""
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
    return found


def exports_of(nb: Any) -> dict[str, tuple[str, bytes]]:
    """Outputs of the cells tagged ``export:<name>``: name -> (mime type, bytes).

    A figure exports its last PNG; a table its last HTML (wrapped in a page).
    """
    found: dict[str, tuple[str, bytes]] = {}
    for cell in nb.cells:
        for tag in cell.get("metadata", {}).get("tags", []):
            if not tag.startswith(EXPORT_PREFIX):
                continue
            name = tag[len(EXPORT_PREFIX) :]
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if "image/png" in data:
                    found[name] = ("image/png", base64.b64decode(data["image/png"]))
                elif "text/html" in data:
                    body = data["text/html"]
                    body = "".join(body) if isinstance(body, list) else body
                    page = (
                        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
                        f"<title>{html.escape(name)}</title></head><body>{body}</body></html>\n"
                    )
                    found[name] = ("text/html", page.encode())
    return found


def render_html(nb: Any, title: str) -> str:
    """The notebook as a self-contained HTML page (figures inline as data: URIs)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return body


# ------------------------------------------------------------------ execution
def _logger(stream: Any) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    return handler


def run_notebook(
    template: str | os.PathLike[str],
    ipynb: str | os.PathLike[str],
    html_path: str | os.PathLike[str],
    parameters: Mapping[str, Any],
    *,
    kernel: str = NATIVE_KERNEL,
    timeout: float = 600,
    exports: Mapping[str, str | os.PathLike[str]] | None = None,
    title: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Any:
    """Execute ``template`` with ``parameters``; write the notebook, its HTML and its exports.

    ``timeout`` bounds every cell (seconds). ``exports`` maps export names
    (cell tags ``export:<name>``) to output files. Relative paths in
    ``parameters`` are read from ``cwd`` (default: the current directory).
    Raises :class:`NotebookError` naming the failing cell and its error; then
    no output file is written (or left over).
    """
    import nbformat
    import papermill as pm

    template = Path(template)
    source = nbformat.read(template, as_version=4)
    if not has_parameters_cell(source):
        raise NotebookError(f"{template} has no cell tagged {PARAMETERS_TAG!r}")
    manager = kernel_manager(kernel)
    handler = _logger(sys.stderr)
    pm_log = logging.getLogger("papermill")
    pm_log.addHandler(handler)
    pm_log.setLevel(logging.INFO)
    print(f"executing {template.name} with kernel {kernel!r} ({' '.join(manager.kernel_spec.argv[:3])})", flush=True)
    try:
        with library_on_kernel_path(), kernel_output_to(sys.stderr):
            nb = pm.execute_notebook(
                source,
                None,
                parameters=dict(parameters),
                kernel_name=kernel,
                km=manager,
                progress_bar=False,
                log_output=True,
                execution_timeout=timeout,
                cwd=str(cwd) if cwd is not None else None,
            )
    except pm.PapermillExecutionError as error:
        raise NotebookError(
            f"{template.name}: cell {error.cell_index} (execution count {error.exec_count}) raised "
            f"{error.ename}: {error.evalue}\n--- cell source ---\n{error.source}"
        ) from error
    except Exception as error:  # a timeout, a dead kernel
        raise NotebookError(f"{template.name}: execution failed: {type(error).__name__}: {error}") from error
    finally:
        pm_log.removeHandler(handler)
        with contextlib.suppress(Exception):
            if manager.has_kernel:
                manager.shutdown_kernel(now=True)

    errors = cell_errors(nb)
    if errors:  # papermill raises on these; never publish one that slipped through
        raise NotebookError(f"{template.name}: error outputs: " + "; ".join(errors))
    strip_volatile(nb, template.name)
    nb.metadata["kernelspec"] = kernel_metadata(manager)
    found = exports_of(nb)
    missing = sorted(set(exports or {}) - set(found))
    if missing:
        raise NotebookError(
            f"{template.name}: no output for export(s) {', '.join(missing)} (tag a cell 'export:<name>')"
        )
    page = render_html(nb, title or template.stem)

    # Everything is computed: now write, each file atomically.
    with atomic_path(ipynb) as tmp:
        nbformat.write(nb, str(tmp))
    for name, path in (exports or {}).items():
        with atomic_path(path) as tmp:
            tmp.write_bytes(found[name][1])
    with atomic_path(html_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    print(f"wrote {ipynb}, {html_path}" + "".join(f", {p}" for p in (exports or {}).values()), flush=True)
    return nb


# ------------------------------------------------------------------ the index page
def index_page(title: str, intro: str, sections: Sequence[tuple[str, Sequence[tuple[str, str, str]]]]) -> str:
    """A small static HTML page: sections of (link text, href, one-line summary)."""
    parts = [
        "<!DOCTYPE html>",
        "<html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.45}"
        "li{margin:.4em 0}.s{color:#444}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(intro)}</p>",
    ]
    for heading, entries in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2><ul>")
        for text, href, summary in entries:
            parts.append(
                f"<li><a href='{html.escape(href, quote=True)}'>{html.escape(text)}</a>"
                f" <span class='s'>&mdash; {html.escape(summary)}</span></li>"
            )
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def relative_href(target: str | os.PathLike[str], page: str | os.PathLike[str]) -> str:
    """Link from the page ``page`` to ``target`` (both relative to the working directory)."""
    return Path(os.path.relpath(Path(target), Path(page).parent)).as_posix()


def comparison_sampler(samplers: Sequence[str]) -> str:
    """The sampler whose traces the comparison draws: PyMC's NUTS (the blog's) when fitted, else the first."""
    return "pymc" if "pymc" in samplers else sorted(samplers)[0]


def dataset_section(
    index: str,
    dataset: str,
    *,
    pages: Mapping[str, str],
    group_pages: Mapping[tuple[str, str], str],
    tables: Mapping[str, str],
    table: str,
    provenance: str,
    sampler: str,
    few_rows: int = 5,
) -> tuple[str, list[tuple[str, str, str]]]:
    """One dataset's section of the index: its notebooks and tables, each with a line computed from the data.

    ``pages`` maps 'data', 'comparison' and 'experiments' to their HTML (a missing
    key: no such page); ``tables`` maps the aggregate's keys to its files.
    """
    import pandas as pd

    from .datasets import read_table
    from .notebook import read_provenance
    from .prose import comparison_line, data_line, experiments_line, group_line

    record = read_provenance(provenance)
    summary = pd.read_csv(tables["summary"]).set_index(["sampler", "model"])
    maps = pd.read_csv(tables["map_table"])
    fits = pd.read_csv(tables["fits"])
    columns = record["columns"]
    entries = [
        (
            f"The data ({columns['group']}, {columns['x']}, {columns['y']})",
            relative_href(pages["data"], index),
            data_line(read_table(table, record), record, few_rows),
        )
    ]
    for (s, m), page in sorted(group_pages.items()):
        entries.append((f"Fit group {s} / {m}", relative_href(page, index), group_line(summary.loc[(s, m)])))
    if "comparison" in pages:
        entries.append(
            (
                "Centered vs non-centered",
                relative_href(pages["comparison"], index),
                comparison_line(summary.reset_index(), maps, sampler),
            )
        )
    if "experiments" in pages:
        entries.append(
            (
                "Experiments: bias against a reference run, target_accept, rows per group, samplers",
                relative_href(pages["experiments"], index),
                experiments_line(fits),
            )
        )
    described = {
        "summary_html": "median [min, max] across seeds per sampler and form, and the share of seeds passing each check",
        "summary_md": "the same table as Markdown",
        "summary": f"the same as CSV: {len(summary)} rows, one per sampler and form, median/min/max of every metric",
        "fits": f"one row per fit ({len(fits)} fits): every diagnostic of every seed",
        "map_table": "MAP estimates beside the posterior means, per model form",
    }
    entries += [
        (f"table {Path(tables[k]).name}", relative_href(tables[k], index), text)
        for k, text in described.items()
        if k in tables
    ]
    return f"Dataset {dataset}: {record['rows']} rows, {record['groups']} groups", entries


def datasets_section(index: str, datasets_csv: str) -> tuple[str, list[tuple[str, str, str]]]:
    """The cross-dataset section: the table of every dataset x sampler x form."""
    import pandas as pd

    from .prose import datasets_line

    frame = pd.read_csv(datasets_csv)
    return (
        "Across datasets",
        [(Path(datasets_csv).name, relative_href(datasets_csv, index), datasets_line(frame))],
    )
