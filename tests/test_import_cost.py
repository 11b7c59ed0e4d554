"""Import cost: ``import feasjax`` and the command line's help import nothing heavy.

Each check runs in a fresh interpreter and reads ``sys.modules`` (not a clock, which a shared
machine makes noisy): scikit-learn, orbax and matplotlib are imported by the functions that use
them, the subpackages on first use, and ``feasjax --help`` / ``--version`` answer before JAX is
imported.
"""
import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEAVY = ("sklearn", "orbax", "matplotlib", "scipy")


def _loaded(code: str, *modules: str) -> list[str]:
    """The ``modules`` that ``code``, run in a fresh interpreter, leaves in ``sys.modules``."""
    check = (f"{code}\nimport sys\n"
             f"print('loaded:', *(m for m in {modules!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", check], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return out.splitlines()[-1].split()[1:]  # the help comes first


def test_import_feasjax_imports_no_heavy_dependency():
    assert _loaded("import feasjax", *HEAVY, "jax") == []


def test_using_every_public_name_imports_no_heavy_dependency():
    # All subpackages, the experiments and the training loop with its checkpoints included:
    # scikit-learn comes with a dataset, orbax with a checkpoint, matplotlib with a plot.
    code = "import feasjax as fj\nfor n in fj.__all__: getattr(fj, n)"
    assert _loaded(code, *HEAVY) == []


def test_heavy_dependencies_come_with_their_use():
    code = "import feasjax as fj\nfj.load_dataset('diabetes')"
    assert _loaded(code, "sklearn", "orbax", "matplotlib") == ["sklearn"]


@pytest.mark.parametrize("argv", [["--help"], ["--version"], [], ["demo", "--help"],
                                  ["train", "--help"], ["groups", "--help"],
                                  ["federated", "--help"]], ids=" ".join)
def test_the_command_line_answers_help_without_jax(argv):
    # What `python -m feasjax.cli ARGS` (and the `feasjax` script) runs, then sys.modules.
    code = (f"import runpy, sys\nsys.argv = ['feasjax', *{argv!r}]\n"
            f"try:\n    runpy.run_module('feasjax.cli', run_name='__main__')\n"
            f"except SystemExit as e:\n    assert not e.code, e.code")
    assert _loaded(code, "jax", "flax", "optax", *HEAVY) == []


@pytest.mark.parametrize("package", ["feasjax", "feasjax.data", "feasjax.experiments",
                                     "feasjax.federated"])
def test_lazy_names_match_the_imports_type_checkers_see(package):
    # A lazy package states each name's module twice: in its ``if TYPE_CHECKING:`` imports (for
    # type checkers and the API reference) and in the map its __getattr__ reads. They agree.
    import importlib

    mod = importlib.import_module(package)
    path = pathlib.Path(mod.__file__)
    block = next(node for node in ast.parse(path.read_text()).body
                 if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING")
    static = {}
    for node in block.body:
        for alias in node.names:
            module = (f"{node.module}.{alias.name}" if node.module == package else node.module)
            static[alias.name] = module
    for name, module in static.items():
        value = getattr(mod, name)
        where = getattr(value, "__name__", None) if module == f"{package}.{name}" else None
        assert where == module or value is getattr(importlib.import_module(module), name), name
    assert set(static) == set(mod.__all__) - {"__version__"}
