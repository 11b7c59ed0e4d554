"""The public API's contract: what every ``__all__`` holds, the layers, the deprecated names.

- every name in every ``__all__`` resolves, and every function or class defined in feasjax that
  it names documents a runnable ``>>>`` example, with the exemptions listed in
  ``EXAMPLE_EXEMPT`` (records that users never build: the example of the function that
  returns them shows them);
- every public signature carries type hints;
- the graph of ``feasjax.*`` imports (module level and inside functions) has no cycle, and no
  module imports a higher layer (``LAYERS``), also when contracted to subpackages;
- no subpackage exports a name that is also one of its submodules;
- the top level stays small, and each name that 0.1 exported there still resolves, the moved
  ones with a ``DeprecationWarning`` that names their new place;
- a subpackage's ``__all__`` is its documented API and nothing more: a module's ``__all__``
  lists only names its subpackage exports, and helpers are in no ``__all__``. Names that a
  subpackage no longer exports still resolve there until 0.3, with a ``DeprecationWarning``;
- doctests, benchmarks and the README import and use only public names; tests may also import
  a helper, from the module that defines it (``from feasjax.core.rows import unique_rows``).
"""
import ast
import doctest
import importlib
import inspect
import pathlib
import pkgutil
import re
import subprocess
import sys
import types
import warnings

import pytest

import feasjax as fj

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "feasjax"

# Lower layers never import higher ones; modules of one layer may import each other (acyclically).
LAYERS = {
    "_exports": 0,  # the lazy and deprecated names of every package's __getattr__
    "core": 0,
    "averaging": 1, "uncertainty": 1,
    "models": 2, "data": 2, "metrics": 2,
    "training": 3,
    "parallel": 4,
    "experiments": 5, "federated": 5,
    "cli": 6,
}
TOP = max(LAYERS.values()) + 1  # feasjax/__init__.py and the feasjax.launch shim

SUBPACKAGES = ("core", "averaging", "uncertainty", "models", "data", "metrics", "training",
               "parallel", "experiments", "federated")

# Records that users never build themselves: optimizer and solver states (``init`` makes them),
# and the objects and results that a documented function returns (its example shows them).
EXAMPLE_EXEMPT = {
    # states, made by init
    "AveragedState", "BootstrapState", "ChainState", "ConstrainedState", "IndexedState",
    "PrimalDualState",
    # made by a factory: ema/polyak/..., primal_dual and feasible_learning, multiplier_bootstrap
    "Averager", "PrimalDual", "MultiplierBootstrap",
    # results: of a step, an epoch, train, train_sweep, restore_checkpoint, run_method,
    # run_method_sweep, model_fns, shard_layout, coordinate_intervals, confidence_ball
    "StepInfo", "EpochInfo", "History", "SweepHistory", "Restored", "MethodResult",
    "SweepResult", "ModelFns", "ShardLayout", "Interval", "ConfidenceBall",
    # federated: the state made by init, the pair and the Monte Carlo result returned by
    # federated_averaging and mean_estimation
    "FederatedState", "Federated", "MeanEstimation",
}

# Modules whose ``__all__`` may list names that their subpackage does not export: the local
# launcher (run as ``python -m feasjax.parallel.launch``).
OWN_ALL = {"feasjax.parallel.launch"}

