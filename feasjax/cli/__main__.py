"""``python -m feasjax.cli``: the ``feasjax`` command."""
from feasjax.cli.app import main

raise SystemExit(main())
