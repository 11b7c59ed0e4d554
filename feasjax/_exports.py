"""Module attributes resolved on first use (PEP 562): lazy exports and deprecated names.

``__getattr__, __dir__ = module_attributes(__name__, __all__, lazy=..., deprecated=...)``:
``lazy`` maps modules to names imported on first use (a name ``f"{package}.{name}"`` is that
submodule); ``deprecated`` maps each name to its new place (:func:`by_name` builds it) and warns
with a ``DeprecationWarning`` until 0.3. ``dir()`` lists the public names only.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence

REMOVED_IN = "0.3"


def by_name(modules: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """``{name: module}`` from ``{module: names}``."""
    if any(isinstance(names, str) for names in modules.values()):
        raise TypeError(f"expected a map of modules to sequences of names, got {modules=}")
    return {name: module for module, names in modules.items() for name in names}


def subpackage_groups(package: str, names: Sequence[str]) -> dict[str, list[str]]:
    """``{f"{package}.{sub}": [sub, *names after it]}`` for ``names`` that list each subpackage
    followed by the names it exports (names before the first subpackage are in no group)."""
    subpackages = {m.name for m in pkgutil.iter_modules(sys.modules[package].__path__)}
    groups: dict[str, list[str]] = {}
    for name in names:
        if name in subpackages:
            group = groups.setdefault(f"{package}.{name}", [])
        if groups:
            group.append(name)
    return groups


def module_attributes(package: str, public: Sequence[str], *,
                      lazy: Mapping[str, Sequence[str]] | None = None,
                      deprecated: Mapping[str, str] | None = None
                      ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package`` (see the module docstring)."""
    lazy = by_name(lazy or {})
    deprecated = dict(deprecated or {})

    def __getattr__(name: str) -> object:
        if name in lazy:
            module = importlib.import_module(lazy[name])
            value = module if module.__name__ == f"{package}.{name}" else getattr(module, name)
            setattr(sys.modules[package], name, value)  # the next lookup is a plain one
            return value
        if name in deprecated:
            where = deprecated[name]
            warnings.warn(f"{package}.{name} moved to {where}.{name}; {package}.{name} will be "
                          f"removed in {REMOVED_IN}", DeprecationWarning, stacklevel=2)
            return getattr(importlib.import_module(where), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(public)

    return __getattr__, __dir__
