"""A griffe extension: the reST of feasjax's docstrings, read as the Markdown mkdocstrings renders.

feasjax writes Google-style docstrings with reST inline markup. Before they are parsed:

- ``:func:`feasjax.x.y``` (also ``:class:``, ``:mod:``, ``:data:``, ``:meth:``, ``:attr:``,
  ``~`` for the short name) becomes a cross-reference ``[y][feasjax.x.y]`` when the target is
  a ``feasjax`` path, so that ``mkdocs build --strict`` fails on a reference to a name that
  does not exist; a relative or foreign target becomes inline code;
  (``:mod:`` links only the subpackages, which have pages; other modules become code);
- ``.. math::`` blocks and ``:math:`...``` become MathJax (``$$ ... $$``, ``$...$``);
- an ``Example:`` section heading becomes ``Examples:``, the name Google style gives it.

And after they are loaded: a parameter or a NamedTuple/dataclass field whose default is a
named constant shows its value (``scheme: str = 'simultaneous'``, not ``defaults.SCHEME``),
read from the imported object; a class's ``__slots__`` is not documented.
"""
from __future__ import annotations

import importlib
import inspect
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


LITERALS = (str, int, float, bool, type(None))


def _runtime(path: str) -> object | None:
    """The object at ``path`` (``feasjax.core.transform.feasible``), imported; None if absent."""
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            obj = getattr(obj, part, None)
        return obj
    return None


def _literal(value: object) -> bool:
    if isinstance(value, tuple):
        return all(_literal(v) for v in value)
    return isinstance(value, LITERALS)


def show_default_values(func: griffe.Function) -> None:
    """Replace defaults written as names (``defaults.SCHEME``) by their literal values."""
    named = [p for p in func.parameters if isinstance(p.default, griffe.Expr)
             and any(isinstance(e, griffe.ExprName) for e in p.default.iterate())]
    if not named or (obj := _runtime(func.path)) is None:
        return
    try:
        actual = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return
    for param in named:
        value = actual[param.name].default if param.name in actual else inspect.Parameter.empty
        if value is not inspect.Parameter.empty and _literal(value):
            param.default = repr(value)


def _field_default(cls: object, name: str) -> object:
    """The default of field ``name`` of a NamedTuple or dataclass ``cls`` (empty if none)."""
    defaults = dict(getattr(cls, "_field_defaults", {}))
    for field in getattr(cls, "__dataclass_fields__", {}).values():
        defaults.setdefault(field.name, field.default)
    return defaults.get(name, inspect.Parameter.empty)


def show_field_value(attr: griffe.Attribute) -> None:
    """A class field whose default is written as a name shows the value instead."""
    if not isinstance(attr.value, griffe.Expr) or attr.parent is None or \
            not attr.parent.is_class or \
            not any(isinstance(e, griffe.ExprName) for e in attr.value.iterate()):
        return
    value = _field_default(_runtime(attr.parent.path), attr.name)
    if value is not inspect.Parameter.empty and _literal(value):
        attr.value = repr(value)


class RestToMarkdown(griffe.Extension):
    """Apply :func:`convert` to every docstring griffe loads, show constant defaults by value
    and leave ``__slots__`` out."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        for obj in _walk(pkg):
            if obj.is_class and "__slots__" in obj.members:
                del obj.members["__slots__"]
            elif obj.is_function:
                show_default_values(obj)
            elif obj.is_attribute:
                show_field_value(obj)


def _walk(obj: griffe.Object):
    for member in obj.members.values():
        if not member.is_alias:
            yield member
            yield from _walk(member)
