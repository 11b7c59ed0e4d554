"""mkdocs hooks: the README as the guide page, and the table of the top-level names.

- ``<!-- feasjax-readme -->`` is replaced by README.md and ``<!-- feasjax-colab-readme -->`` by
  colab/README.md (one source for the repository and the site). In the README, links to files
  of the repository that are not part of the site (``benchmarks/README.md``) point to the
  repository, and links to the notebooks point to their rendered pages.
- Cross-references to Python, NumPy, JAX, Optax and Flax: the inventories that
  docs/inventories.py lists are written to a temporary directory and given to mkdocstrings
  (``file://`` URLs) before it loads its inventories; nothing is downloaded.
- ``<!-- feasjax-top-level -->`` in a page is replaced by a table of ``feasjax.__all__``, each
  name linked to its documentation in a subpackage (a cross-reference: a name documented
  nowhere fails the strict build), with an anchor ``feasjax.<name>`` that docstrings can
  reference.
- The guide (the README) is titled "Guide", not "feasjax" like the home page; its Colab badges
  (images from Google's servers) become the text "Open in Colab", and its fenced blocks
  without a language (console output) get the class ``output``, which the stylesheet wraps.
- Math: the TeX that ``pymdownx.arithmatex`` marks up (``$...$``, ``$$...$$``, ``.. math::``
  in docstrings) becomes MathML at build time (``latex2mathml``), which browsers draw
  natively: no MathJax, no script, no network when the site is read.
- A notebook page gets a line under its title: the notebook to download (the executed copy,
  with its outputs) and the link that opens it in Colab (in place of the Colab badge, an image
  from another host). The scripts mkdocs-jupyter adds (an empty MathJax loader, a Mermaid
  loader from a CDN) are dropped: the notebooks have neither math nor diagrams. Its table of
  contents takes the ids and titles of the headings on the page (mkdocs-jupyter derives them
  from the Markdown separately, and drops inline code: ``2. `nnx.Optimizer` with ...`` had a
  link to an id that does not exist).
"""
from __future__ import annotations

import html
import importlib
import re
import sys
import tempfile
import tomllib
import types
from pathlib import Path

import latex2mathml.converter
from mkdocs.plugins import event_priority

ROOT = Path(__file__).resolve().parents[1]
REPO = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
MARKER = "<!-- feasjax-top-level -->"


_INVENTORIES = tempfile.TemporaryDirectory(prefix="feasjax-docs-inventories-")


@event_priority(100)  # before mkdocstrings' on_config, which loads the inventories
def on_config(config):
    sys.path.insert(0, str(Path(__file__).parent))
    import inventories

    python = config.plugins["mkdocstrings"].config.handlers.setdefault("python", {})
    python["inventories"] = [*python.get("inventories", []),
                             *inventories.write(Path(_INVENTORIES.name))]
    return config


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


MATH = re.compile(r'<(span|div) class="arithmatex">(?:\\\(|\\\[)(.*?)(?:\\\)|\\\])</\1>', re.S)


def _mathml(match: re.Match) -> str:
    tex = html.unescape(match.group(2)).strip()
    display = "block" if match.group(1) == "div" else "inline"
    return latex2mathml.converter.convert(tex, display=display)


def _notebook_links(page) -> str:
    name = Path(page.file.src_path).name
    colab = f"https://colab.research.google.com/github/{REPO.removeprefix('https://github.com/')}"
    return (f'<p class="feasjax-notebook-links"><a href="{name}" download>Download {name}</a> '
            f'(with its outputs) · <a href="{colab}/blob/main/colab/{name}">Open in Colab</a></p>')


NOTEBOOK_SCRIPTS = re.compile(
    r'<script src=""> ?</script>'  # mkdocs-jupyter's MathJax loader, with no URL
    r'|<script type="text/x-mathjax-config">.*?</script>'
    r'|<script type="module">(?:(?!</script>).)*?mermaid.*?</script>', re.S)
BADGE = re.compile(r'<p><a href="[^"]*"><img alt="Open In Colab" src="[^"]*"/></a></p>')
BADGE_IMAGE = re.compile(r'<img alt="Open In Colab" src="https://colab[^"]*"\s*/?>')
HEADING = re.compile(r'<h([1-6]) id="([^"]+)"[^>]*>(.*?)</h\1>', re.S)


def _notebook_page(content: str, page) -> str:
    content = BADGE.sub("", NOTEBOOK_SCRIPTS.sub("", content))
    content = re.sub(r"(</h1>)", lambda m: m.group(1) + _notebook_links(page), content, count=1)
    headings = [(anchor, html.unescape(re.sub(r"<[^>]+>|¶", "", text)).strip())
                for _, anchor, text in HEADING.findall(content)]
    items, stack = [], list(page.toc)
    while stack:
        item = stack.pop(0)
        items.append(item)
        stack[:0] = item.children
    if len(items) == len(headings):
        for item, (anchor, title) in zip(items, headings):
            item.id, item.title = anchor, title
    return content


def on_page_content(content: str, page, config, files) -> str:
    content = MATH.sub(_mathml, content)
    if page.file.src_path.endswith(".ipynb"):
        content = _notebook_page(content, page)
    # the README's Colab badges (an image from Google): the link, as text
    return BADGE_IMAGE.sub("Open in Colab", content)


def _output_blocks(markdown: str) -> str:
    """Fenced blocks without a language (console output) get the class ``output``, which the
    site's stylesheet wraps rather than let wide output run off the column."""
    lines, inside = markdown.split("\n"), False
    for i, line in enumerate(lines):
        if line.startswith("```"):
            if not inside and line.strip() == "```":
                lines[i] = "```{.text .output}"
            inside = not inside
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    readme = re.sub(r"\A# feasjax\n", "# Guide\n", (ROOT / "README.md").read_text())
    readme = _output_blocks(readme)
    markdown = markdown.replace("<!-- feasjax-readme -->", _repository_links(readme))
    markdown = markdown.replace("<!-- feasjax-colab-readme -->",
                                (ROOT / "colab" / "README.md").read_text())
    if MARKER in markdown:
        importlib.import_module("feasjax")
        markdown = markdown.replace(MARKER, top_level_table())
    return markdown
