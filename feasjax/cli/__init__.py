"""The ``feasjax`` command line (``feasjax demo``, ``feasjax train``): argument parsing and the
commands, thin layers over :func:`feasjax.experiments.run_method`. ``main`` is the entry point of
the ``feasjax`` console script and of ``python -m feasjax.cli``.
"""
from feasjax.cli.app import main

__all__ = [
    "main",
]
