"""Execute every colab/*.ipynb headless with nbclient; exit non-zero on any cell error.

    FEASJAX_NOTEBOOK_SMALL=1 python .ci/notebooks.py [--jobs 2] [--executed DIR] [NOTEBOOK ...]

Run by .ci/run at small size (the variable is read by each notebook's first cell). Each notebook
runs in a fresh kernel from a temporary directory; nothing is written back, so the committed
notebooks stay without outputs (``--executed DIR`` saves executed copies there, to read them).
The kernels share one JAX compilation cache in a temporary directory (every program cached,
however small): most of a notebook's CPU time is compiling the same small eager operations, so
the notebooks after the first compile little. ``--jobs`` kernels run at once. Prints each
notebook's wall-clock and kernel CPU seconds.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import pathlib
import resource
import sys
import tempfile
import time

import nbclient
import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]


def execute(path: pathlib.Path, executed: pathlib.Path | None) -> tuple[str, bool, float]:
    """Run one notebook; ``(report line, ok, wall seconds)``."""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as cwd:
        client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                         resources={"metadata": {"path": cwd}})
        try:
            client.execute()
            ok, status = True, "ok"
        except nbclient.exceptions.CellExecutionError as error:
            ok, status = False, f"FAILED\n{error}"
    if executed is not None:
        nbformat.write(nb, executed / path.name)
    wall = time.perf_counter() - start
    return f"{path.name}: {status} ({wall:.1f} s)", ok, wall


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    parser.add_argument("--jobs", type=int, default=2, help="kernels at once (default: 2)")
    parser.add_argument("--executed", type=pathlib.Path, default=None,
                        help="write the executed notebooks into this directory")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "colab").glob("*.ipynb"))
    if args.executed is not None:
        args.executed.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FEASJAX_NO_COMPILE_CACHE", "1")  # the CLI's own cache: off
    os.environ.setdefault("MPLBACKEND", "Agg")
    cache = tempfile.TemporaryDirectory(prefix="feasjax-notebooks-jax-cache-")
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", cache.name)
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    failed = []
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        for path, (line, ok, _) in zip(paths, pool.map(lambda p: execute(p, args.executed),
                                                        paths)):
            print(line, flush=True)
            if not ok:
                failed.append(path.name)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(f"{len(paths)} notebooks in {time.perf_counter() - start:.1f} s "
          f"(kernels' CPU {cpu:.1f} s)")
    cache.cleanup()
    if failed:
        print("notebooks with errors:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
