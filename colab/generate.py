"""Write the colab/*.ipynb notebooks from the sources in colab/notebooks.py, outputs stripped.

    python colab/generate.py            # rewrite every notebook
    python colab/generate.py --execute  # ... and refresh the site's executed copies
    python colab/generate.py --check    # exit 1 if a notebook or an executed copy is stale

The site shows each notebook with its outputs: ``docs/notebooks/<name>.ipynb`` is the notebook
with the outputs of one run at full size (figures at 72 dpi), executed by ``--execute`` with
``.ci/notebooks.py`` and committed; the colab/ copies stay without outputs. An executed copy
records the SHA-256 of its notebook's code cells (``metadata.feasjax.source_sha256``): while
that matches, ``--execute`` only copies the Markdown cells over (a prose edit re-runs nothing);
a changed or new code cell, or a new notebook, re-runs that notebook (``--force``: every one).
``--check`` fails on an executed copy whose code differs from its notebook's.

The repository URL of the install cell and of the "Open in Colab" badges is read from
pyproject.toml's ``[project.urls] Repository``, so that moving the repository is a one-line
change there (then rerun this script).
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import importlib.util
import os
import pathlib
import sys
import tempfile
import tomllib

import nbformat

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
EXECUTED = ROOT / "docs" / "notebooks"  # the copies with outputs that the site renders
DPI = 72  # figures of the executed copies: small PNGs (a notebook's file stays ~100 kB)
sys.path.insert(0, str(HERE))

import notebooks  # noqa: E402  (colab/notebooks.py: the cells of every notebook)


def repository() -> str:
    """The canonical repository URL, ``[project.urls] Repository`` of pyproject.toml."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return meta["project"]["urls"]["Repository"].rstrip("/")


def setup_cell(repo: str, preamble: str = "") -> str:
    """The first code cell: the small-size switch, then install feasjax only if it is missing."""
    return preamble + f'''# Setup. On a fresh Colab runtime feasjax is not importable: install it from the repository
# (skipped when it is already installed, e.g. `pip install -e .` in a clone).
# FEASJAX_NOTEBOOK_SMALL=1 shrinks epochs and sizes so that the notebook runs in seconds (CI).
import os
SMALL = os.environ.get("FEASJAX_NOTEBOOK_SMALL", "0") == "1"
try:
    import feasjax
except ImportError:
    %pip install -q "feasjax @ git+{repo}"
    import feasjax
print("feasjax", feasjax.__version__, "(small run)" if SMALL else "")'''


def badge(repo: str, name: str) -> str:
    """The "Open in Colab" badge of notebook ``name`` (Colab opens GitHub notebooks by path)."""
    path = repo.removeprefix("https://github.com/")
    url = f"https://colab.research.google.com/github/{path}/blob/main/colab/{name}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def build(name: str, spec: dict, repo: str) -> nbformat.NotebookNode:
    cells = [nbformat.v4.new_markdown_cell(f"# {spec['title']}\n\n{badge(repo, name)}\n\n"
                                           + spec["intro"].strip()),
             nbformat.v4.new_code_cell(setup_cell(repo, spec.get("preamble", "")))]
    for kind, text in spec["cells"]:
        make = nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell
        cells.append(make(text.strip()))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                  "language": "python"},
                   "language_info": {"name": "python"},
                   "colab": {"provenance": []}}
    for i, cell in enumerate(nb.cells):  # stable ids: regenerating changes nothing
        cell.id = f"{name.split('_')[0]}-{i:02d}"
    return nb


def code_hash(nb: nbformat.NotebookNode) -> str:
    """SHA-256 of a notebook's code cells, in order: what its outputs depend on."""
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    return hashlib.sha256("\0".join(code).encode()).hexdigest()


def with_outputs(nb: nbformat.NotebookNode,
                 executed: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    """``nb`` with the outputs of ``executed``; ``None`` if their code cells differ."""
    if executed.metadata.get("feasjax", {}).get("source_sha256") != code_hash(nb) \
            or code_hash(executed) != code_hash(nb):
        return None
    out = copy.deepcopy(nb)
    ran = [cell for cell in executed.cells if cell.cell_type == "code"]
    for cell, done in zip([cell for cell in out.cells if cell.cell_type == "code"], ran):
        cell.outputs, cell.execution_count = done.outputs, done.execution_count
    out.metadata["feasjax"] = {"source_sha256": code_hash(nb)}
    return out


def _noise(output: nbformat.NotebookNode) -> bool:
    """tqdm's warning that Jupyter has no ipywidgets (Colab has them): not the notebook's."""
    return output.output_type == "stream" and "TqdmWarning" in output.text


def execute(names: list[str]) -> dict[str, nbformat.NotebookNode]:
    """Run colab/``names`` at full size with .ci/notebooks.py; the executed notebooks (none if
    a cell failed), with their code hash."""
    spec = importlib.util.spec_from_file_location("ci_notebooks", ROOT / ".ci" / "notebooks.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    with tempfile.TemporaryDirectory() as tmp:
        pathlib.Path(tmp, "matplotlibrc").write_text(f"figure.dpi: {DPI}\n")
        os.environ.update(MPLBACKEND="module://matplotlib_inline.backend_inline",
                          MATPLOTLIBRC=tmp, FEASJAX_NOTEBOOK_SMALL="0")
        if runner.main([str(HERE / n) for n in names] + ["--executed", tmp]):
            return {}
        executed = {name: nbformat.read(pathlib.Path(tmp, name), as_version=4)
                    for name in names}
    for nb in executed.values():
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = [o for o in cell.outputs if not _noise(o)]
        nb.metadata["feasjax"] = {"source_sha256": code_hash(nb)}
    return executed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="report notebooks and executed copies that differ from their "
                           "source; write nothing")
    mode.add_argument("--execute", action="store_true",
                      help="also refresh docs/notebooks/ (run the notebooks whose code changed)")
    parser.add_argument("--force", action="store_true",
                        help="with --execute: run every notebook, changed or not")
    args = parser.parse_args(argv)
    repo, stale, to_run = repository(), [], {}
    for name, spec in notebooks.NOTEBOOKS.items():
        nb = build(name, spec, repo)
        text = nbformat.writes(nb) + "\n"
        path, done = HERE / name, EXECUTED / name
        merged = None if not done.exists() or done.is_symlink() or args.force else \
            with_outputs(nb, nbformat.read(done, as_version=4))
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
            if merged is None or nbformat.writes(merged) + "\n" != done.read_text():
                stale.append(f"docs/notebooks/{name}")
            continue
        path.write_text(text)
        if args.execute and merged is None:
            to_run[name] = nb
        elif args.execute and nbformat.writes(merged) + "\n" != done.read_text():
            done.write_text(nbformat.writes(merged) + "\n")  # the prose changed, not the code
    if stale:
        print("out of date (run python colab/generate.py --execute):", ", ".join(stale))
    executed = execute(list(to_run)) if to_run else {}
    for name, nb in to_run.items():
        if name in executed:
            done = EXECUTED / name
            done.unlink(missing_ok=True)  # a symlink to the colab/ copy before the first run
            done.write_text(nbformat.writes(with_outputs(nb, executed[name])) + "\n")
    if to_run and not executed:
        print("not executed (a cell failed):", ", ".join(to_run))
    return 1 if stale or (to_run and not executed) else 0

if __name__ == "__main__":
    sys.exit(main())
