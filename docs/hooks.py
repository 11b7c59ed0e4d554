"""mkdocs hooks: the README as the guide page, and the table of the top-level names.

- ``<!-- feasjax-readme -->`` is replaced by README.md and ``<!-- feasjax-colab-readme -->`` by
  colab/README.md (one source for the repository and the site). In the README, links to files
  of the repository that are not part of the site (``benchmarks/README.md``) point to the
  repository, and links to the notebooks point to their rendered pages.
- ``<!-- feasjax-top-level -->`` in a page is replaced by a table of ``feasjax.__all__``, each
  name linked to its documentation in a subpackage (a cross-reference: a name documented
  nowhere fails the strict build), with an anchor ``feasjax.<name>`` that docstrings can
  reference.
"""
from __future__ import annotations

import importlib
import re
import tomllib
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPO = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
MARKER = "<!-- feasjax-top-level -->"


def _where(name: str, value: object) -> str:
    """The subpackage whose ``__all__`` documents ``value`` (the top level re-exports it)."""
    import feasjax

    for sub in feasjax.__all__:
        module = getattr(feasjax, sub)
        if isinstance(module, types.ModuleType) and name in module.__all__ \
                and getattr(module, name) is value:
            return f"feasjax.{sub}.{name}"
    raise ValueError(f"feasjax.{name} is exported by no subpackage")


def top_level_table() -> str:
    import feasjax

    rows = ["| name | documented as |", "| --- | --- |"]
    for name in feasjax.__all__:
        value = getattr(feasjax, name)
        anchor = f'<a id="feasjax.{name}"></a>'
        if isinstance(value, types.ModuleType):
            rows.append(f"| {anchor}`fj.{name}` | [{value.__name__}]({name}.md) |")
        elif name == "__version__":
            rows.append(f"| {anchor}`fj.__version__` | the version, `{value}` |")
        else:
            target = _where(name, value)
            rows.append(f"| {anchor}`fj.{name}` | [`{target}`][{target}] |")
    return "\n".join(rows)


def _repository_links(markdown: str) -> str:
    def fix(match: re.Match) -> str:
        text, target = match.group(1), match.group(2)
        if re.match(r"^[a-z]+:|^#", target):
            return match.group(0)
        path = target.split("#")[0]
        if path.startswith("colab/") and path.endswith(".ipynb"):
            return f"[{text}](notebooks/{path.removeprefix('colab/')})"
        return f"[{text}]({REPO}/blob/main/{target})"
    return re.sub(r"\[([^\]]*)\]\(([^)\s]+)\)", fix, markdown)


def on_page_markdown(markdown: str, page, config, files) -> str:
    readme = (ROOT / "README.md").read_text()
    markdown = markdown.replace("<!-- feasjax-readme -->", _repository_links(readme))
    markdown = markdown.replace("<!-- feasjax-colab-readme -->",
                                (ROOT / "colab" / "README.md").read_text())
    if MARKER in markdown:
        importlib.import_module("feasjax")
        markdown = markdown.replace(MARKER, top_level_table())
    return markdown
