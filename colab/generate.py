"""Write the colab/*.ipynb notebooks from the sources in colab/notebooks.py, outputs stripped.

    python colab/generate.py          # rewrite every notebook
    python colab/generate.py --check  # exit 1 if a notebook differs from its source

The repository URL of the install cell and of the "Open in Colab" badges is read from
pyproject.toml's ``[project.urls] Repository``, so that moving the repository is a one-line
change there (then rerun this script).
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import tomllib

import nbformat

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="report notebooks that differ from their source; write nothing")
    args = parser.parse_args(argv)
    repo, stale = repository(), []
    for name, spec in notebooks.NOTEBOOKS.items():
        text = nbformat.writes(build(name, spec, repo)) + "\n"
        path = HERE / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print("out of date (run python colab/generate.py):", ", ".join(stale))
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
