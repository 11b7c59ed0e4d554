"""``python -m feasjax.cli``: the ``feasjax`` command."""
import sys

from feasjax.cli.app import main

sys.exit(main())