# The top-level names of feasjax 0.1, every one of which must still resolve.
NAMES_0_1 = """
accuracy apply_row_updates ascent augmented_lagrangian averaged averaged_params AveragedState
Averager bootstrap_estimates BootstrapState ChainState check_compatible check_indices
checkpoint_manager chunk_fn CNN combine_duplicates confidence_ball constrained constrained_state
ConstrainedState ConfidenceBall ConstraintGroup ConstraintValue coordinate_intervals
cross_entropy cvar DATA_AXIS data_mesh data_parallel_epoch Dataset dual_update ema
empirical_risk epoch_fn epoch_indices EpochInfo estimate_mixing_alpha feasible
feasible_fraction feasible_learning find_averaged_states Formulation from_arrays gather_rows
global_indices global_loss_summary History indexed indexed_averaged IndexedState init_sharded
Interval lagrangian lawa linear_functional_interval load_dataset local_epoch_fn loss_summary
mix mixing_helps mixing_mse MLP multiplier_bootstrap multipliers multiplier_stats
MultiplierBootstrap nupi NuPIState optimal_mixing_alpha optimistic OptimisticState pad_samples
PenaltyState per_example per_sample_loss_fn pmap_epoch polyak power_decay_schedule predict_fn
primal_dual PrimalDual PrimalDualState ProblemOutput project_nonnegative quadratic_penalty
quantile replicate resilient restore_checkpoint Restored sample_mask SAMPLES save_checkpoint
scatter_rows shard_data shard_layout ShardLayout slack squared_error stack_runs
state_partition_specs StepInfo summarize_runs swa swa_schedule sweep_epoch SweepHistory
tail_polyak train train_resumable train_sweep unpad_samples unstack_runs weighted_sum
worst_class_accuracy
""".split()


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULE_FILES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
# Modules that are run, not imported: python -m feasjax.cli, and the feasjax.launch shim.
RUN_ONLY = {"feasjax.cli.__main__", "feasjax.launch"}
# Underscore modules (feasjax._exports) are the private layer: no __all__, no public names.
PUBLIC_MODULES = sorted(m for m in MODULE_FILES
                        if m not in RUN_ONLY and not m.rsplit(".", 1)[-1].startswith("_"))


def _is_module(name: str) -> bool:
    return name in MODULE_FILES


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1]] if len(parts) > 1 and parts[1] in LAYERS else TOP


def _public_objects():
    """``(module, name, object)`` for every name of every ``__all__``."""
    for module in PUBLIC_MODULES:
        mod = importlib.import_module(module)
        for name in mod.__all__:
            yield module, name, getattr(mod, name)


def _defined_in_feasjax(obj) -> bool:
    return ((inspect.isfunction(obj) or inspect.isclass(obj))
            and getattr(obj, "__module__", "").startswith("feasjax"))


# ---------------------------------------------------------------- what every __all__ holds


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_every_public_module_lists_its_names_and_they_resolve(module):
    mod = importlib.import_module(module)
    assert isinstance(getattr(mod, "__all__", None), list), f"{module} has no __all__ list"
    assert len(mod.__all__) == len(set(mod.__all__)), f"{module}.__all__ repeats a name"
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert not missing, f"{module}.__all__ names what it does not define: {missing}"


def test_every_public_function_and_class_documents_a_runnable_example():
    missing = sorted({f"{module}.{name}" for module, name, obj in _public_objects()
                      if _defined_in_feasjax(obj) and name not in EXAMPLE_EXEMPT
                      and ">>>" not in (inspect.getdoc(obj) or "")})
    assert not missing, f"public names without a doctest example: {missing}"


def test_examples_are_exempted_only_for_documented_records():
    public = {name: obj for _, name, obj in _public_objects()}
    for name in EXAMPLE_EXEMPT:
        obj = public[name]  # an exemption for a name that is not public is stale
        assert inspect.isclass(obj) and inspect.getdoc(obj), name


def _unannotated(fn) -> list[str]:
    sig = inspect.signature(fn)
    missing = [p for p in sig.parameters if p not in ("self", "cls")
               and sig.parameters[p].annotation is inspect.Parameter.empty]
    if sig.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def test_every_public_signature_has_type_hints():
    missing = {}
    for module, name, obj in _public_objects():
        if not _defined_in_feasjax(obj):
            continue
        functions = [(name, obj)] if inspect.isfunction(obj) else [
            (f"{name}.{k}", v) for k, v in vars(obj).items()
            if inspect.isfunction(v) and (not k.startswith("_") or k in ("__init__", "__call__"))]
        for label, fn in functions:
            if fn.__module__.startswith("feasjax") and _unannotated(fn):
                missing[f"{module}.{label}"] = _unannotated(fn)
    assert not missing, f"public signatures without type hints: {missing}"


