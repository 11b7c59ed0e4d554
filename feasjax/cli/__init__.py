"""The ``feasjax`` command line; ``main`` is the entry point of the console script and of
``python -m feasjax.cli``."""
from feasjax.cli.app import main

__all__ = ["main"]
