"""Start several local processes of one multi-process JAX program (a one-machine "cluster").

``python -m feasjax.parallel.launch --processes 2 --devices-per-process 2 -- script.py --flag``
"""
from __future__ import annotations

import argparse
import math
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Sequence

__all__ = ["launch"]


def _pipe(stream, prefix: str) -> None:
    for line in iter(stream.readline, ""):
        sys.stdout.write(f"{prefix}{line}")
        sys.stdout.flush()


def launch(command: Sequence[str], *, processes: int, devices_per_process: int | None = None,
           platform: str = "cpu", port: int | None = None, timeout: float | None = None,
           env: dict | None = None) -> list[int]:
    """Run ``python <command>`` as ``processes`` cooperating processes and wait for them.

    Each gets the ``FEASJAX_*`` variables of :func:`feasjax.parallel.initialize`; output lines
    are prefixed ``[pid]``. If one fails (or ``timeout`` passes), the others are stopped.

    Args:
      command: arguments after the Python interpreter (``["script.py", ...]`` or
        ``["-m", "module", ...]``).
      processes: number of processes ``>= 1``.
      devices_per_process: simulated CPU devices per process (``platform="cpu"``).
      platform: ``"cpu"`` sets ``JAX_PLATFORMS=cpu`` and the device count; ``"native"``
        leaves device selection to JAX (e.g. one GPU per process via ``local_device_ids``).
      port: coordinator port (default: a free one).
      timeout: seconds before every process is stopped.
      env: extra environment variables.

    Returns:
      The processes' exit statuses (a stopped process reports a negative signal number).

    Example:
      >>> from feasjax.parallel.launch import launch
      >>> code = "import os; assert os.environ['FEASJAX_NUM_PROCESSES'] == '2'"
      >>> launch(["-c", code], processes=2)
      [0, 0]
    """
    if not isinstance(processes, int) or processes < 1:
        raise ValueError(f"processes must be a positive int, got {processes=}")
    if devices_per_process is not None and (not isinstance(devices_per_process, int)
                                            or devices_per_process < 1):
        raise ValueError(f"devices_per_process must be a positive int, got "
                         f"{devices_per_process=}")
    if platform not in ("cpu", "native"):
        raise ValueError(f"platform must be 'cpu' or 'native', got {platform=}")
    if not port:  # a free one, a moment ago
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    address = f"127.0.0.1:{port}"
    children = []
    for pid in range(processes):
        child_env = dict(os.environ, **(env or {}), FEASJAX_COORDINATOR_ADDRESS=address,
                         FEASJAX_NUM_PROCESSES=str(processes), FEASJAX_PROCESS_ID=str(pid))
        if platform == "cpu":
            child_env["JAX_PLATFORMS"] = "cpu"
            child_env["XLA_FLAGS"] = (f"--xla_force_host_platform_device_count="
                                      f"{devices_per_process or 1}")
        proc = subprocess.Popen([sys.executable, *command], env=child_env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=_pipe, args=(proc.stdout, f"[{pid}] "), daemon=True).start()
        children.append(proc)
    deadline = time.monotonic() + (math.inf if timeout is None else timeout)
    while any(p.poll() is None for p in children):
        if time.monotonic() > deadline or any(p.poll() not in (None, 0) for p in children):
            for p in children:  # only the processes started here (kill skips exited ones)
                p.kill()
        time.sleep(0.05)
    return [p.wait() for p in children]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m feasjax.parallel.launch --processes P [--devices-per-process K] -- <cmd>``."""
    parser = argparse.ArgumentParser(prog="python -m feasjax.parallel.launch",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, required=True)
    parser.add_argument("--devices-per-process", type=int, default=None)
    parser.add_argument("--platform", choices=("cpu", "native"), default="cpu")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=None)
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="after --: a script and its arguments, or -m module ...")
    options = vars(parser.parse_args(argv))
    command = options.pop("command")
    command = command[1:] if command[:1] == ["--"] else command
    if not command:
        parser.error("give the command to run after --")
    codes = launch(command, **options)  # the other options are launch's keyword arguments
    return next((c for c in codes if c != 0), 0)


if __name__ == "__main__":
    sys.exit(main())