@pytest.mark.parametrize("subpackage", ["feasjax", *(f"feasjax.{s}" for s in SUBPACKAGES),
                                        "feasjax.cli"])
def test_no_package_exports_a_name_of_one_of_its_submodules(subpackage):
    # feasjax.core.indexed must stay the function, not become the module (or the reverse).
    path = MODULE_FILES[subpackage].parent
    submodules = {m.name for m in pkgutil.iter_modules([str(path)])}
    clash = submodules & set(importlib.import_module(subpackage).__all__) - set(SUBPACKAGES)
    assert not clash, f"{subpackage} exports names of its submodules: {sorted(clash)}"


# ---------------------------------------------------------------- layers and cycles


def _imports(module: str) -> set[str]:
    """The feasjax modules that ``module`` imports, at module level or inside functions."""
    tree = ast.parse(MODULE_FILES[module].read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "feasjax"}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}: relative import"
            if (node.module or "").split(".")[0] != "feasjax":
                continue
            for a in node.names:  # ``from pkg import submodule`` imports the submodule
                sub = f"{node.module}.{a.name}"
                out.add(sub if _is_module(sub) else node.module)
    out.discard(module)
    unknown = {m for m in out if not _is_module(m)}
    assert not unknown, f"{module} imports unknown feasjax modules {unknown}"
    return out


GRAPH = {module: _imports(module) for module in MODULE_FILES}


def _find_cycle(graph: dict) -> list | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_graph_has_no_cycle():
    assert _find_cycle(GRAPH) is None, f"import cycle: {' -> '.join(_find_cycle(GRAPH))}"


def test_the_subpackage_graph_has_no_cycle():
    def package(m):
        return ".".join(m.split(".")[:2])

    contracted = {}
    for src, targets in GRAPH.items():
        contracted.setdefault(package(src), set()).update(
            package(t) for t in targets if package(t) != package(src) and t != "feasjax")
    contracted.pop("feasjax", None)  # the top level imports everything, by design
    cycle = _find_cycle(contracted)
    assert cycle is None, f"subpackage cycle: {' -> '.join(cycle)}"


def test_no_module_imports_a_higher_layer():
    upward = [f"{src} -> {dst}" for src, targets in sorted(GRAPH.items()) for dst in sorted(targets)
              if _layer(dst) > _layer(src)]
    assert not upward, "imports of a higher layer:\n" + "\n".join(upward)


def test_every_module_belongs_to_a_layer():
    strays = [m for m in MODULE_FILES if _layer(m) == TOP
              and m not in ("feasjax", "feasjax.launch")]
    assert not strays, f"modules outside the layers {sorted(LAYERS)}: {strays}"


# ---------------------------------------------------------------- the top level


def test_the_top_level_stays_small_and_holds_the_subpackages():
    names = [n for n in fj.__all__ if not isinstance(getattr(fj, n), types.ModuleType)
             and n != "__version__"]
    assert len(names) <= 55, f"{len(names)} top-level names; curate, or use a subpackage"
    for sub in SUBPACKAGES:
        assert isinstance(getattr(fj, sub), types.ModuleType), sub
    assert fj.parallel.pad_samples is fj.parallel.layout.pad_samples
    assert sorted(dir(fj)) == sorted(fj.__all__)


@pytest.mark.parametrize("name", NAMES_0_1)
def test_every_name_of_0_1_still_resolves_and_moved_ones_warn(name):
    if name in fj.__all__:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            getattr(fj, name)
        return
    where = fj._MOVED[name]  # the subpackage that exports it, or the module of a helper
    home = importlib.import_module(where)
    assert name in home.__all__ or getattr(home, name).__module__ == where, name
    message = rf"feasjax\.{name} moved to {re.escape(where)}\.{name}; .* removed in 0\.3"
    with pytest.warns(DeprecationWarning, match=message):
        value = getattr(fj, name)
    assert value is getattr(home, name)


