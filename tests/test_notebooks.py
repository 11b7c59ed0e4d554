"""The colab/ notebooks and the docs site, checked without running them (fast, no extras).

Executing the notebooks (``.ci/notebooks.py``) and building the site (``mkdocs build
--strict``, then ``.ci/docs_check.py``) happen in CI's docs job, which installs the
``notebooks`` and ``docs`` extras; here: the notebooks are committed without outputs, each
opens with its Colab badge and the install cell for the repository of pyproject.toml, uses only
public names, and the site's navigation has every notebook and a page per subpackage; the site
renders an executed copy of each notebook (docs/notebooks/) whose cells are the notebook's.
"""
import importlib.util
import json
import pathlib
import re
import tomllib
import types

import pytest

import feasjax as fj
from test_api import SUBPACKAGES, _check_source

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "colab").glob("*.ipynb"))
REPO = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
MKDOCS = (ROOT / "mkdocs.yml").read_text()


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_there_are_at_least_five_numbered_notebooks():
    names = [p.name for p in NOTEBOOKS]
    assert len(names) >= 5, names
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", n) for n in names), names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    for i, cell in enumerate(_cells(path)):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name} cell {i} has outputs"
            assert cell.get("execution_count") is None, f"{path.name} cell {i} was executed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_its_badge_and_the_install_cell(path):
    cells = _cells(path)
    title = _source(cells[0])
    colab = f"https://colab.research.google.com/github/{REPO.removeprefix('https://github.com/')}"
    assert cells[0]["cell_type"] == "markdown" and title.startswith("# ")
    assert f"({colab}/blob/main/colab/{path.name})" in title
    setup = _source(next(c for c in cells if c["cell_type"] == "code"))
    assert 'os.environ.get("FEASJAX_NOTEBOOK_SMALL", "0") == "1"' in setup
    # installed from the repository, and only when feasjax is not importable
    assert re.search(r"try:\n    import feasjax\nexcept ImportError:\n"
                     rf'    %pip install -q "feasjax @ git\+{re.escape(REPO)}"', setup), setup


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_code_uses_only_public_names(path):
    # IPython magics are not Python: `%pip ...` is read as `pass`
    code = "\n".join(re.sub(r"^(\s*)%.*$", r"\1pass", _source(c), flags=re.M)
                     for c in _cells(path) if c["cell_type"] == "code")
    _check_source(code, path.name)


def test_the_site_lists_every_notebook_and_a_page_per_subpackage():
    for path in NOTEBOOKS:
        assert f"notebooks/{path.name}" in MKDOCS, f"{path.name} is not in mkdocs.yml's nav"
    for sub in (*SUBPACKAGES, "cli"):
        page = ROOT / "docs" / "api" / f"{sub}.md"
        assert f"api/{sub}.md" in MKDOCS, f"no API page for feasjax.{sub} in the nav"
        assert page.read_text().strip() == f"::: feasjax.{sub}", page
    assert "strict: true" in MKDOCS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_site_shows_each_notebook_executed_from_its_current_cells(path):
    # docs/notebooks/<name> is colab/<name> with the outputs of a run (colab/generate.py
    # --execute writes it): the same cells, every code cell executed, a figure somewhere
    executed = ROOT / "docs" / "notebooks" / path.name
    assert executed.is_file() and not executed.is_symlink(), \
        f"no executed copy {executed}: run python colab/generate.py --execute"
    cells, ran = _cells(path), _cells(executed)
    assert [(c["cell_type"], _source(c)) for c in cells] == \
        [(c["cell_type"], _source(c)) for c in ran], \
        f"{executed} is stale: run python colab/generate.py --execute"
    code = [c for c in ran if c["cell_type"] == "code"]
    assert all(c["execution_count"] is not None for c in code), f"{executed}: not executed"
    assert not [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert any(o["output_type"] in ("display_data", "execute_result", "stream")
               for c in code for o in c["outputs"]), f"{executed} shows no output"
    assert executed.stat().st_size < 400_000, f"{executed} is large: figures at low dpi"


def test_every_top_level_name_is_documented_in_a_subpackage():
    # docs/hooks.py links each top-level name to its subpackage's page
    for name in fj.__all__:
        value = getattr(fj, name)
        if isinstance(value, types.ModuleType) or name == "__version__":
            continue
        assert any(name in getattr(fj, s).__all__ and getattr(getattr(fj, s), name) is value
                   for s in SUBPACKAGES), f"fj.{name} is in no subpackage's __all__"


def _docs_check():
    spec = importlib.util.spec_from_file_location("docs_check", ROOT / ".ci" / "docs_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_site_check_finds_what_a_reader_would_hit(tmp_path):
    # .ci/docs_check.py on the built site (CI): each of its checks, on HTML it must reject
    check = _docs_check()
    long_line = "x" * (check.COLUMNS + 1)
    assert check.too_wide(f"<pre><code>{long_line}</code></pre>")
    assert not check.too_wide(f'<div class="output highlight"><pre>{long_line}</pre>')
    # a docstring example (a block without a language) is not console output: it counts
    example = f'<div class="highlight"><pre><code>&gt;&gt;&gt; {long_line}</code></pre>'
    assert check.too_wide(example)
    wide_table = f"<table><tr><td>{'a' * 60}</td><td>{'b' * 60}</td></tr></table>"
    assert check.too_wide(wide_table) and not check.too_wide("<table><tr><td>a b</td></tr></table>")
    page = tmp_path / "index.html"
    html = '<h2 id="here">x</h2><a href="#here">ok</a><a href="#gone">broken</a>'
    page.write_text(html)
    problems = check.broken_anchors(tmp_path, page, html, {})
    assert len(problems) == 1 and "gone" in problems[0]  # the broken link, and only it
    assert check.fetched_remotely('<script src="https://unpkg.com/mathjax@3/tex.js"></script>')
    assert check.fetched_remotely('<script src=""> </script>')
    assert check.fetched_remotely('<link rel="stylesheet" href="https://fonts.googleapis.com/x">')
    assert check.fetched_remotely('<span class="arithmatex">\\(x\\)</span>')
    assert not check.fetched_remotely('<a href="https://github.com/x">a link</a><math></math>')
