"""A griffe extension: the reST of feasjax's docstrings, read as the Markdown mkdocstrings renders.

feasjax writes Google-style docstrings with reST inline markup. Before they are parsed:

- ``:func:`feasjax.x.y``` (also ``:class:``, ``:mod:``, ``:data:``, ``:meth:``, ``:attr:``,
  ``~`` for the short name) becomes a cross-reference ``[y][feasjax.x.y]`` when the target is
  a ``feasjax`` path, so that ``mkdocs build --strict`` fails on a reference to a name that
  does not exist; a relative or foreign target becomes inline code;
  (``:mod:`` links only the subpackages, which have pages; other modules become code);
- ``.. math::`` blocks and ``:math:`...``` become MathJax (``$$ ... $$``, ``$...$``);
- an ``Example:`` section heading becomes ``Examples:``, the name Google style gives it.
"""
from __future__ import annotations

import re
import textwrap

import griffe

ROLE = re.compile(r":(func|class|mod|data|meth|attr|obj|exc):`(~?)([^`<>]+?)`")
SUBPACKAGES = {"feasjax", *(f"feasjax.{s}" for s in (
    "core", "averaging", "uncertainty", "models", "data", "metrics", "training", "parallel",
    "experiments", "cli"))}
MATH_ROLE = re.compile(r":math:`([^`]+)`")


def _role(match: re.Match) -> str:
    role, short, target = match.group(1), match.group(2), match.group(3).strip()
    shown = target.rsplit(".", 1)[-1] if short else target
    if role == "mod" and target not in SUBPACKAGES:
        return f"`{shown}`"
    if target.startswith("feasjax.") or target == "feasjax":
        return f"[`{shown}`][{target}]"
    return f"`{shown}`"


def _math_blocks(text: str) -> str:
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(\s*)\.\. math::\s*(.*)$", line)
        if not m:
            out.append(line)
            i += 1
            continue
        indent, first = m.group(1), m.group(2)
        body = [first] if first.strip() else []
        i += 1
        while i < len(lines) and (not lines[i].strip() or
                                  len(lines[i]) - len(lines[i].lstrip()) > len(indent)):
            body.append(lines[i])
            i += 1
        block = textwrap.dedent("\n".join(body)).strip("\n")
        out.extend([f"{indent}$$", *(indent + b for b in block.splitlines()), f"{indent}$$", ""])
    return "\n".join(out)


def convert(text: str) -> str:
    """The Markdown of one docstring's reST inline markup (roles and math)."""
    text = re.sub(r"^(\s*)Example:\s*$", r"\1Examples:", text, flags=re.M)
    text = _math_blocks(text)
    text = MATH_ROLE.sub(lambda m: f"${m.group(1)}$", text)
    return ROLE.sub(_role, text)


class RestToMarkdown(griffe.Extension):
    """Apply :func:`convert` to every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