def _own_all(module: str) -> list[str]:
    return importlib.import_module(module).__all__


@pytest.mark.parametrize("subpackage", SUBPACKAGES)
def test_a_subpackage_all_is_its_api_and_modules_list_only_that(subpackage):
    package = importlib.import_module(f"feasjax.{subpackage}")
    modules = [m for m in PUBLIC_MODULES if m.startswith(f"feasjax.{subpackage}.")]
    for module in modules:
        if module not in OWN_ALL:
            extra = set(_own_all(module)) - set(package.__all__)
            assert not extra, f"{module}.__all__ lists names {package.__name__} does not export: " \
                              f"{sorted(extra)} (a helper: drop it from __all__)"
    listed = {name for module in modules for name in _own_all(module)}
    assert set(package.__all__) <= listed, "every export is some module's public name"
    assert sorted(dir(package)) == sorted(package.__all__)


# Names that a subpackage exported before it curated its __all__: name -> (subpackage, module).
DROPPED = {name: (sub, where) for sub in SUBPACKAGES
           for name, where in getattr(importlib.import_module(f"feasjax.{sub}"),
                                      "_DEPRECATED", {}).items()}


@pytest.mark.parametrize("name", sorted(DROPPED))
def test_names_a_subpackage_no_longer_exports_still_resolve_with_a_warning(name):
    sub, where = DROPPED[name]
    package = importlib.import_module(f"feasjax.{sub}")
    assert name not in package.__all__ and name not in vars(package)
    message = rf"feasjax\.{sub}\.{name} moved to {re.escape(where)}\.{name}; .* removed in 0\.3"
    with pytest.warns(DeprecationWarning, match=message):
        value = getattr(package, name)
    assert value is getattr(importlib.import_module(where), name)


def test_core_exports_what_a_user_calls():
    assert len(fj.core.__all__) <= 32, "the helpers live in their modules, not in fj.core"


def test_unknown_top_level_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'not_a_name'"):
        getattr(fj, "not_a_name")
    assert not hasattr(fj, "gather")


# ---------------------------------------------------------------- users see only public names


def _defines(module: str) -> set[str]:
    """The names a feasjax module binds at its top level (functions, classes, assignments)."""
    names = set()
    for node in ast.parse(MODULE_FILES[module].read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _resolve(path: str, where: str, internal: bool = False) -> object:
    """Follow ``feasjax.a.b.c`` through public names; stop at the first non-module. With
    ``internal`` (tests), a helper may also be taken from the module that defines it."""
    parts = path.split(".")
    assert parts[0] == "feasjax", where
    obj = fj
    for i, part in enumerate(parts[1:], start=1):
        if not isinstance(obj, types.ModuleType):
            return obj
        module = ".".join(parts[:i + 1])
        if _is_module(module) and not part.startswith("_"):
            obj = importlib.import_module(module)
        elif (part in obj.__all__ or (part.startswith("__") and part.endswith("__"))
              or (internal and part in _defines(obj.__name__))):
            obj = getattr(obj, part)
        else:
            raise AssertionError(f"{where}: {module} is not public (not in "
                                 f"{obj.__name__}.__all__)" + (
                                     ", nor defined there" if internal else ""))
    return obj


def _check_source(source: str, where: str, internal: bool = False) -> None:
    for path in _feasjax_paths(source):
        _resolve(path, where, internal)


def _doctest_sources():
    """``(where, source, public)``: the examples of every docstring, and whether the API
    reference shows them (a module's or a public name's docstring, not a helper's)."""
    parser = doctest.DocTestParser()
    for module, path in MODULE_FILES.items():
        public = set(getattr(importlib.import_module(module), "__all__", ())) \
            if module in PUBLIC_MODULES else set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)):
                doc = ast.get_docstring(node)
                if doc and ">>>" in doc:
                    source = "\n".join(e.source for e in parser.get_examples(doc))
                    name = getattr(node, "name", "")
                    yield f"{module}:{name}", source, not name or name in public


