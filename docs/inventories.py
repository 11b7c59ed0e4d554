"""Cross-reference inventories for Python, NumPy, JAX, Optax and Flax, written at build time.

The API pages name ``jax.Array``, ``optax.GradientTransformation``, ``flax.nnx.Module``... in
signatures and docstrings; mkdocstrings links such a name when an inventory (a Sphinx
``objects.inv``) lists it. The projects publish theirs on their sites, but the build must not
use the network (CI builds offline), and no copy could be vendored here. So this module lists
the names feasjax's pages use, each with its page on the project's site (links of the stable
URL scheme of each site), and ``write`` turns them into ``objects.inv`` files that
docs/hooks.py hands to mkdocstrings as ``file://`` inventories, before it loads them. A name
missing here is shown as plain text, as before; add it here to link it.
"""
from __future__ import annotations

import pathlib

from mkdocstrings import Inventory, InventoryItem

PY = "https://docs.python.org/3/"
NUMPY = "https://numpy.org/doc/stable/"
JAX = "https://docs.jax.dev/en/latest/"
OPTAX = "https://optax.readthedocs.io/en/latest/"
FLAX = "https://flax.readthedocs.io/en/latest/"


def _on(page: str, *names: str, role: str = "class") -> dict[str, tuple[str, str]]:
    """``names`` documented on ``page`` (anchored by their full name), with their role."""
    return {name: (role, f"{page}#{name}") for name in names}


INVENTORIES: dict[str, tuple[str, dict[str, tuple[str, str]]]] = {
    "python": (PY, {
        **_on("library/functions.html", "int", "float", "bool", "object"),
        **_on("library/functions.html", "zip", "min", "max", "round", "range", "len",
                    role="function"),
        **_on("library/stdtypes.html", "str", "tuple", "dict", "list"),
        **_on("library/exceptions.html", "ValueError", "TypeError", "KeyError",
                    "FileNotFoundError", "RuntimeError", role="exception"),
        **_on("library/typing.html", "typing.Any", "typing.Callable", "typing.NamedTuple",
              "typing.Sequence", "typing.Mapping", "typing.Iterator"),
        **_on("library/collections.abc.html", "collections.abc.Sequence",
              "collections.abc.Mapping", "collections.abc.Callable", "collections.abc.Hashable",
              "collections.abc.Iterator"),
        **_on("library/os.html", "os.PathLike"),
        **_on("library/pathlib.html", "pathlib.Path"),
    }),
    "numpy": (NUMPY, {
        "numpy.ndarray": ("class", "reference/generated/numpy.ndarray.html#numpy.ndarray"),
        **_on("reference/random/generator.html", "numpy.random.Generator"),
    }),
    "jax": (JAX, {
        "jax.Array": ("class", "_autosummary/jax.Array.html#jax.Array"),
        **_on("jax.typing.html", "jax.typing.ArrayLike", role="data"),
        **{name: ("function", f"_autosummary/{name}.html#{name}")
           for name in ("jax.random.poisson", "jax.random.exponential", "jax.jit",
                        "jax.vmap", "jax.grad", "jax.lax.scan")},
        **_on("jax.sharding.html", "jax.sharding.Mesh", "jax.sharding.NamedSharding",
              "jax.sharding.PartitionSpec"),
        "jax.random": ("module", "jax.random.html#module-jax.random"),
        "jax.numpy": ("module", "jax.numpy.html#module-jax.numpy"),
    }),
    "optax": (OPTAX, {
        **_on("api/transformations.html", "optax.GradientTransformation",
              "optax.GradientTransformationExtraArgs", "optax.OptState", "optax.Params",
              "optax.Updates"),
        **_on("api/combining_optimizers.html", "optax.chain", role="function"),
    }),
    "flax": (FLAX, {
        "flax.nnx": ("module", "api_reference/flax.nnx/index.html"),
        **_on("api_reference/flax.nnx/module.html", "flax.nnx.Module"),
        **_on("api_reference/flax.nnx/rnglib.html", "flax.nnx.Rngs"),
        **_on("api_reference/flax.nnx/graph.html", "flax.nnx.GraphDef"),
        **_on("api_reference/flax.nnx/state.html", "flax.nnx.State"),
        **_on("api_reference/flax.nnx/nn/linear.html", "flax.nnx.Linear", "flax.nnx.Conv"),
        **_on("api_reference/flax.nnx/nn/stochastic.html", "flax.nnx.Dropout"),
        **_on("api_reference/flax.nnx/nn/normalization.html", "flax.nnx.BatchNorm"),
        **_on("api_reference/flax.nnx/training/optimizer.html", "flax.nnx.Optimizer"),
    }),
}


def write(directory: pathlib.Path) -> list[dict[str, str]]:
    """Write ``<project>.inv`` for each project into ``directory``; mkdocstrings' entries."""
    entries = []
    for project, (base_url, names) in INVENTORIES.items():
        items = [InventoryItem(name=name, domain="py", role=role, uri=uri)
                 for name, (role, uri) in names.items()]
        path = directory / f"{project}.inv"
        path.write_bytes(Inventory(items, project=project).format_sphinx())
        entries.append({"url": path.resolve().as_uri(), "base_url": base_url})
    return entries
