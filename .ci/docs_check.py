"""After ``mkdocs build``: the built site documents every public name and reads well offline.

    python .ci/docs_check.py [SITE_DIR]

Checks, on the HTML of the built site (no browser; what a reader at 1400 px would hit):

- **names**: for each subpackage ``feasjax.<sub>`` (``feasjax.cli`` included) the page
  ``api/<sub>/`` holds an anchor ``id="feasjax.<sub>.<name>"`` for every name of its
  ``__all__``, and the API index an anchor ``feasjax.<name>`` for every top-level name;
- **width**: no line of a code block (``<pre>``: examples, signatures, code cells) is longer
  than ``COLUMNS``, and no table needs more than ``COLUMNS`` characters (the longest
  unbreakable word of each column, summed). The budget: docs/stylesheets/extra.css widens
  material's grid to 76rem, so at 1400 px (20 px/rem) the grid fills the window and the
  content column between the two 12.1rem sidebars, less 1.2rem margins, is 868 px; code is set
  at 13.6 px (0.85 x 0.8rem), about 8.2 px a character in a monospace font, inside 16 px of
  padding a side: 102 columns, so 100. A longer line is cut (scrolled out of sight) at that
  width. The API pages keep to ``API_COLUMNS`` = 80 (mkdocstrings' signature line_length):
  they fit the 688 px column of material's default 61rem grid too (80 columns), so windows
  narrower than 1400 px do not cut them either. Blocks that extra.css wraps (a notebook's
  printed output, the guide's console output, of class ``output``) are not counted;
- **anchors**: every ``href="#id"`` of a page (its table of contents included) names an id of
  that page, and every link to ``page/#id`` in the site names an id of that page;
- **offline**: nothing is loaded from another host when a page is read (no ``<script src>``,
  stylesheet, image, frame or ``import()`` of an ``http(s)://`` or protocol-relative URL, no
  empty ``<script src="">``), and no math is left as TeX for a script to typeset (docs/hooks.py
  writes MathML);
- **notebooks**: every colab/ notebook has a page whose code cells all ran (no ``In [ ]:``
  prompt) and that shows outputs, with the figures of notebooks that plot.

Exits 1 and lists each problem; prints the counts otherwise.
"""
from __future__ import annotations

import ast
import html
import pathlib
import re
import sys
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parents[1]
COLUMNS = 100
API_COLUMNS = 80
# <pre> blocks that docs/stylesheets/extra.css wraps: a notebook's printed output, a fenced
# block of class output (the guide's console output).
WRAPPED = re.compile(r'<div class="[^"]*\b(?:jp-OutputArea-output|output)\b[^"]*"[^>]*>\s*$')

TAG = re.compile(r"<[^>]+>")
PRE = re.compile(r"<pre[^>]*>(.*?)</pre>", re.S)
TABLE = re.compile(r"<table[^>]*>(.*?)</table>", re.S)
ROW = re.compile(r"<tr[^>]*>(.*?)</tr>", re.S)
CELL = re.compile(r"<t[dh][^>]*>(.*?)</t[dh]>", re.S)
IDS = re.compile(r'\b(?:id|name)="([^"]+)"')
HREF = re.compile(r'<a\s[^>]*?href="([^"]*)"')
REMOTE = r'(?:https?:)?//'
FETCHED = [  # what a browser loads by itself when it shows the page
    re.compile(rf'<script\b[^>]*\bsrc="({REMOTE}[^"]*|)"'),
    re.compile(rf'<link\b[^>]*\bhref="({REMOTE}[^"]*)"'),
    re.compile(rf'<(?:img|iframe|source|video|audio)\b[^>]*\bsrc="({REMOTE}[^"]*)"'),
    re.compile(rf'\bimport\(\s*["\']({REMOTE}[^"\']*)'),
    re.compile(rf'@import\s+(?:url\()?["\']?({REMOTE}[^"\')\s]*)'),
]
TEX = re.compile(r'class="arithmatex"|\\\(|\\\[|\$\$')


def exported(module: str) -> list[str]:
    """``module.__all__``, read from its source (importing feasjax would import JAX: seconds)."""
    path = ROOT.joinpath(*module.split("."), "__init__.py")
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__"
                                                for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise ValueError(f"{path} has no literal __all__")


def _text(fragment: str) -> str:
    return html.unescape(TAG.sub("", fragment))


def missing_names(site: pathlib.Path) -> list[str]:
    subpackages = [p.name for p in sorted((ROOT / "feasjax").iterdir())
                   if (p / "__init__.py").exists()]
    pages = {"feasjax": site / "api" / "index.html",
             **{f"feasjax.{s}": site / "api" / s / "index.html" for s in subpackages}}
    missing = []
    for module, page in pages.items():
        if not page.exists():
            missing.append(f"{module} (no page {page.relative_to(site)})")
            continue
        ids = set(IDS.findall(page.read_text()))
        missing += [f"{module}.{name}" for name in exported(module)
                    if f"{module}.{name}" not in ids]
    return missing