def _feasjax_paths(source: str) -> list[str]:
    """Every ``feasjax`` path ``source`` names: its imports (``from feasjax.metrics import
    quantile`` names ``feasjax.metrics`` and ``feasjax.metrics.quantile``) and the attribute
    chains on the names they bind (``fj.core.feasible``)."""
    tree = ast.parse(source)
    paths, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "feasjax":
                    paths.append(a.name)
                    aliases[a.asname or "feasjax"] = a.name if a.asname else "feasjax"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "feasjax":
            paths += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            aliases.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
    for node in ast.walk(tree):
        chain = []
        while isinstance(node, ast.Attribute):
            chain.insert(0, node.attr)
            node = node.value
        if chain and isinstance(node, ast.Name) and node.id in aliases:
            paths.append(".".join([aliases[node.id], *chain]))
    return paths


def _submodule_paths(source: str) -> list[str]:
    """The ``feasjax`` paths in ``source`` that go through a module below a subpackage
    (``from feasjax.metrics.summary import quantile``, ``fj.core.transform.feasible``)."""
    paths = _feasjax_paths(source)
    return [p for p in paths if any(
        _is_module(m) and m.count(".") >= 2 and m not in OWN_ALL
        for m in (".".join(p.split(".")[:i]) for i in range(3, len(p.split(".")) + 1)))]


def test_examples_in_the_api_reference_import_only_public_paths():
    # What a reader copies from the site: `import feasjax as fj`, `fj.metrics.quantile` or
    # `from feasjax.metrics import quantile`, never the module that defines the name.
    def shown(where: str) -> bool:  # a subpackage's docstring, or a name of its __all__
        module, name = where.split(":")
        subpackage = ".".join(module.split(".")[:2])
        return module == subpackage if not name else \
            name in importlib.import_module(subpackage).__all__

    bad = [f"{where}: {path}" for where, source, _ in _doctest_sources() if shown(where)
           for path in _submodule_paths(source)]
    assert not bad, "examples that import a module below a subpackage:\n" + "\n".join(bad)


README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("path", sorted((ROOT / "tests").glob("*.py")), ids=lambda p: p.name)
def test_tests_import_helpers_only_from_their_modules(path):
    _check_source(path.read_text(), path.name, internal=True)


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks").glob("*.py")), ids=lambda p: p.name)
def test_benchmarks_use_only_public_names(path):
    _check_source(path.read_text(), path.name)


def test_doctests_use_only_public_names():
    # A helper's own example (not in the API reference) may use helpers, from their modules.
    for where, source, public in _doctest_sources():
        _check_source(source, where, internal=not public)


def test_readme_code_and_prose_use_only_public_names():
    for block in re.findall(r"```python\n(.*?)```", README, re.S):
        _check_source(block, "README.md")
    # prose and shell lines: every fj.x.y and feasjax.x.y named in backticks
    for span in re.findall(r"`([^`\n]+)`", README):
        for path in re.findall(r"\b(?:fj|feasjax)(?:\.\w+)+", span):
            _resolve(re.sub(r"^fj\b", "feasjax", path), f"README.md: `{span}`")


def test_importing_feasjax_starts_no_jax_backend():
    # jax.distributed.initialize must come before any backend exists (multi-host start-up), so
    # no module may compute at import time (e.g. a jnp.array as a default argument).
    code = ("import feasjax, feasjax.cli.app, jax._src.xla_bridge as xb; "
            "assert not xb._backends, 'import feasjax initialised the JAX backend'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
