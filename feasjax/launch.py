"""Old path of the local multi-process launcher, kept for one release: ``python -m
feasjax.launch`` runs the new one, ``python -m feasjax.parallel.launch``."""
from feasjax.parallel.launch import main

if __name__ == "__main__":
    raise SystemExit(main())