def too_wide(page: str, columns: int = COLUMNS) -> list[str]:
    """Code lines and tables wider than ``columns``."""
    problems = []
    for match in PRE.finditer(page):
        if WRAPPED.search(page[max(0, match.start() - 300):match.start()]):
            continue
        for line in _text(match.group(1)).splitlines():
            if len(line.rstrip()) > columns:
                problems.append(f"{len(line.rstrip())} columns: {line.strip()[:60]}")
    for table in TABLE.findall(page):
        widths: dict[int, int] = {}
        for row in ROW.findall(table):
            for i, cell in enumerate(CELL.findall(row)):
                words = _text(cell).split() or [""]
                widths[i] = max(widths.get(i, 0), max(map(len, words)))
        if sum(widths.values()) > columns:
            head = _text(ROW.findall(table)[0]).split() if ROW.findall(table) else []
            problems.append(f"table needs {sum(widths.values())} columns: {' '.join(head)[:60]}")
    return problems


def broken_anchors(site: pathlib.Path, path: pathlib.Path, page: str,
                   ids_of: dict[pathlib.Path, set[str]]) -> list[str]:
    problems = []
    for href in HREF.findall(page):
        url = urllib.parse.urlsplit(html.unescape(href))
        if url.scheme or url.netloc or not url.fragment:
            continue
        if not url.path:
            target = path
        else:
            target = (path.parent / urllib.parse.unquote(url.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if target.suffix != ".html" or not target.exists():
                problems.append(f"link to a missing page: {href}")
                continue
        if target not in ids_of:
            ids_of[target] = set(IDS.findall(target.read_text()))
        if urllib.parse.unquote(url.fragment) not in ids_of[target]:
            problems.append(f"no id {url.fragment!r} on {target.relative_to(site)}: {href}")
    return problems


def fetched_remotely(page: str) -> list[str]:
    problems = [f"loads {url or '(an empty src)'}" for pattern in FETCHED
                for url in pattern.findall(page)]
    if TEX.search(PRE.sub("", page)):
        problems.append("math left as TeX (no MathML)")
    return problems


def notebook_problems(site: pathlib.Path) -> list[str]:
    problems = []
    for notebook in sorted((ROOT / "colab").glob("*.ipynb")):
        page = site / "notebooks" / notebook.stem / "index.html"
        if not page.exists():
            problems.append(f"{notebook.name}: no page {page.relative_to(site)}")
            continue
        text = page.read_text()
        prompts = [_text(p).replace("\xa0", " ") for p in
                   re.findall(r'class="jp-InputPrompt[^"]*">(.*?)</div>', text, re.S)]
        prompts = [p for p in prompts if p.strip()]
        if not prompts or any(re.fullmatch(r"\s*In \[\s*\]:\s*", p) for p in prompts):
            problems.append(f"{notebook.name}: code cells that did not run (In [ ]:)")
        if "jp-OutputArea-output" not in text:
            problems.append(f"{notebook.name}: no outputs")
        if "plt." in notebook.read_text() and "data:image/png" not in text:
            problems.append(f"{notebook.name}: plots, but no figure on its page")
    return problems


def main(argv: list[str]) -> int:
    site = pathlib.Path(argv[0]).resolve() if argv else ROOT / "site"
    problems = {"names": [f"{m}: not documented" for m in missing_names(site)],
                "width": [], "anchors": [], "offline": [],
                "notebooks": notebook_problems(site)}
    css = site / "stylesheets" / "extra.css"
    if not css.exists() or "max-width: 76rem" not in css.read_text():
        problems["width"].append("stylesheets/extra.css does not widen the grid to 76rem: "
                                 f"the {COLUMNS}-column budget does not hold")
    pages, ids_of = sorted(site.rglob("*.html")), {}
    for path in pages:
        page, where = path.read_text(), path.relative_to(site)
        columns = API_COLUMNS if where.parts[0] == "api" else COLUMNS
        problems["width"] += [f"{where}: {p}" for p in too_wide(page, columns)]
        problems["anchors"] += [f"{where}: {p}"
                                for p in broken_anchors(site, path, page, ids_of)]
        problems["offline"] += [f"{where}: {p}" for p in fetched_remotely(page)]
    total = sum(map(len, problems.values()))
    for kind, found in problems.items():
        print(f"{kind}: {len(found)} problem(s)")
        for problem in found:
            print(f"  {problem}")
    print(f"{len(pages)} pages in {site}: {total} problem(s) (code and tables within "
          f"{COLUMNS} columns, {API_COLUMNS} on the API pages; anchors; nothing fetched from "
          f"another host; notebooks with outputs; every public name documented)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
