"""Old path of the local multi-process launcher, kept for one release.

The new path is ``python -m feasjax.parallel.launch``; ``python -m feasjax.launch`` runs it.
"""
from feasjax.parallel.launch import main

if __name__ == "__main__":
    raise SystemExit(main())
