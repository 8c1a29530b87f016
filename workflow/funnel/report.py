"""Run the report's notebooks: execute templates with papermill, render them with nbconvert.

(The index page that links them is :mod:`funnel.index_page`.)

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
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
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


# Longest Unix socket path (sun_path is 104-108 bytes), less room for the "-<port>" suffix.
MAX_SOCKET_PATH = 100


@contextlib.contextmanager
def private_sockets(manager: Any) -> Iterator[None]:
    """Talk to the kernel over Unix sockets in a folder of this job's own (removed afterwards).

    Over TCP, jupyter_client picks ports that are free *now* and the kernel binds
    them a moment later, so two notebooks starting at once (Snakemake runs the
    report jobs in parallel) can pick the same port: one kernel then dies with
    "Address already in use" and its report job fails. Sockets in a private
    folder cannot collide. Where such a path would be too long for a socket (a
    very long TMPDIR) or there are no Unix sockets (Windows), TCP stays.
    """
    folder = Path(tempfile.mkdtemp(prefix="funnel-kernel-"))
    path = folder / "kernel"
    try:
        if os.name != "nt" and len(os.fsencode(path)) + 4 <= MAX_SOCKET_PATH:
            manager.transport = "ipc"
            manager.ip = str(path)
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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


CODE_CHOICES = ("show", "hide")


def notebook_link_cell(href: str, code: str) -> Any:
    """The Markdown cell that opens a rendered page: where the executed notebook (the code) is."""
    import nbformat

    link = f"[{Path(href).name}]({href})"
    if code == "hide":
        text = (
            f"*Code cells are hidden on this page (`report.code: hide` in config.yaml); the executed notebook "
            f"{link} has every cell with its code.*"
        )
    else:
        text = f"*The executed notebook: {link}.*"
    return nbformat.v4.new_markdown_cell(text, id="notebook-link")


def render_html(nb: Any, title: str, *, code: str = "show", notebook_href: str | None = None) -> str:
    """The notebook as a self-contained HTML page (figures inline as data: URIs).

    ``code`` 'hide' leaves out the code cells' input and the In/Out prompts (nbconvert's
    ``exclude_input``): text, tables and figures only. With ``notebook_href`` the page
    opens on a link to the executed notebook, where the code is. ``nb`` is not changed.
    """
    import copy

    from nbconvert import HTMLExporter

    if code not in CODE_CHOICES:
        raise ValueError(f"report.code must be one of {', '.join(CODE_CHOICES)}, not {code!r}")
    hide = code == "hide"
    exporter = HTMLExporter(
        template_name="lab", exclude_input=hide, exclude_input_prompt=hide, exclude_output_prompt=hide
    )
    if notebook_href is not None:
        nb = copy.deepcopy(nb)
        nb.cells.insert(0, notebook_link_cell(notebook_href, code))
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
    code: str = "show",
) -> Any:
    """Execute ``template`` with ``parameters``; write the notebook, its HTML and its exports.

    ``timeout`` bounds every cell (seconds). ``exports`` maps export names
    (cell tags ``export:<name>``) to output files. Relative paths in
    ``parameters`` are read from ``cwd`` (default: the current directory).
    ``code`` is 'show' or 'hide' (the code cells on the HTML page, see
    :func:`render_html`); the page links the executed notebook either way.
    Raises :class:`NotebookError` naming the failing cell and its error; then
    no output file is written (or left over).
    """
    import nbformat
    import papermill as pm

    if code not in CODE_CHOICES:
        raise NotebookError(f"report.code must be one of {', '.join(CODE_CHOICES)}, not {code!r}")
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
    # The kernel is shut down before its socket folder goes.
    with private_sockets(manager):
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
    href = Path(os.path.relpath(Path(ipynb), Path(html_path).parent)).as_posix()
    page = render_html(nb, title or template.stem, code=code, notebook_href=href)

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
