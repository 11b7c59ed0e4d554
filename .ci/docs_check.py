"""After ``mkdocs build``: every name of every public ``__all__`` is documented in the site.

    python .ci/docs_check.py [SITE_DIR]

For each subpackage ``feasjax.<sub>`` (``feasjax.cli`` included) the page ``api/<sub>/`` must hold
an anchor ``id="feasjax.<sub>.<name>"`` for every name of its ``__all__`` (mkdocstrings writes
one per documented object), and the API index an anchor ``feasjax.<name>`` for every top-level
name. Exits 1 and lists what is missing.
"""
from __future__ import annotations

import ast
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def exported(module: str) -> list[str]:
    """``module.__all__``, read from its source (importing feasjax would import JAX: seconds)."""
    path = ROOT.joinpath(*module.split("."), "__init__.py")
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__"
                                                for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise ValueError(f"{path} has no literal __all__")


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
        ids = set(re.findall(r'id="([^"]+)"', page.read_text()))
        missing += [f"{module}.{name}" for name in exported(module)
                    if f"{module}.{name}" not in ids]
    return missing


def main(argv: list[str]) -> int:
    site = pathlib.Path(argv[0]) if argv else ROOT / "site"
    missing = missing_names(site)
    if missing:
        print(f"{len(missing)} public names missing from the API reference in {site}:")
        print("\n".join(f"  {m}" for m in missing))
        return 1
    print(f"API reference in {site}: every public name documented")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
